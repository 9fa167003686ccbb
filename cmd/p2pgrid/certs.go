package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/pki"
)

// The files `p2pgrid certs` writes in its directory; a client certificate
// is <id>.crt and <id>.key.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

func newCertsCmd() *cobra.Command {
	var (
		dir, caName    string
		hosts, clients []string
		days, caDays   int
	)
	cmd := &cobra.Command{
		Use:   "certs --dir DIR [--host HOST]... [--client ID]...",
		Short: "Make the community CA and the broker's TLS certificate (and client certificates)",
		Long: `Make the certificates of a community's Mosquitto broker, ECDSA P-256, in DIR
(created, mode 0700, if missing):

  ca.crt, ca.key          the community CA, made on the first run and reused
                          afterwards; ca.crt goes to the broker and to every
                          gateway (mqtt.ca_file); keep ca.key offline
  server.crt, server.key  the broker's certificate (--host), valid for every
                          DNS name and IP address given: a gateway must reach
                          the broker by one of them
  ID.crt, ID.key          a client certificate for gateway ID (--client), for
                          a broker with require_certificate true
                          (mqtt.cert_file, mqtt.key_file)

Keys are written with mode 0600, certificates 0644. An existing file is
never replaced: remove it to issue a new one. Step by step:
configs/mosquitto/README.md.`,
		Example: `  p2pgrid certs --dir ./lindenweg-certs --host broker.lan --host 192.168.1.10
  p2pgrid certs --dir ./lindenweg-certs --client home-17`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCerts(cmd.OutOrStdout(), dir, caName, hosts, clients, days, caDays)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory of the certificates and keys (required)")
	f.StringSliceVar(&hosts, "host", nil, "a DNS name or IP address of the broker, for server.crt (repeatable)")
	f.StringSliceVar(&clients, "client", nil, "a gateway id to make a client certificate for, ID.crt (repeatable)")
	f.StringVar(&caName, "ca-name", "p2pgrid community CA", "the CA's name, when it is made")
	f.IntVar(&days, "days", int(pki.DefaultValidity/(24*time.Hour)), "validity of the server and client certificates, in days")
	f.IntVar(&caDays, "ca-days", int(pki.DefaultCAValidity/(24*time.Hour)), "validity of the CA, in days, when it is made")
	return cmd
}

func runCerts(out io.Writer, dir, caName string, hosts, clients []string, days, caDays int) error {
	if dir == "" {
		return badInput(errors.New("certs: --dir is required"))
	}
	if days <= 0 || caDays <= 0 {
		return badInput(fmt.Errorf("certs: --days %d, --ca-days %d: want positive numbers of days", days, caDays))
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	// Everything this run would write, checked before anything is.
	var want []string
	for _, id := range clients {
		if err := protocol.CheckID(id); err != nil {
			return badInput(fmt.Errorf("certs: --client %q: %w", id, err))
		}
		if id == "ca" || id == "server" {
			return badInput(fmt.Errorf("certs: --client %q: its files would be the CA's or the server's", id))
		}
		want = append(want, path(id+".crt"), path(id+".key"))
	}
	if len(hosts) > 0 {
		want = append(want, path(serverCertFile), path(serverKeyFile))
	}
	for _, p := range want {
		if _, err := os.Lstat(p); err == nil {
			return badInput(fmt.Errorf("certs: %s exists; remove it first to issue a new one", p))
		}
	}

	hasCert, err := exists(path(caCertFile))
	if err != nil {
		return err
	}
	hasKey, err := exists(path(caKeyFile))
	if err != nil {
		return err
	}
	var ca *pki.CA
	switch {
	case hasCert && hasKey:
		if len(want) == 0 {
			return badInput(fmt.Errorf("certs: %s already holds a CA; give --host or --client to issue certificates with it", dir))
		}
		if ca, err = pki.LoadCA(path(caCertFile), path(caKeyFile)); err != nil {
			return badInput(fmt.Errorf("certs: %w", err))
		}
		fmt.Fprintf(out, "using CA %q (valid until %s): %s\n", ca.Cert.Cert.Subject.CommonName,
			ca.Cert.Cert.NotAfter.Format(time.DateOnly), path(caCertFile))
	case hasCert || hasKey:
		return badInput(fmt.Errorf("certs: %s holds only one of %s and %s: a CA needs both", dir, caCertFile, caKeyFile))
	default:
		if ca, err = pki.NewCA(caName, time.Duration(caDays)*24*time.Hour); err != nil {
			return badInput(fmt.Errorf("certs: %w", err))
		}
	}

	// Issue everything before writing anything, so bad input leaves DIR as
	// it was.
	type pair struct {
		cert     *pki.Cert
		crt, key string
		what     string
	}
	var pairs []pair
	validity := time.Duration(days) * 24 * time.Hour
	if len(hosts) > 0 {
		srv, err := ca.IssueServer(hosts, validity)
		if err != nil {
			return badInput(fmt.Errorf("certs: %w", err))
		}
		pairs = append(pairs, pair{srv, path(serverCertFile), path(serverKeyFile), "server certificate for " + strings.Join(hosts, ", ")})
	}
	for _, id := range clients {
		c, err := ca.IssueClient(id, validity)
		if err != nil {
			return badInput(fmt.Errorf("certs: %w", err))
		}
		pairs = append(pairs, pair{c, path(id + ".crt"), path(id + ".key"), fmt.Sprintf("client certificate %q", id)})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if !hasCert {
		if err := ca.WriteFiles(path(caCertFile), path(caKeyFile)); err != nil {
			return fmt.Errorf("certs: CA: %w", err)
		}
		fmt.Fprintf(out, "made CA %q (valid until %s): %s, %s (keep the key offline)\n", ca.Cert.Cert.Subject.CommonName,
			ca.Cert.Cert.NotAfter.Format(time.DateOnly), path(caCertFile), path(caKeyFile))
	}
	for _, p := range pairs {
		if err := p.cert.WriteFiles(p.crt, p.key); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return badInput(fmt.Errorf("certs: %s: %w", p.what, err))
			}
			return fmt.Errorf("certs: %s: %w", p.what, err)
		}
		fmt.Fprintf(out, "made %s (valid until %s): %s, %s\n", p.what, p.cert.Cert.NotAfter.Format(time.DateOnly), p.crt, p.key)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("certs: %w", err)
}
