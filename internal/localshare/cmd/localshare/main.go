// Command localshare runs the measured days of issue 13 through the real
// gateways (internal/localshare) and prints one table row per day, number
// of homes and seed, then one row per day and number of homes over every
// seed: the local share (delivered peer to peer over the possible local
// exchange), the share of consumption met by neighbours, the least saving of
// a home and how many homes saved less than nothing, the shortfall
// compensation sellers paid, and the forecast's mean absolute error.
// scripts/measure-local-share runs it; docs/performance.md, "Local share",
// has the table it printed.
//
// The same flags print the same table, byte for byte; progress goes to
// standard error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // the community's time zone on any machine

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/internal/localshare"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// measuredDays are the days of issue 13, Wednesdays of 2026: a summer, a
// transition (spring) and a winter day of the H0 profile.
var measuredDays = map[string]string{"summer": "2026-06-24", "spring": "2026-04-22", "winter": "2026-01-14"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "localshare:", err)
		os.Exit(2)
	}
}

type run1 struct {
	day   string
	homes int
	seed  uint64
}

func run(ctx context.Context, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("localshare", flag.ContinueOnError)
	fs.SetOutput(progress)
	days := fs.String("days", "summer,spring,winter", "days to measure: summer, spring, winter, or dates YYYY-MM-DD")
	homes := fs.String("homes", "6", "numbers of homes, comma-separated (2-123)")
	seeds := fs.String("seeds", "1,2,3", "seeds, comma-separated")
	zone := fs.String("zone", "Europe/Berlin", "the community's time zone")
	lat := fs.Float64("lat", 52.52, "the community's latitude, degrees north")
	lon := fs.Float64("lon", 13.40, "the community's longitude, degrees east")
	safety := fs.String("safety-factor", "", "what if: every home's policy.safety_factor (default: the shipped configuration's)")
	minTrade := fs.String("min-trade-kwh", "", "what if: every gateway's market.min_trade_kwh (default: the shipped configuration's)")
	warmUp := fs.Duration("warm-up", time.Hour, "how long the gateways run before each day (72h: three days of time-of-day history)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var whatIf []func(*config.Config)
	for _, f := range []struct {
		name, value string
		set         func(*config.Config, decimal.Decimal)
	}{
		{"--safety-factor", *safety, func(c *config.Config, d decimal.Decimal) { c.Policy.SafetyFactor = d }},
		{"--min-trade-kwh", *minTrade, func(c *config.Config, d decimal.Decimal) { c.Market.MinTradeKWh = d }},
	} {
		if f.value == "" {
			continue
		}
		d, err := decimal.NewFromString(f.value)
		if err != nil {
			return fmt.Errorf("%s: %q is not a decimal", f.name, f.value)
		}
		whatIf = append(whatIf, func(c *config.Config) { f.set(c, d) })
	}
	configure := func(c *config.Config) {
		for _, f := range whatIf {
			f(c)
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return fmt.Errorf("--zone: %w", err)
	}
	var runs []run1
	dayList := strings.Split(*days, ",")
	homeList, err := ints("--homes", *homes)
	if err != nil {
		return err
	}
	seedList, err := ints("--seeds", *seeds)
	if err != nil {
		return err
	}
	dates := map[string]time.Time{}
	for _, d := range dayList {
		s := d
		if m, ok := measuredDays[d]; ok {
			s = m
		}
		t, err := time.ParseInLocation("2006-01-02", s, loc)
		if err != nil {
			return fmt.Errorf("--days: %q is neither summer, spring, winter nor a date: %w", d, err)
		}
		dates[d] = t
	}
	for _, h := range homeList {
		if h < 2 || h > 123 {
			return fmt.Errorf("--homes: %d is outside 2-123", h)
		}
		for _, d := range dayList {
			for _, s := range seedList {
				runs = append(runs, run1{d, h, uint64(s)})
			}
		}
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "day\tdate\thomes\tseed\tintervals\tpossible kWh\tp2p kWh\tlocal share\tof consumption\tmin saving\thomes < 0\tcompensation\tpayers\tforecast MAE Wh\t")
	type group struct {
		settled            []*settlement.IntervalSettlement
		minSaving          decimal.Decimal
		below, payers      int
		comp               decimal.Decimal
		absWh, n           int64
		intervals, expects int
	}
	var order []string
	groups := map[string]*group{}
	for i, r := range runs {
		began := time.Now()
		res, err := localshare.Run(ctx, localshare.Options{Homes: r.homes, Seed: r.seed, Day: dates[r.day], Zone: loc,
			Latitude: *lat, Longitude: *lon, WarmUp: *warmUp, Configure: configure, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fmt.Errorf("%s, %d homes, seed %d: %w", r.day, r.homes, r.seed, err)
		}
		fmt.Fprintf(progress, "localshare: %d/%d %s %d homes seed %d: local share %s in %s\n", i+1, len(runs), r.day, r.homes, r.seed,
			percent(res.Totals.ExchangeShare), time.Since(began).Round(100*time.Millisecond))
		least, below := res.MinSaving()
		row(tw, r.day, dates[r.day].Format("2006-01-02"), strconv.Itoa(r.homes), strconv.FormatUint(r.seed, 10),
			res.Intervals, res.Expected, res.Totals, least, below, res.CompensationPaid, res.Payers, res.ForecastMAE())
		key := r.day + "/" + strconv.Itoa(r.homes)
		g := groups[key]
		if g == nil {
			g = &group{minSaving: least}
			groups[key] = g
			order = append(order, key)
		}
		g.settled = append(g.settled, res.Settlements...)
		if least.LessThan(g.minSaving) {
			g.minSaving = least
		}
		g.below += below
		g.payers += res.Payers
		g.comp = g.comp.Add(res.CompensationPaid)
		g.absWh += res.ForecastAbsWh
		g.n += res.ForecastN
		g.intervals += res.Intervals
		g.expects += res.Expected
	}
	for _, key := range order {
		g := groups[key]
		day, homes, _ := strings.Cut(key, "/")
		c := settlement.CommunityTotals(g.settled...)
		mae := localshare.Result{ForecastAbsWh: g.absWh, ForecastN: g.n}.ForecastMAE()
		row(tw, day, "all seeds", homes, "", g.intervals, g.expects, c, g.minSaving, g.below, g.comp, g.payers, mae)
	}
	return tw.Flush()
}

// row prints one line of the table.
func row(w io.Writer, day, date, homes, seed string, intervals, expected int, c settlement.Community,
	least decimal.Decimal, below int, comp decimal.Decimal, payers int, mae decimal.Decimal) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t\n", day, date, homes, seed, intervals, expected,
		decimal.New(c.PossibleLocalWh, -3).StringFixed(3), decimal.New(c.ExchangedWh(), -3).StringFixed(3),
		percent(c.ExchangeShare), percent(c.LocalShare), least.StringFixed(4), below, comp.StringFixed(4), payers, mae.StringFixed(1))
}

// percent prints a share as a percentage with one decimal.
func percent(share decimal.Decimal) string { return settlement.Format(share.Shift(2), 1) + "%" }

func ints(flagName, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %q is not a whole number", flagName, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New(flagName + ": empty")
	}
	return out, nil
}
