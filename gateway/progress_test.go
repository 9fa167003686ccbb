package gateway

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
)

// infoLines returns the INFO records as "message k=v k=v".
func (l *logRecords) infoLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.all {
		if r.Level != slog.LevelInfo {
			continue
		}
		b := []string{r.Message}
		r.Attrs(func(a slog.Attr) bool { b = append(b, a.String()); return true })
		out = append(out, strings.Join(b, " "))
	}
	return out
}

// A gateway's first minutes and intervals at INFO, on a hand-moved clock:
// at start when the first order goes out and why it waits, the readings
// collected minute by minute, then one line per interval saying what
// happened to its order, its clearing and the settlements; nothing more.
func TestProgressLines(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500, "home4": 100},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	logs := map[string]*logRecords{}
	for id, g := range c.gws {
		logs[id] = &logRecords{}
		g.log = slog.New(logs[id])
	}
	c.run(t0.Add(45*time.Minute+5*time.Second), 5*time.Second)

	want := []string{
		// 12:00:05, the first tick, with one reading: the order for 12:15
		// goes out half-way to its gate closure, 12:06:30, by when the
		// forecast will have readings enough: the grid meter reports its
		// power, so a minute of them (forecast.Rules.StartSpan).
		"first order interval=2026-11-22T12:15Z at=2026-11-22 12:06:30 +0000 UTC waiting_for=the order time of its interval, " +
			"half-way to its gate closure (collecting readings: 0 of 1 minutes)",
		"readings collected: the forecast can place orders minutes=1 next_order=2026-11-22 12:06:30 +0000 UTC",
		// At the start of each interval: its order, its clearing, and from
		// 12:45 on the settlement of 12:15 (settled at 12:32).
		// (0.699 kWh: the buyers' first bids rest on whole-Wh counters over
		// the first 6.5 minutes, 400 and 299 Wh.)
		"interval interval=2026-11-22T12:15Z order=placed side=sell kwh=0.8 limit=0.08 clearing=verified clearer=operator price=0.08 own_fill_kwh=0.699",
		"interval interval=2026-11-22T12:30Z order=placed side=sell kwh=0.8 limit=0.08 clearing=verified clearer=operator price=0.08 own_fill_kwh=0.7",
		"interval interval=2026-11-22T12:45Z order=placed side=sell kwh=0.8 limit=0.08 clearing=verified clearer=operator price=0.08 own_fill_kwh=0.7 " +
			"settled=[2026-11-22T12:15Z]",
	}
	got := logs["home1"].infoLines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("home1's INFO lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A home whose surplus is below the minimum trade says so, once an
	// interval.
	var skipped []string
	for _, l := range logs["home4"].infoLines() {
		if strings.HasPrefix(l, "interval ") {
			skipped = append(skipped, l)
		}
	}
	if len(skipped) != 3 || !strings.Contains(skipped[0], "interval=2026-11-22T12:15Z order=skipped reason=below_minimum clearing=verified") {
		t.Errorf("home4's interval lines: %q, want 3, the first about 12:15 with its order skipped (below_minimum)", skipped)
	}

	// The clearer has no meter: it says so at start, then one line an
	// interval with what it cleared and settled itself.
	op := logs["operator"].infoLines()
	if len(op) == 0 || op[0] != "this gateway places no orders: it has no grid meter (a device with role grid)" {
		t.Errorf("the operator's first INFO line: %q", op[:min(1, len(op))])
	}
	var lines []string
	for _, l := range op {
		if strings.HasPrefix(l, "interval ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[0], "cleared_here=true") || !strings.HasSuffix(lines[2], "settled=[2026-11-22T12:15Z] settled_here=[2026-11-22T12:15Z]") {
		t.Errorf("the operator's interval lines:\n%s\nwant 3, each cleared here, the last settling 12:15 here", strings.Join(lines, "\n"))
	}
	if n := len(op) - len(lines); n > 2 {
		t.Errorf("the operator logged %d INFO lines besides its interval lines, want at most 2 (no meter; the roster):\n%s", n, strings.Join(op, "\n"))
	}
}

// A gateway that starts too late for the forecast to be ready at the open
// interval's order time says its first order waits for the readings, and
// when that will be.
func TestProgressFirstOrderWaitsForReadings(t *testing.T) {
	for _, c := range []struct {
		start time.Duration
		want  string
	}{
		// A minute of power readings (forecast.Rules.StartSpan) is enough.
		{6 * time.Minute, "first order interval=2026-11-22T12:15Z at=2026-11-22 12:07:00 +0000 UTC " +
			"waiting_for=readings for the forecast (collecting readings: 0 of 1 minutes)"},
		// Ready at 12:13:30, after 12:15's gate closure: 12:30's order time.
		{12*time.Minute + 30*time.Second, "first order interval=2026-11-22T12:30Z at=2026-11-22 12:21:30 +0000 UTC " +
			"waiting_for=the order time of its interval, half-way to its gate closure (collecting readings: 0 of 1 minutes)"},
	} {
		logs := &logRecords{}
		clk := &clock{t: t0.Add(c.start)}
		g, _ := deviceGateway(t, []Device{{Name: "grid", Role: config.RoleGrid, Poll: time.Second, Reader: &fakeMeter{}}}, true, logs, clk)
		g.Tick(context.Background(), clk.now())
		if got := logs.infoLines(); len(got) != 1 || got[0] != c.want {
			t.Errorf("started at %v: INFO lines %q, want %q", c.start, got, c.want)
		}
	}
}
