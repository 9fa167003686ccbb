package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// The demo's table lists every interval in order, the ones that were never
// cleared or settled too, each with what went wrong, and its verdict names
// them; an interval waits for its settlement until it is overdue.
func TestDemoTrackerListsEveryInterval(t *testing.T) {
	first := time.Date(2026, 12, 3, 16, 15, 0, 0, time.UTC)
	now := first
	cfg := config.Default() // 15m intervals, settled 2m after their end
	var out bytes.Buffer
	tr := newDemoTracker(&out, 3, func() time.Time { return now }, cfg, first, time.Millisecond, 4)
	gws := []string{"operator", "home1", "home2"}
	ids := []string{"2026-12-03T16:15Z", "2026-12-03T16:30Z", "2026-12-03T16:45Z", "2026-12-03T17:00Z"}
	result := &auction.Result{Interval: ids[0], QtyDecimals: 3, PriceDecimals: 6, Cleared: true, Price: 120000, Volume: 1500, Orders: 3}
	everyone := func(id string, missing ...string) {
		r := *result
		r.Interval = id
		tr.Sealed("operator", &clearing.Sealed{Interval: id, Cleared: &r})
		s := &settlement.IntervalSettlement{Interval: id}
		for _, p := range []string{"home1", "home2"} {
			st := settlement.Statement{Participant: p, Intervals: 1}
			for _, m := range missing {
				if m == p {
					st.MissingIntervals = 1
				}
			}
			s.Participants = append(s.Participants, st)
		}
		for _, gw := range gws {
			tr.Verified(gw, id, nil, nil)
			tr.Settled(gw, s)
		}
	}
	// 16:30 is never cleared; 16:45 is settled without home2's figures;
	// 17:00 is cleared and verified, settled by one gateway only; 16:15
	// goes well, but only at 16:31.
	everyone(ids[2], "home2")
	r := *result
	r.Interval = ids[3]
	tr.Sealed("operator", &clearing.Sealed{Interval: ids[3], Cleared: &r})
	for _, gw := range gws {
		tr.Verified(gw, ids[3], nil, nil)
	}
	tr.Settled("home1", &settlement.IntervalSettlement{Interval: ids[3]})

	now = first.Add(16 * time.Minute) // 16:31: 16:15 is not settled yet, nor overdue
	if tr.printDue() || out.Len() != 0 {
		t.Fatalf("printed before the first interval was settled:\n%s", out.String())
	}
	everyone(ids[0])
	if tr.printDue() || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("once 16:15 is settled everywhere, one line; got:\n%s", out.String())
	}
	if p := tr.pending(); strings.Join(p, " ") != "2026-12-03T16:30Z 2026-12-03T16:45Z" {
		t.Errorf("pending at 16:31: %v, want 16:30 and 16:45 (open for orders)", p)
	}
	now = first.Add(3 * time.Hour) // everything overdue
	if !tr.printDue() {
		t.Fatal("the limit of 4 intervals is not reached")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"2026-12-03T16:15Z       3    0.1200       1.500      0       3/3      3/3",
		"2026-12-03T16:30Z       -         -           -      -       0/3      0/3  <- never cleared; never settled",
		"2026-12-03T16:45Z       3    0.1200       1.500      0       3/3      3/3  <- settled without the figures of home2",
		"2026-12-03T17:00Z       3    0.1200       1.500      0       3/3      1/3  <- settled by 1/3",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	err := tr.verdict()
	if err == nil {
		t.Fatal("verdict nil with three intervals gone wrong")
	}
	for _, w := range []string{"3 of 4 intervals", ids[1] + " never cleared, never settled", ids[2] + " settled without the figures of home2", ids[3] + " settled by 1/3"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("verdict %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), ids[0]) {
		t.Errorf("verdict %q: want one line naming only the intervals that went wrong", err)
	}
}

// An interrupted demo lists the intervals it stopped before they were
// settled, and does not count them against its exit status.
func TestDemoInterruptedListsPending(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole neighbourhood")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out bytes.Buffer
	f := demoFlags{homes: 3, interval: 1500 * time.Millisecond, data: t.TempDir(), seed: 1}
	err := runDemo(ctx, f, &out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("interrupted demo: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "stopped before these were settled, not counted: 2026-") {
		t.Fatalf("last line %q, want the pending intervals\n%s", last, out.String())
	}
	if len(lines) < 4+2 { // banner, hint, note, header; after 5s at 1.5s an interval, 16:15 and 16:30 settled
		t.Errorf("fewer than two intervals settled in 5s:\n%s", out.String())
	}
}

// The closing summary sums the printed intervals' settlements: local share
// of the possible local exchange, and of consumption.
func TestDemoSummary(t *testing.T) {
	first := time.Date(2026, 12, 3, 16, 15, 0, 0, time.UTC)
	var out bytes.Buffer
	tr := newDemoTracker(&out, 1, func() time.Time { return first.Add(3 * time.Hour) }, config.Default(), first, time.Millisecond, 2)
	// 16:15: home1 exports 1000 Wh, home2 imports 600, 500 delivered
	// peer to peer; possible min(1000, 600) = 600. 16:30: home2 imports
	// 400, nobody exports: possible 0. Local share 500/600 = 83.3%; of
	// consumption 500/(600+400) = 50.0%.
	tr.Settled("operator", &settlement.IntervalSettlement{Interval: "2026-12-03T16:15Z",
		Trades:       []settlement.TradeSettlement{{Wh: 500, DeliveredWh: 500}},
		Participants: []settlement.Statement{{Participant: "home1", ExportWh: 1000}, {Participant: "home2", ImportWh: 600}}})
	tr.Settled("operator", &settlement.IntervalSettlement{Interval: "2026-12-03T16:30Z",
		Participants: []settlement.Statement{{Participant: "home1"}, {Participant: "home2", ImportWh: 400}}})
	if !tr.printDue() {
		t.Fatal("the limit of 2 intervals is not reached")
	}
	tr.summary()
	want := "summary: 2 intervals settled, exchanged peer to peer 0.5 kWh of 0.6 kWh possible locally (local share 83.3%), 50.0% of consumption met by neighbours\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("got:\n%s\nwant last line:\n%s", out.String(), want)
	}
}
