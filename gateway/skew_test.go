package gateway

import (
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// A home whose clock is a few seconds ahead publishes its figures a few
// seconds before the clearer's clock says the interval is over: they are
// real figures (the fault suite, cmd/p2pgrid TestFaults, found them
// refused as "not over" for a clock 7 s fast, and the home settled as
// missing every interval). Figures well before the end are still refused.
func TestMeteredFromAClockAFewSecondsAhead(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 1000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	op := c.gws["operator"]
	m, err := protocol.SignMetered(testKey("home1"), "c1", "2026-11-22T12:15Z", "home1", 0, 250)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := protocol.DecodeMetered(m)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)
	if err := op.rules.Check(msg, end.Add(-7*time.Second)); err != nil {
		t.Errorf("figures 7 s before the end (a clock 7 s fast): %v", err)
	}
	if err := op.rules.Check(msg, end.Add(-5*time.Minute)); err == nil {
		t.Error("figures 5 minutes before the end accepted")
	}
}
