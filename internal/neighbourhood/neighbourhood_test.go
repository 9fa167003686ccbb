package neighbourhood_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// watch is an Observer of a whole neighbourhood: who sealed, verified and
// settled each interval.
type watch struct {
	mu       sync.Mutex
	sealed   map[string]string          // interval -> clearer
	verified map[string]map[string]bool // interval -> gateway -> verified without error
	settled  map[string]map[string]bool // interval -> gateway
}

func newWatch() *watch {
	return &watch{sealed: map[string]string{}, verified: map[string]map[string]bool{}, settled: map[string]map[string]bool{}}
}

func (w *watch) Verified(gw, interval string, _ *clearing.Verdict, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.verified[interval] == nil {
		w.verified[interval] = map[string]bool{}
	}
	w.verified[interval][gw] = err == nil
}

func (w *watch) Sealed(gw string, s *clearing.Sealed) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sealed[s.Interval] == "" {
		w.sealed[s.Interval] = gw
	}
}

func (w *watch) Settled(gw string, s *settlement.IntervalSettlement) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.settled[s.Interval] == nil {
		w.settled[s.Interval] = map[string]bool{}
	}
	w.settled[s.Interval][gw] = true
}

func (w *watch) settledBy(interval string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.settled[interval])
}

// A neighbourhood of two homes trades: its first traded interval is sealed
// by the operator, verified and settled by all three gateways, and in
// every gateway's ledger; the roster on disk is the one it runs on, and
// Close stops it cleanly.
func TestNeighbourhoodTradesAndSettles(t *testing.T) {
	testtool.Integration(t)
	data := t.TempDir()
	start := time.Date(2026, 12, 3, 16, 5, 0, 0, time.UTC) // rounded down to 16:00
	n, err := neighbourhood.New(neighbourhood.Options{Homes: 2, Seed: 1, Start: start, Speed: 600, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if want := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC); !n.SimStart.Equal(want) {
		t.Errorf("started at %s, want %s, an interval boundary", n.SimStart, want)
	}
	if got := strings.Join(n.IDs, " "); got != "operator home1 home2" {
		t.Errorf("gateways %q, want the operator, then the homes", got)
	}
	if !n.Roster.IsClearer(neighbourhood.Operator) || !n.Roster.IsClearer("home1") || n.Roster.IsClearer("home2") {
		t.Errorf("roster clearers: %+v, want the operator and home1 (standby)", n.Roster.Gateways)
	}
	onDisk, err := os.ReadFile(filepath.Join(data, "roster.json"))
	if err != nil || string(onDisk) != string(n.Roster.Encode()) {
		t.Errorf("roster.json %q (%v), want the roster the gateways run on", onDisk, err)
	}

	w := newWatch()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Start(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx, w); err == nil {
		t.Error("a second Start was not refused")
	}
	first := market.IntervalID(n.SimStart.Add(15 * time.Minute))
	for w.settledBy(first) < len(n.IDs) {
		select {
		case <-n.Done():
			t.Fatalf("the gateways stopped before %s was settled everywhere: %v", first, n.Wait())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-n.Done():
	default:
		t.Error("Done is not closed after Close")
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sealed[first] != neighbourhood.Operator {
		t.Errorf("%s sealed by %q, want the operator", first, w.sealed[first])
	}
	for _, id := range n.IDs {
		if !w.verified[first][id] {
			t.Errorf("%s: %s did not verify it: %v", first, id, w.verified[first])
		}
		found := false
		if _, err := ledger.Scan(n.LedgerDir(id), 1, func(r ledger.Record) error {
			found = found || (r.Kind == record.KindInterval && r.Key == first)
			return nil
		}); err != nil {
			t.Errorf("%s's ledger: %v", id, err)
		}
		if !found {
			t.Errorf("%s's ledger in %s lacks the settlement of %s", id, n.LedgerDir(id), first)
		}
	}
}

// New refuses what cannot make a neighbourhood, naming it, and a second
// neighbourhood on the same data directory keeps the first one's keys.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		o    neighbourhood.Options
		want string
	}{
		{neighbourhood.Options{Homes: 1, Speed: 1, DataDir: t.TempDir()}, "1 homes is outside 2-"},
		{neighbourhood.Options{Homes: 2, DataDir: t.TempDir()}, "speed 0 is not more than 0"},
		{neighbourhood.Options{Homes: 2, Speed: 1}, "no data directory"},
	} {
		if n, err := neighbourhood.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			if n != nil {
				n.Close()
			}
			t.Errorf("New(%+v): %v, want %q", tc.o, err, tc.want)
		}
	}
	data := t.TempDir()
	o := neighbourhood.Options{Homes: 2, Speed: 1, DataDir: data}
	var rosters []string
	for range 2 {
		n, err := neighbourhood.New(o)
		if err != nil {
			t.Fatal(err)
		}
		rosters = append(rosters, string(n.Roster.Encode()))
		if got, want := n.LedgerDir("home2"), filepath.Join(data, "home2", "ledger"); got != want {
			t.Errorf("home2's ledger in %s, want %s", got, want)
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close without Start: %v", err)
		}
	}
	if rosters[0] != rosters[1] {
		t.Errorf("the second neighbourhood on %s has other keys:\n%s\n%s", data, rosters[0], rosters[1])
	}
}
