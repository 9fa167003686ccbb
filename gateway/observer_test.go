package gateway

import (
	"slices"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// The test community is one Observer of all its gateways.
var _ Observer = (*community)(nil)

// Verified records gateway gw's verification of interval.
func (c *community) Verified(gw, interval string, _ *clearing.Verdict, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified[interval] == nil {
		c.verified[interval] = map[string]error{}
	}
	c.verified[interval][gw] = err
}

// Sealed records that gw sealed an interval.
func (c *community) Sealed(gw string, s *clearing.Sealed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sealed[s.Interval] = append(c.sealed[s.Interval], gw)
}

// Settled records that gw recorded an interval's settlement.
func (c *community) Settled(gw string, s *settlement.IntervalSettlement) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settled[s.Interval] = append(c.settled[s.Interval], gw)
}

// One Observer watches a whole community, and each call names the gateway
// it comes from: the clearer alone seals an interval, once, and every
// gateway verifies its clearing and records its settlement, once.
func TestObserverNamesTheGateway(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary, "home1": config.ClearerStandby})
	// 12:15 is cleared at 12:13, delivered 12:15-12:30, settled at 12:32.
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	const interval = "2026-11-22T12:15Z"
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.sealed[interval]; !slices.Equal(got, []string{"operator"}) {
		t.Errorf("%s sealed by %v, want the primary clearer alone, once", interval, got)
	}
	for _, gw := range []string{"operator", "home1", "home2"} {
		if err, ok := c.verified[interval][gw]; !ok || err != nil {
			t.Errorf("%s: %s's verification: seen %v, err %v", interval, gw, ok, err)
		}
	}
	settled := slices.Clone(c.settled[interval])
	slices.Sort(settled)
	if !slices.Equal(settled, []string{"home1", "home2", "operator"}) {
		t.Errorf("%s settled by %v, want each gateway once", interval, settled)
	}
	// The zero ObserverFuncs, what a gateway without an Observer uses,
	// observes nothing and does not fail.
	var none ObserverFuncs
	none.Verified("home1", interval, nil, nil)
	none.Sealed("home1", &clearing.Sealed{Interval: interval})
	none.Settled("home1", &settlement.IntervalSettlement{Interval: interval})
}
