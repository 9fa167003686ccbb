package gateway

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// strictLedger is a Ledger that, like settlement/ledger, refuses an entry
// whose kind and key it holds already, and counts the refusals.
type strictLedger struct {
	memLedger
	dups int
}

func (l *strictLedger) Append(es ...ledger.Entry) ([]ledger.Record, error) {
	l.mu.Lock()
	for _, e := range es {
		for _, have := range l.entries {
			if have.Kind == e.Kind && have.Key == e.Key {
				l.dups++
				l.mu.Unlock()
				return nil, fmt.Errorf("%s %s: %w", e.Kind, e.Key, ledger.ErrDuplicate)
			}
		}
	}
	l.mu.Unlock()
	return l.memLedger.Append(es...)
}

// Messages are delivered as gateway/mqtt delivers them: a goroutine per
// subscription, so the result, book and settlement handlers of one gateway
// run at the same time. A gateway that subscribes when an interval's book,
// result and settlement are all retained gets the three at once, and must
// still verify and record the settlement exactly once. Meanwhile /healthz
// and the alarms are read from another goroutine, as the HTTP server does.
// Run with -race (make test does).
func TestConcurrentDeliverySettlesOnce(t *testing.T) {
	hub := gatewaytest.NewConcurrentHub()
	t.Cleanup(hub.Close)
	c := newCommunityOn(t, hub,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})

	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, id := range []string{"home1", "home2"} {
				c.mu.Lock()
				g := c.gws[id]
				c.mu.Unlock()
				_ = g.Health()
				_ = g.Alarms()
			}
		}
	}()
	c.run(t0.Add(33*time.Minute), 5*time.Second) // 12:15 settled at 12:32
	close(stop)
	readers.Wait()
	interval := "2026-11-22T12:15Z"
	if hub.Retained(c.gws["operator"].Topics().Settlement(interval)) == nil {
		t.Fatalf("no settlement of %s published", interval)
	}

	for i := range 40 {
		id := "home2"
		var mu sync.Mutex
		settled := 0
		led := &strictLedger{}
		g, err := New(Options{Config: c.gws[id].cfg, Key: testKey(id), Roster: c.roster,
			MQTT: hub.Client(fmt.Sprintf("%s-%d", id, i)), Now: c.now, Ledger: led,
			Observer: ObserverFuncs{OnSettled: func(_ string, s *settlement.IntervalSettlement) {
				mu.Lock()
				defer mu.Unlock()
				if s.Interval == interval {
					settled++
				}
			}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		hub.Wait()
		mu.Lock()
		n := settled
		mu.Unlock()
		if n != 1 || led.dups != 0 {
			t.Fatalf("subscriber %d: settlement of %s handled %d times, %d duplicate ledger appends; want once, none", i, interval, n, led.dups)
		}
		if led.find(record.KindInterval, interval) == nil {
			t.Fatalf("subscriber %d: the settlement of %s is not in its ledger", i, interval)
		}
		if got := testutilCount(g.metrics.ledgerFailures); got != 0 {
			t.Fatalf("subscriber %d: %v ledger failures", i, got)
		}
	}
}
