package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/dashboard"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// dashboardFlags are the flags of the dashboard's login and money, shared
// by p2pgrid operator and p2pgrid demo.
type dashboardFlags struct {
	token, tokenFile, usersFile string
	minor                       int32
	currency                    string
}

func (f *dashboardFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.token, "token", "", "require this bearer token (Authorization: Bearer T, or ?token=T once, which sets a cookie)")
	fl.StringVar(&f.tokenFile, "token-file", "", "require the bearer token held in this file (as --token, but out of the process list)")
	fl.StringVar(&f.usersFile, "basic-auth-file", "", "require a login from this file of user:password lines (HTTP basic auth)")
	fl.Int32Var(&f.minor, "minor", 2, "decimals of the currency's minor unit for rounding money")
	fl.StringVar(&f.currency, "currency", "", "the currency shown when the ledger names none (ISO 4217 code; default "+config.DefaultCurrency+")")
}

// options checks the flags and returns the dashboard's options for the
// ledger in dir.
func (f *dashboardFlags) options(dir string, log *slog.Logger) (dashboard.Options, error) {
	o := dashboard.Options{Ledger: dir, Minor: f.minor, Currency: f.currency, Logger: log, Auth: dashboard.Auth{Token: f.token}}
	if f.minor < 0 || f.minor > 8 {
		return o, fmt.Errorf("--minor: %d is outside 0-8", f.minor)
	}
	if f.currency != "" && !config.ValidCurrency(f.currency) {
		return o, fmt.Errorf("--currency: %q is not an ISO 4217 currency code (three capital letters, as EUR)", f.currency)
	}
	if f.tokenFile != "" {
		if f.token != "" {
			return o, errors.New("--token-file: give --token or --token-file, not both")
		}
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return o, fmt.Errorf("--token-file: %w", err)
		}
		if o.Auth.Token = strings.TrimSpace(string(b)); o.Auth.Token == "" {
			return o, fmt.Errorf("--token-file %s: the file is empty", f.tokenFile)
		}
	}
	if f.usersFile != "" {
		users, err := dashboard.ReadUsers(f.usersFile)
		if err != nil {
			return o, fmt.Errorf("--basic-auth-file: %w", err)
		}
		o.Auth.Users = users
	}
	return o, nil
}

// checkListen refuses a listen address that is not loopback unless a
// login is configured.
func (f *dashboardFlags) checkListen(addr string) error {
	if dashboard.IsLoopback(addr) || f.token != "" || f.tokenFile != "" || f.usersFile != "" {
		return nil
	}
	return fmt.Errorf("--http %s is not a loopback address: the dashboard needs a login there; give --token, --token-file or --basic-auth-file, or listen on 127.0.0.1", addr)
}

func newOperatorCmd(logger func() *slog.Logger) *cobra.Command {
	var (
		addr, dir string
		poll      time.Duration
		df        dashboardFlags
		ff        feedFlags
	)
	cmd := &cobra.Command{
		Use:   "operator --ledger DIR [--http ADDR] [flags]",
		Short: "Serve the operator's web dashboard over a gateway's ledger",
		Long: `Operator serves a read-only web dashboard over a gateway's ledger directory
(its data_dir/ledger, usually the operator's clearer's): an overview (clearing
price and traded volume per interval as charts, the share of demand met
locally, energy and money kept in the community, savings against the grid per
home and in total), a page per interval (the clearing, who traded with whom,
metered delivery and imbalance per participant, the sealed book and its
digest, the signed result), a printable statement per participant for a
chosen period, and CSV exports of statements and trades (the columns and
decimals of 'p2pgrid settlements --format csv'). docs/operator.md describes
every page.

The ledger is read as 'p2pgrid settlements' reads it, without the gateway's
lock, so the gateway may be running and appending to it; new records are
picked up every --poll and pushed to open pages (server-sent events at
/events). A ledger alone does not tell the gateways' status or their
verification of each interval: with --mqtt (and --community) the dashboard
follows the gateways' retained status messages on the community's broker
for them (what each gateway says of itself: online, alarms, its verdict on
its latest intervals), on a read-only login of its own ('p2pgrid community
add-dashboard' makes one; not the clearer's, whose client id it would take);
'p2pgrid demo --http' shows them from its own gateways.

It reads a ledger, not InfluxDB: InfluxDB holds the ledger's time series,
not the evidence an interval page shows (the sealed book, the signed
result, the whole settlement); the Grafana dashboard in configs/grafana is
the view over InfluxDB (docs/grafana.md).

Read-only: only GET and HEAD are served. On a loopback address anyone on the
machine may look; on any other address a login is required, --token or
--token-file (a bearer token; open http://ADDR/?token=T once in a browser,
which sets a cookie) and/or --basic-auth-file (user:password lines); without
one the command refuses to start.`,
		Example: `  p2pgrid operator --ledger /var/lib/p2pgrid/ledger
  p2pgrid operator --ledger /var/lib/p2pgrid/ledger --http 0.0.0.0:8080 --token-file /etc/p2pgrid/dashboard.token
  p2pgrid operator --ledger /tmp/p2pgrid-demo-1/operator/ledger --http 192.168.1.5:8080 --basic-auth-file /etc/p2pgrid/dashboard.users
  p2pgrid operator --ledger /var/lib/p2pgrid/ledger --mqtt ssl://broker.lan:8883 --community lindenweg \
    --mqtt-username dashboard --mqtt-password-file /etc/p2pgrid/lindenweg/apps/dashboard.password --mqtt-ca /etc/p2pgrid/lindenweg/ca/ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return badInput(errors.New("--ledger: give the ledger directory to show (a gateway's data_dir/ledger)"))
			}
			if _, err := os.Stat(filepath.Join(dir, ledger.FileName)); errors.Is(err, fs.ErrNotExist) {
				return badInput(fmt.Errorf("--ledger %s: no ledger here (%s missing)", dir, ledger.FileName))
			}
			if poll < 100*time.Millisecond {
				return badInput(fmt.Errorf("--poll: %s is too short (at least 100ms)", poll))
			}
			if err := df.checkListen(addr); err != nil {
				return badInput(err)
			}
			log := logger()
			o, err := df.options(dir, log.With("component", "dashboard"))
			if err != nil {
				return badInput(err)
			}
			o.Poll = poll
			o.Progress = scanProgress(cmd.ErrOrStderr(), dir)
			live, closeFeed, err := ff.start(log.With("component", "statusfeed"))
			if err != nil {
				return badInput(err)
			}
			if live != nil {
				defer closeFeed()
				o.Live = live
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serveDashboard(ctx, o, addr, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "http", "127.0.0.1:8080", "serve the dashboard on this address (host:port)")
	f.StringVar(&dir, "ledger", "", "a gateway's ledger directory (data_dir/ledger)")
	f.DurationVar(&poll, "poll", time.Second, "how often the ledger is read for new records")
	df.register(cmd)
	ff.register(cmd)
	return cmd
}

// scanProgress prints how far a long first scan of the ledger has come.
func scanProgress(w io.Writer, dir string) func(records uint64, intervals int) {
	return func(records uint64, intervals int) {
		fmt.Fprintf(w, "dashboard: reading %s: %d records, %d intervals so far\n", dir, records, intervals)
	}
}

// serveDashboard runs the dashboard until ctx ends, printing its address
// once it listens.
func serveDashboard(ctx context.Context, o dashboard.Options, addr string, out io.Writer) error {
	s, err := dashboard.New(o)
	if err != nil {
		return err
	}
	return s.Run(ctx, addr, func(a string) {
		fmt.Fprintf(out, "dashboard: http://%s/ (ledger %s)\n", a, o.Ledger)
	})
}
