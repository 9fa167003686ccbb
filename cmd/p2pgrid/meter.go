package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/device"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

func newMeterCmd(logger func() *slog.Logger) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meter",
		Short: "Read smart meters and solar inverters over Modbus",
		Long: `Read smart meters and solar inverters over Modbus TCP, Modbus RTU on a serial
port, or RTU over TCP (RS-485-to-Ethernet converters).

Device URLs:
  tcp://HOST[:PORT]                                 Modbus TCP (port 502)
  rtu:///dev/ttyUSB0?baud=9600&parity=N&stop=1     Modbus RTU on a serial port
  rtutcp://HOST:PORT                                RTU frames over a TCP socket
Any of them may add timeout=DURATION (default 1s).`,
	}
	cmd.AddCommand(newMeterReadCmd(logger), newMeterScanCmd(logger))
	return cmd
}

type busFlags struct {
	url     string
	timeout time.Duration
}

func (f *busFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "url", "", "device URL: tcp://HOST:PORT, rtu:///dev/ttyUSB0?baud=9600&parity=N, rtutcp://HOST:PORT (required)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", time.Second, "timeout of one Modbus request")
}

func (f *busFlags) open(logger *slog.Logger, retries int) (*bus.Bus, error) {
	if f.url == "" {
		return nil, badInput(errors.New("--url is required, e.g. --url tcp://127.0.0.1:502"))
	}
	b, err := bus.Open(f.url, bus.Options{Timeout: f.timeout, Retries: retries, Logger: logger})
	if err != nil {
		return nil, badInput(err)
	}
	return b, nil
}

func newMeterReadCmd(logger func() *slog.Logger) *cobra.Command {
	var bf busFlags
	var unit uint8
	var name string
	var profileDirs []string
	cmd := &cobra.Command{
		Use:   "read --url URL [--unit N] --device NAME",
		Short: "Read one device once and print the reading as JSON",
		Long: `Read one device once and print one JSON object:

  {"device":"sdm630","unit":1,"kind":"meter","power_w":-1540.5,"import_wh":12345678,
   "export_wh":6789125,"frequency_hz":50.01,"voltage_v":[..],"current_a":[..],"phase_power_w":[..]}

--device names a device profile (configs/devices/*.yaml, or a file NAME.yaml in a
--profiles directory), or "sunspec" to discover a SunSpec device and read its
inverter or meter model; SunSpec readings add manufacturer, model and serial.
power_w is positive when a meter imports from the grid and when an inverter
produces. Values the device lacks are omitted.

Exit status 2, with a one-line error, when the device does not answer, answers
with an exception, or the profile is unknown.`,
		Example: `  p2pgrid meter read --url tcp://127.0.0.1:5020 --unit 1 --device sdm630
  p2pgrid meter read --url tcp://192.168.1.50:502 --unit 126 --device sunspec
  p2pgrid meter read --url 'rtu:///dev/ttyUSB0?baud=9600&parity=N' --unit 2 --device sdm120`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return badInput(errors.New("--device is required: a profile name (e.g. sdm630) or sunspec"))
			}
			b, err := bf.open(logger(), 1)
			if err != nil {
				return err
			}
			defer b.Close()
			budget := 10*bf.timeout + 5*time.Second
			dev, err := device.Open(b, unit, name, device.Options{ProfileDirs: profileDirs,
				Discovery: sunspec.LazyOptions{Budget: budget}})
			if err != nil {
				return badInput(err)
			}
			// Discovery (SunSpec) has its budget; the read after it its own time.
			ctx, cancel := context.WithTimeout(cmd.Context(), budget+3*bf.timeout+time.Second)
			defer cancel()
			r, err := dev.Read(ctx)
			if err != nil {
				return badInput(err)
			}
			out, err := json.Marshal(r)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
			return err
		},
	}
	bf.register(cmd)
	cmd.Flags().Uint8Var(&unit, "unit", 1, "Modbus unit id (slave address), 1-247")
	cmd.Flags().StringVar(&name, "device", "", "device profile name (sdm630, sdm120, sdm72, ...) or sunspec (required)")
	cmd.Flags().StringSliceVar(&profileDirs, "profiles", nil, "extra directory of device profiles (NAME.yaml), searched before the built-in ones")
	return cmd
}

func newMeterScanCmd(logger func() *slog.Logger) *cobra.Command {
	var bf busFlags
	var units, format string
	cmd := &cobra.Command{
		Use:   "scan --url URL [--units 1-247]",
		Short: "List the unit ids that answer on a bus, with their SunSpec identity",
		Long: `Scan a Modbus bus or gateway: for each unit id, look for SunSpec (at 40000, 0
and 50000) and otherwise for any answer to a register read, including an
exception (a device that says "illegal address" is there). Prints one line per
unit that answers.

Each request is a single attempt (no retries) bounded by --timeout, and a unit
whose first request gets no reply (a timeout, or a Modbus gateway's "no target"
exception 10 or 11) is not asked again: an absent unit costs one --timeout, so
a full scan of 247 units at the default 300ms takes at most about 75 s.

Progress goes to standard error: one line redrawn in place on a terminal, else
a line per unit found. On Ctrl-C (SIGINT) or SIGTERM the scan stops, prints the
units found so far, and exits with status 1.`,
		Example: `  p2pgrid meter scan --url tcp://127.0.0.1:5020 --units 1-10
  p2pgrid meter scan --url 'rtu:///dev/ttyUSB0?baud=9600' --timeout 200ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := parseUnits(units)
			if err != nil {
				return badInput(fmt.Errorf("--units: %w", err))
			}
			if format != "table" && format != "json" {
				return badInput(fmt.Errorf("--format: unknown format %q (want table or json)", format))
			}
			b, err := bf.open(logger(), bus.NoRetries)
			if err != nil {
				return err
			}
			defer b.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			found, n := scanUnits(ctx, b, ids, newProgress(cmd.ErrOrStderr()))
			if err := writeScan(cmd.OutOrStdout(), found, format); err != nil {
				return err
			}
			if n < len(ids) {
				return fmt.Errorf("scan interrupted after %d of %d units; %d found", n, len(ids), len(found))
			}
			return nil
		},
	}
	bf.register(cmd)
	cmd.Flags().Lookup("timeout").DefValue = "300ms"
	cmd.Flags().Lookup("timeout").Usage = "timeout of one request, which is all an absent unit costs"
	cmd.Flags().Set("timeout", "300ms")
	cmd.Flags().StringVar(&units, "units", "1-247", "unit ids to try: ranges and lists, e.g. 1-10,126")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json (one object per line)")
	return cmd
}

// scanned is one unit that answered.
type scanned struct {
	Unit         uint8  `json:"unit"`
	SunSpec      bool   `json:"sunspec"`
	Kind         string `json:"kind,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	Serial       string `json:"serial,omitempty"`
	Models       []int  `json:"models,omitempty"`
	Note         string `json:"note,omitempty"`
}

// scanUnits probes ids in order until ctx ends, and returns the units that
// answered and how many ids were scanned to the end.
func scanUnits(ctx context.Context, b *bus.Bus, ids []uint8, p *progress) ([]scanned, int) {
	var found []scanned
	done := 0
	for n, u := range ids {
		if ctx.Err() != nil {
			break
		}
		p.update(fmt.Sprintf("scanning unit %d (%d/%d), %d found", u, n+1, len(ids), len(found)))
		s, ok := probe(ctx, b, u)
		if ctx.Err() != nil {
			break // the answer may be cut short: leave this unit out
		}
		done++
		if ok {
			found = append(found, s)
			p.found(fmt.Sprintf("unit %d answers", u))
		}
	}
	p.done(fmt.Sprintf("scanned %d units, %d answered", done, len(found)))
	return found, done
}

// probe asks one unit. Its first request is the read of the SunSpec marker
// at 40000; when that gets no reply from the unit itself, the unit is absent
// and nothing more is asked.
func probe(ctx context.Context, b *bus.Bus, u uint8) (scanned, bool) {
	_, first := b.ReadHolding(ctx, u, 40000, 2)
	if first != nil && !fromUnit(first) {
		return scanned{}, false
	}
	if d, err := sunspec.Discover(ctx, b, u); err == nil {
		s := scanned{Unit: u, SunSpec: true, Kind: string(d.Kind), Manufacturer: d.Manufacturer, Model: d.ModelName, Serial: d.Serial}
		for _, m := range d.Models {
			s.Models = append(s.Models, int(m.ID))
		}
		return s, true
	}
	if note, ok := answers(ctx, b, u); ok {
		return scanned{Unit: u, Note: note}, true
	}
	note := "answers register reads"
	var ex *bus.ExceptionError
	if errors.As(first, &ex) {
		note = fmt.Sprintf("answers with exception %d", ex.Code)
	}
	return scanned{Unit: u, Note: note}, true
}

// fromUnit reports whether err is an answer from the unit itself: an
// exception other than a Modbus gateway's "path unavailable" (10) or
// "target failed to respond" (11).
func fromUnit(err error) bool {
	var ex *bus.ExceptionError
	return errors.As(err, &ex) && ex.Code != 10 && ex.Code != 11
}

// progress draws the scan's progress: one line redrawn with \r on a
// terminal; on anything else only the units found and the summary, as
// plain lines.
type progress struct {
	w        io.Writer
	terminal bool
	width    int // of the line drawn last, on a terminal
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, terminal: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) update(line string) {
	if !p.terminal {
		return
	}
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

func (p *progress) found(line string) {
	if !p.terminal {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done(line string) {
	if p.terminal {
		p.update(line)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintln(p.w, line)
}

// answers reports whether anything at unit answers a register read; an
// exception from the device itself counts, a gateway's "no target" does not.
func answers(ctx context.Context, b *bus.Bus, u uint8) (string, bool) {
	for _, read := range []func(context.Context, uint8, uint16, uint16) ([]uint16, error){b.ReadInput, b.ReadHolding} {
		_, err := read(ctx, u, 0, 1)
		if err == nil {
			return "answers register reads", true
		}
		var ex *bus.ExceptionError
		if fromUnit(err) && errors.As(err, &ex) {
			return fmt.Sprintf("answers with exception %d", ex.Code), true
		}
	}
	return "", false
}

func writeScan(w io.Writer, found []scanned, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, s := range found {
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tSUNSPEC\tKIND\tMANUFACTURER\tMODEL\tSERIAL\tMODELS / NOTE")
	for _, s := range found {
		extra := s.Note
		if s.SunSpec {
			extra = strings.Trim(strings.Join(strings.Fields(fmt.Sprint(s.Models)), ","), "[]")
		}
		ss := "no"
		if s.SunSpec {
			ss = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Unit, ss, dash(s.Kind), dash(s.Manufacturer), dash(s.Model), dash(s.Serial), extra)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseUnits parses "1-10,126" into unit ids 1..247.
func parseUnits(s string) ([]uint8, error) {
	var ids []uint8
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q is not a unit id or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("%q is not a unit id or range", part)
			}
		}
		if a < 1 || b > 247 || a > b {
			return nil, fmt.Errorf("%q: unit ids run from 1 to 247", part)
		}
		for u := a; u <= b; u++ {
			if !seen[u] {
				seen[u] = true
				ids = append(ids, uint8(u))
			}
		}
	}
	return ids, nil
}
