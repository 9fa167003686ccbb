package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/daemon"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/operator"
)

// defaultJoinConfig is where join writes the gateway's configuration:
// the first place `p2pgrid gateway` looks for it.
var defaultJoinConfig = defaultConfigPaths[0]

func newJoinCmd() *cobra.Command {
	var path, dataDir, home string
	var request bool
	cmd := &cobra.Command{
		Use:   "join (BUNDLE [--config PATH] [--data-dir DIR] | --request --home ID [--data-dir DIR])",
		Short: "Turn the operator's join bundle into this home's gateway configuration",
		Long: `Check the join bundle the operator's "p2pgrid community add" made (not
expired, its roster signed by its operator key, the roster listing this home
with the key in the data directory, which "p2pgrid key --data DIR" made) and
write the gateway's configuration at PATH, and beside it the community CA
(COMMUNITY-ca.pem), the MQTT password (mqtt.password, mode 0600) and the
roster (roster.json). No file is replaced. Then check the configuration as
"p2pgrid config check" does. Add the home's meters to the configuration's
devices and start the gateway.

With --request, print instead the join request to send the operator: this
gateway's id (--home) and its public key (the key in the data directory,
created if there is none), for "p2pgrid community add --request".`,
		Example: `  p2pgrid join --request --home home-17 > home-17.request.json
  p2pgrid join home-17.json
  p2pgrid join home-17.json --config ./gateway.yaml --data-dir ./data`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if request {
				if len(args) > 0 || home == "" {
					return badInput(errors.New("join --request: give --home ID and no bundle"))
				}
				key, _, err := protocol.LoadOrCreateKey(dataDir)
				if err != nil {
					return badInput(fmt.Errorf("join --request: %w", err))
				}
				r, err := operator.NewJoinRequest(home, key.Public().(ed25519.PublicKey))
				if err != nil {
					return operatorErr("join --request", err)
				}
				_, err = cmd.OutOrStdout().Write(r.Encode())
				return err
			}
			if len(args) != 1 || home != "" {
				return badInput(errors.New("join: give the bundle file (or --request --home ID)"))
			}
			data, err := readBundle(args[0])
			if err != nil {
				return err
			}
			files, err := operator.Join(data, path, dataDir, time.Now())
			if err != nil {
				return operatorErr("join", err)
			}
			w := cmd.OutOrStdout()
			if files.ReplacedExample {
				fmt.Fprintf(w, "%s was the package's example configuration, unedited: replaced (the example is also in /usr/share/doc/p2pgrid/)\n", files.Config)
			}
			fmt.Fprintf(w, "wrote %s\n  %s\n  %s (the MQTT password, mode 0640, group of the gateway's key)\n  %s\n", files.Config, files.CA, files.Password, files.Roster)
			cfg, err := config.LoadForCheck(files.Config, os.Environ())
			if cfg == nil {
				return badInput(err)
			}
			if err := daemon.Check(cfg); err != nil {
				return badInput(err)
			}
			fmt.Fprintf(w, "%s: ok: gateway %s in community %s, broker %s\n", files.Config, cfg.Gateway, cfg.Community, cfg.MQTT.Broker)
			fmt.Fprintf(w, "next: add the home's meters to devices in %s, delete the bundle, then: p2pgrid gateway --config %s\n", files.Config, files.Config)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", defaultJoinConfig, "the gateway configuration to write")
	cmd.Flags().StringVar(&dataDir, "data-dir", config.DefaultDataDir, "the gateway's data directory, holding its key")
	cmd.Flags().BoolVar(&request, "request", false, "print the join request for the operator instead (with --home)")
	cmd.Flags().StringVar(&home, "home", "", "with --request: this gateway's id")
	return cmd
}

// readBundle reads a bundle file, at most operator.MaxBundleSize bytes.
func readBundle(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, badInput(fmt.Errorf("join: %w", err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, operator.MaxBundleSize+1))
	if err != nil {
		return nil, badInput(fmt.Errorf("join: %s: %w", filepath.Base(path), err))
	}
	if len(data) > operator.MaxBundleSize {
		return nil, badInput(errors.New("join: " + path + " is too large for a bundle"))
	}
	return data, nil
}
