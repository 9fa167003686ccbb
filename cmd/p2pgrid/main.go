// Command p2pgrid is the peer-to-peer energy trading gateway: one binary
// whose subcommands clear books, run the gateway and inspect settlements.
// Run "p2pgrid --help" for the list.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	// The time zone database, in the binary: apps.time_zone names a zone
	// (Europe/Berlin), and a scratch container or a trimmed Pi image may
	// have no /usr/share/zoneinfo. The system's is used when it has one.
	_ "time/tzdata"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/config"
)

// version is stamped at build time: go build -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries the process exit code for an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// badInput marks err as the caller's fault: exit status 2.
func badInput(err error) error { return &exitError{code: 2, err: err} }

// run executes the command line and returns the exit status: 0 success,
// 2 bad input or usage, 1 anything else. Errors are one line on stderr.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	for _, e := range problems(err) {
		msg := strings.Join(strings.Fields(e.Error()), " ") // one line each, always
		fmt.Fprintf(stderr, "p2pgrid: %s\n", msg)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "arg(s)") {
		return 2
	}
	return 1
}

// problems splits an error that lists several problems (errors.Join, as a
// configuration's errors are) into them, for one line each; any other
// error is one problem.
func problems(err error) []error {
	e := err
	if ee, ok := e.(*exitError); ok {
		e = ee.err
	}
	if j, ok := e.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "p2pgrid",
		Short: "Peer-to-peer energy trading gateway for microgrids",
		Long: `p2pgrid lets neighbours with rooftop solar sell their surplus to neighbours
who need power. A gateway in each home reads its meters over Modbus, publishes
signed offers and bids on MQTT, and a periodic double auction clears them;
settled trades go to a tamper-evident local ledger and to InfluxDB.

Documentation: README.md and docs/ in the source tree.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what "p2pgrid version" prints (cobra's default
	// template says "p2pgrid version X" and lacks Go and platform).
	root.SetVersionTemplate(strings.ReplaceAll(versionLine(), "{{", "{{`{{`}}"))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return badInput(fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath()))
	})
	lf := &logFlags{}
	lf.register(root)
	logger := func() *slog.Logger { return lf.logger(stderr) }
	root.AddCommand(newVersionCmd(), newClearCmd(), newMeterCmd(logger), newSimCmd(logger),
		newGatewayCmd(lf.forConfig(stderr)), newConfigCmd(), newKeyCmd(logger), newDemoCmd(logger),
		newLedgerCmd(), newSettlementsCmd(), newCertsCmd(), newCommunityCmd(), newJoinCmd(),
		newOperatorCmd(logger))
	return root
}

// logFlags choose the root logger: one slog logger, built here and handed
// down to every component.
type logFlags struct {
	level, format string
	flags         interface{ Changed(name string) bool } // which of the two the command line gave
}

func (f *logFlags) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	f.flags = pf
	pf.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn or error; wins over a configuration's log.level")
	pf.StringVar(&f.format, "log-format", "text", "log format: text or json; wins over a configuration's log.format")
}

// forConfig builds the root logger of a command that reads a gateway
// configuration: its log section (validated) sets the level and format
// the command line does not give.
func (f *logFlags) forConfig(w io.Writer) func(config.Log) *slog.Logger {
	return func(c config.Log) *slog.Logger {
		g := *f
		if c.Level != "" && !f.flags.Changed("log-level") {
			g.level = c.Level
		}
		if c.Format != "" && !f.flags.Changed("log-format") {
			g.format = c.Format
		}
		return g.logger(w)
	}
}

// logger builds the root logger; bad flag values fall back to info/text
// with a warning rather than failing a running daemon. When w is the
// systemd journal (journalStream), every line starts with its syslog
// priority and carries no time: journald records both.
func (f *logFlags) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	bad := lvl.UnmarshalText([]byte(f.level)) != nil
	opts := &slog.HandlerOptions{Level: lvl}
	newHandler := func(w io.Writer, opts *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, opts) }
	if f.format == "json" {
		newHandler = func(w io.Writer, opts *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(w, opts) }
	}
	var h slog.Handler
	if file, ok := w.(*os.File); ok && journalStream(os.Getenv("JOURNAL_STREAM"), file) {
		h = newJournalHandler(w, opts, newHandler)
	} else {
		h = newHandler(w, opts)
	}
	l := slog.New(h)
	if bad {
		l.Warn("unknown --log-level, using info", "value", f.level)
	}
	return l
}

func versionString() string {
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return v
}

// versionLine is what "p2pgrid version" and "p2pgrid --version" print.
func versionLine() string {
	return fmt.Sprintf("p2pgrid %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of p2pgrid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}
