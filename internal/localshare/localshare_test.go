package localshare

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// summerNoon is three midday hours of a summer day for three homes: home1
// with 4 to 9 kWp of solar (and a battery), home2 with 1 to 2 kWp, home3
// with none.
func summerNoon(seed uint64) Options {
	return Options{Homes: 3, Seed: seed, Day: time.Date(2026, 6, 24, 0, 0, 0, 0, time.UTC), From: 10 * time.Hour, To: 13 * time.Hour,
		Latitude: 52.5, Longitude: 13.4}
}

// fingerprint is a Result as JSON: every figure and every settlement.
func fingerprint(t *testing.T, r *Result) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The same options give the same result, settlement for settlement; the
// day's intervals are all settled, every home's order is compared with
// its meter in each of them, and no more is delivered peer to peer than
// was exported.
func TestRunIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gateways over three simulated hours")
	}
	a, err := Run(context.Background(), summerNoon(5))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), summerNoon(5))
	if err != nil {
		t.Fatal(err)
	}
	if fa, fb := fingerprint(t, a), fingerprint(t, b); fa != fb {
		t.Fatalf("two runs of seed 5 differ:\n%s\n%s", fa, fb)
	}
	if a.Intervals != 12 || a.Expected != 12 || len(a.Settlements) != 12 {
		t.Fatalf("%d of %d intervals settled (%d settlements), want 12 of 12", a.Intervals, a.Expected, len(a.Settlements))
	}
	if a.ForecastN != 3*12 || len(a.Savings) != 3 {
		t.Errorf("forecasts compared %d times, savings of %d homes; want 36 and 3", a.ForecastN, len(a.Savings))
	}
	if c := a.Totals; c.PossibleLocalWh <= 0 || c.LocalWh > c.ExportWh || c.PossibleLocalWh > c.ExportWh || c.PossibleLocalWh > c.ConsumptionWh {
		t.Errorf("possible %d, delivered %d Wh, exported %d, imported %d", c.PossibleLocalWh, c.LocalWh, c.ExportWh, c.ConsumptionWh)
	}
	if a.Settlements[0].Interval != "2026-06-24T10:00Z" || a.Settlements[11].Interval != "2026-06-24T12:45Z" {
		t.Errorf("settled %s to %s, want 10:00 to 12:45", a.Settlements[0].Interval, a.Settlements[11].Interval)
	}
	c, err := Run(context.Background(), summerNoon(6))
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(t, c) == fingerprint(t, a) {
		t.Error("seeds 5 and 6 give the same day")
	}
}

// Bad options are refused, naming what is wrong.
func TestRunRejectsBadOptions(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Homes: 1}, "1 homes is outside"},
		{Options{Homes: 3, From: 5 * time.Hour, To: 4 * time.Hour}, "is no time"},
		{Options{Homes: 3, Step: -time.Second}, "must not be negative"},
	} {
		if _, err := Run(context.Background(), c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.o, err, c.want)
		}
	}
}

// MinSaving and ForecastMAE, by hand.
func TestResultFigures(t *testing.T) {
	r := Result{ForecastAbsWh: 250, ForecastN: 3} // 83.333... -> 83.3
	if got := r.ForecastMAE().String(); got != "83.3" {
		t.Errorf("MAE %s, want 83.3", got)
	}
	r = Result{ForecastAbsWh: 5, ForecastN: 4} // 1.25 -> 1.2, half to even
	if got := r.ForecastMAE().String(); got != "1.2" {
		t.Errorf("MAE %s, want 1.2", got)
	}
	if got := (Result{}).ForecastMAE().String(); got != "0" {
		t.Errorf("MAE of nothing %s", got)
	}
	// Savings 0.02, -0.01, -0.03, 0: the least is -0.03, two below zero.
	r = Result{Savings: map[string]decimal.Decimal{"a": decimal.RequireFromString("0.02"), "b": decimal.RequireFromString("-0.01"),
		"c": decimal.RequireFromString("-0.03"), "d": decimal.Zero}}
	if least, below := r.MinSaving(); least.String() != "-0.03" || below != 2 {
		t.Errorf("MinSaving %s, %d below zero; want -0.03, 2", least, below)
	}
}
