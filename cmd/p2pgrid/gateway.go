package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/daemon"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// defaultConfigPaths are where "p2pgrid gateway" looks for its
// configuration without --config or P2PGRID_CONFIG, in this order: where
// the Debian package installs it, then the working directory.
var defaultConfigPaths = []string{"/etc/p2pgrid/gateway.yaml", "./gateway.yaml"}

// configPath returns the configuration file to read: flag, else env (the
// value of P2PGRID_CONFIG), else the first of defaults that exists. A
// default that exists but cannot be looked at (a directory without
// permission) is taken too, so that reading it names the real problem.
func configPath(flag, env string, defaults []string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env != "" {
		return env, nil
	}
	for _, p := range defaults {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
	}
	return "", badInput(fmt.Errorf("no configuration file: neither %s exists; give --config FILE (or set %s)",
		strings.Join(defaults, " nor "), config.ConfigEnv))
}

func newGatewayCmd(logger func(config.Log) *slog.Logger) *cobra.Command {
	var (
		path  string
		clock *testClockFlags
	)
	cmd := &cobra.Command{
		Use:   "gateway [--config FILE]",
		Short: "Run the gateway: read meters, trade on MQTT, clear or verify every interval",
		Long: `Run the gateway daemon of one home: poll its meters over Modbus, forecast its
surplus or deficit for the next delivery interval, place one signed order per
interval on MQTT, and verify every published clearing. A gateway configured as
clearer collects the community's orders, clears them at gate closure and
publishes book and result.

The configuration is one YAML file (configs/gateway.example.yaml explains every
key): --config FILE, else $P2PGRID_CONFIG, else /etc/p2pgrid/gateway.yaml
(where the Debian package installs it), else ./gateway.yaml. P2PGRID_<KEY>
environment variables override it. The gateway's key is created in data_dir on
first start; its public key, logged then and printed by "p2pgrid key", goes
into the community roster.

Serves /metrics (Prometheus), /healthz and /tariff (the local price for evcc,
docs/evcc.md) on the http address; logs with slog
to standard error (under systemd, to the journal: each line with its syslog
priority and without a time, which journald records); stops cleanly on
SIGTERM or SIGINT.`,
		Example: `  p2pgrid gateway
  p2pgrid gateway --config /etc/p2pgrid/gateway.yaml
  P2PGRID_MQTT_PASSWORD=secret p2pgrid gateway --config gateway.yaml --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := daemon.Options{Version: versionString()}
			c, err := clock.clock()
			if err != nil {
				return err
			}
			if c != nil {
				opts.Now, opts.ClockSpeed = c.Now, c.Speed
			}
			p, err := configPath(path, os.Getenv(config.ConfigEnv), defaultConfigPaths)
			if err != nil {
				return err
			}
			cfg, err := config.Load(p, os.Environ())
			if err != nil {
				return badInput(err)
			}
			opts.ConfigFile = p
			opts.Logger = logger(cfg.Log) // the file's log section, where no --log-* flag is given
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// Run scopes the logger with the gateway id, once.
			err = daemon.Run(ctx, cfg, opts)
			var ce *config.Error
			if errors.As(err, &ce) {
				return badInput(err) // refused at the door: exit 2, as config check
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "config", "", "configuration file (YAML); default $"+config.ConfigEnv+", else the first of "+strings.Join(defaultConfigPaths, ", ")+" that exists")
	clock = addTestClockFlags(f)
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check gateway configuration files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a gateway configuration file (and the environment overrides)",
		Long: `Validate a gateway configuration file as the gateway does at start, including
P2PGRID_ environment overrides: every setting, the device URLs and profiles
(profile_dir included), the MQTT CA, certificate and key files, the roster
file (it lists this gateway, marks it clearer if it is configured as one,
and, once the gateway has a key in data_dir, holds that key), and the key
file. Nothing is created and nothing is connected to. Prints a summary and
exits 0 when the gateway would start; otherwise prints every problem, one
per line in file order with its key and line, and exits 2.`,
		Example: `  p2pgrid config check configs/gateway.example.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every problem at once: a file that decodes is checked
			// whole, Validate included, as the gateway checks it at start.
			cfg, err := config.LoadForCheck(args[0], os.Environ())
			if cfg == nil {
				return badInput(err)
			}
			if err := daemon.Check(cfg); err != nil {
				return badInput(err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: ok\n", args[0])
			fmt.Fprintf(w, "gateway %s in community %s", cfg.Gateway, cfg.Community)
			if cfg.Clearer != config.ClearerNone {
				fmt.Fprintf(w, " (%s clearer)", cfg.Clearer)
			}
			broker := strings.Join(cfg.MQTT.BrokerURLs(), " or ")
			if broker == "" {
				broker = "embedded on " + daemon.EmbeddedBrokerAddr
			}
			fmt.Fprintf(w, "\nbroker %s; %d devices; interval %s, gate closure %s\n", broker, len(cfg.Devices), cfg.Market.Interval, cfg.Market.GateClosure)
			return nil
		},
	})
	return cmd
}

func newKeyCmd(logger func() *slog.Logger) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "key --data DIR",
		Short: "Print the gateway's public key (creating the key if there is none)",
		Long: `Print the public key of the gateway whose data directory is DIR, in the form the
community roster takes ("ed25519:..."). The private key (DIR/gateway.key, mode
0600) is created if it does not exist yet.`,
		Example: `  p2pgrid key --data /var/lib/p2pgrid`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return badInput(errors.New("--data is required"))
			}
			key, _, err := protocol.LoadOrCreateKey(dir)
			if err != nil {
				return badInput(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), protocol.PublicKeyString(key.Public().(ed25519.PublicKey)))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "the gateway's data directory")
	return cmd
}
