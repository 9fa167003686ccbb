package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/meter/sim"
)

func newSimCmd(logger func() *slog.Logger) *cobra.Command {
	var (
		homes       int
		listen      string
		shared      bool
		rtuPath     string
		rtu         sim.RTUOptions
		speed       float64
		start       string
		seed        uint64
		origin      int64
		statusEvery time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Serve simulated homes (grid meter + solar inverter) over Modbus",
		Long: `Serve simulated homes over Modbus, for the demo, for tests and for trying
p2pgrid without hardware. Each home has a grid meter (Eastron SDM630 register
map) and a SunSpec solar inverter (models 1 + 103, or 1 + 113), driven by a
seeded clear-sky solar curve with passing clouds and a household load profile.
Simulated time runs --speed times faster than the wall clock; the energy
counters are the exact integral of the simulated power.

By default each home has its own TCP port, counting up from --listen, with the
meter at unit 1 and the inverter at unit 2. With --shared, every home is on the
--listen port, and with --rtu on a serial port or pty: home i (from 1) has its
meter at unit 2i-1 and its inverter at unit 2i.

It prints where each home is served, then a status line every --status (0: never)
until interrupted.`,
		Example: `  p2pgrid sim --homes 6 --listen 127.0.0.1:5020
  p2pgrid meter read --url tcp://127.0.0.1:5020 --unit 1 --device sdm630
  p2pgrid meter read --url tcp://127.0.0.1:5020 --unit 2 --device sunspec

  socat -d -d pty,raw,echo=0,link=/tmp/sim pty,raw,echo=0,link=/tmp/bus &
  p2pgrid sim --homes 2 --rtu /tmp/sim --baud 19200`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if homes < 1 || homes > sim.MaxSharedHomes {
				return badInput(fmt.Errorf("--homes: %d is outside 1-%d", homes, sim.MaxSharedHomes))
			}
			startAt, err := parseSimStart(start)
			if err != nil {
				return badInput(fmt.Errorf("--start: %w", err))
			}
			host, portStr, err := net.SplitHostPort(listen)
			port, perr := strconv.Atoi(portStr)
			if err != nil || perr != nil {
				return badInput(fmt.Errorf("--listen: %q is not HOST:PORT", listen))
			}
			log := logger()
			var originAt time.Time
			if origin != 0 {
				originAt = time.Unix(0, origin)
			}
			s, err := sim.New(sim.Options{Homes: sim.DefaultHomes(homes, seed), Start: startAt, Origin: originAt, Speed: speed, Logger: log})
			if err != nil {
				return err
			}
			var ls []*sim.Listener
			switch {
			case rtuPath != "":
				l, err := s.ServeRTU(rtuPath, rtu)
				if err != nil {
					return err
				}
				ls = append(ls, l)
			case shared:
				l, err := s.ServeTCP(listen)
				if err != nil {
					return err
				}
				ls = append(ls, l)
			default:
				if ls, err = s.ServeAll(host, port); err != nil {
					return err
				}
			}
			writeSimTable(cmd.OutOrStdout(), s, ls, rtuPath != "" || shared)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if statusEvery > 0 {
				go simStatus(ctx, cmd.OutOrStdout(), s, statusEvery)
			}
			err = sim.Run(ctx, ls)
			log.Info("simulator stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&homes, "homes", 6, "number of homes, a mix of solar-rich and consuming ones")
	f.StringVar(&listen, "listen", "127.0.0.1:5020", "TCP address of the first home (the next ones count up from its port)")
	f.BoolVar(&shared, "shared", false, "serve every home on the --listen port, by unit id")
	f.StringVar(&rtuPath, "rtu", "", "serve every home as Modbus RTU on this serial device or pty instead of TCP")
	f.IntVar(&rtu.Baud, "baud", 9600, "RTU baud rate")
	f.StringVar(&rtu.Parity, "parity", "N", "RTU parity: N, E or O")
	f.IntVar(&rtu.StopBits, "stop-bits", 1, "RTU stop bits: 1 or 2")
	f.Float64Var(&speed, "speed", 1, "simulated seconds per wall-clock second (90: a 15-minute interval every 10 s)")
	f.StringVar(&start, "start", "", "simulated start time, RFC 3339 (default: today 08:00 UTC)")
	f.Uint64Var(&seed, "seed", 1, "seed of the homes, the clouds and the loads")
	// For tests and demos: a clock shared with gateways run with the
	// same --clock-epoch (= --start), --clock-origin and --clock-speed.
	f.Int64Var(&origin, "clock-origin", 0, "wall-clock moment, in Unix nanoseconds, at which simulated time is --start (default: now); for tests sharing a clock with `p2pgrid gateway --clock-origin`")
	f.DurationVar(&statusEvery, "status", 10*time.Second, "wall-clock time between status lines (0: none)")
	return cmd
}

func parseSimStart(s string) (time.Time, error) {
	if s == "" {
		y, m, d := time.Now().UTC().Date()
		return time.Date(y, m, d, 8, 0, 0, 0, time.UTC), nil
	}
	return time.Parse(time.RFC3339, s)
}

func writeSimTable(w io.Writer, s *sim.Sim, ls []*sim.Listener, shared bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOME\tPV PEAK W\tURL\tMETER UNIT\tINVERTER UNIT\tINVERTER MODEL")
	for i, h := range s.Homes() {
		url, mu, iu := "", sim.MeterUnit, sim.InverterUnit
		if shared {
			url, mu, iu = ls[0].URL, sim.SharedMeterUnit(i), sim.SharedInverterUnit(i)
		} else {
			url = ls[i].URL
		}
		sp := h.Spec()
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\n", sp.Name, sp.PVPeakW, url, mu, iu, sp.InverterModel)
	}
	tw.Flush()
}

func simStatus(ctx context.Context, w io.Writer, s *sim.Sim, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.Now()
			line := now.Format("2006-01-02 15:04")
			for _, h := range s.Homes() {
				st := h.At(now)
				line += fmt.Sprintf("  %s pv %dW load %dW", h.Spec().Name, st.PVW, st.LoadW)
			}
			fmt.Fprintln(w, line)
		}
	}
}
