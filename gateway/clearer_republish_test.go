package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
)

// After a new connection a clearer publishes again, the same bytes, the
// book, result and settlement it published (a broker acknowledged and
// lost them), and result/latest with its newest clearing; the standby its
// own clearing too. Gateways that verified them verify nothing twice. Not
// without a new connection, and not where another clearer's clearing is
// the one that verified.
func TestClearerRepublishesAfterReconnect(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary, "home2": config.ClearerStandby})
	op, sb := c.gws["operator"], c.gws["home2"]
	var lost bool
	clearing := func(topic string) bool {
		return lost && (strings.Contains(topic, "/book/") || strings.Contains(topic, "/result/") || strings.Contains(topic, "/settlement/"))
	}
	opMQ, sbMQ := &reconnecting{Client: c.hub.Client("operator")}, &reconnecting{Client: c.hub.Client("home2")}
	opMQ.Drop, sbMQ.Drop = clearing, clearing
	op.mq, sb.mq = opMQ, sbMQ
	logs := &logRecords{}
	op.log = slog.New(logs)
	step := func() { c.run(c.now().Add(5*time.Second), 5*time.Second) }
	published := func(from, topic string) int {
		c.hub.Wait()
		n := 0
		for _, m := range c.hub.Published {
			if m.From == from && m.Topic == topic {
				n++
			}
		}
		return n
	}
	verifiedOK := func(id string) float64 { return testutilCount(c.gws[id].metrics.verifications.WithLabelValues("ok")) }
	settledOK := func(id string) float64 {
		return testutilCount(c.gws[id].metrics.verifications.WithLabelValues("settlement_ok"))
	}
	tp := op.Topics()

	// The primary's clearing of 12:15, sealed at 12:13, is lost.
	first, second := "2026-11-22T12:15Z", "2026-11-22T12:30Z"
	c.run(t0.Add(13*time.Minute-5*time.Second), 5*time.Second)
	lost = true
	step()
	lost = false
	if !op.intervals[first].clearedHere || len(c.verified[first]) != 0 {
		t.Fatalf("the primary cleared %s: %v, verified by %v: want cleared and lost", first, op.intervals[first].clearedHere, c.verified[first])
	}
	step()
	if n := published("operator", tp.Result(first)); n != 0 {
		t.Fatalf("the primary published its result for %s again %d times with no new connection", first, n)
	}
	opMQ.connects.Add(1)
	step()
	if n := len(c.verified[first]); n != 3 {
		t.Errorf("after the primary's new connection %s is verified by %v, want all 3", first, c.verified[first])
	}
	for _, topic := range []string{tp.Book(first), tp.Result(first), tp.ResultLatest()} {
		if n := published("operator", topic); n != 1 {
			t.Errorf("the primary published %s %d times after a new connection, want 1", topic, n)
		}
	}
	if got := c.hub.Retained(tp.Result(first)); !bytes.Equal(got, op.intervals[first].ownResult) {
		t.Errorf("retained %s is not the result the primary sealed:\n%s", tp.Result(first), got)
	}
	if got := c.hub.Retained(tp.ResultLatest()); !bytes.Equal(got, op.intervals[first].ownResult) {
		t.Errorf("retained %s is not the primary's result of %s:\n%s", tp.ResultLatest(), first, got)
	}
	if n := len(logs.find(slog.LevelInfo, "published again after the reconnect")); n != 1 {
		t.Errorf("the primary logged %d times that it published again, want 1", n)
	}
	before := verifiedOK("home1")
	opMQ.connects.Add(1)
	step()
	if n := published("operator", tp.Result(first)); n != 2 {
		t.Errorf("the primary published its result for %s again %d times after two new connections, want 2", first, n)
	}
	if n := verifiedOK("home1"); n != before {
		t.Errorf("home1 verified the repeat of %s again (%v verifications, %v before)", first, n, before)
	}

	// Both clearers' clearings of 12:30 are lost: the standby, connected
	// anew, publishes its own; the primary, which verified it, then leaves
	// 12:30 alone.
	c.run(t0.Add(28*time.Minute-5*time.Second), 5*time.Second)
	lost = true
	c.run(t0.Add(28*time.Minute+35*time.Second), 5*time.Second)
	lost = false
	if !op.intervals[second].clearedHere || !sb.intervals[second].clearedHere || len(c.verified[second]) != 0 {
		t.Fatalf("%s cleared by the primary %v, by the standby %v, verified by %v: want cleared by both and lost", second,
			op.intervals[second].clearedHere, sb.intervals[second].clearedHere, c.verified[second])
	}
	sbMQ.connects.Add(1)
	step()
	if n := len(c.verified[second]); n != 3 {
		t.Errorf("after the standby's new connection %s is verified by %v, want all 3", second, c.verified[second])
	}
	standby := sb.intervals[second].ownResult
	opMQ.connects.Add(1)
	step()
	if n := published("operator", tp.Result(second)); n != 0 {
		t.Errorf("the primary published its result for %s, where the standby's verified, %d times", second, n)
	}
	if got := c.hub.Retained(tp.Result(second)); !bytes.Equal(got, standby) {
		t.Errorf("retained %s is not the standby's result:\n%s", tp.Result(second), got)
	}
	if got := c.hub.Retained(tp.ResultLatest()); !bytes.Equal(got, standby) {
		t.Errorf("retained %s is not the standby's result of %s, the newest:\n%s", tp.ResultLatest(), second, got)
	}
	if n := published("operator", tp.Result(first)); n != 3 {
		t.Errorf("the primary published its result for %s %d times after three new connections, want 3", first, n)
	}

	// The primary's settlement of 12:15, at 12:32, is lost.
	c.run(t0.Add(32*time.Minute-5*time.Second), 5*time.Second)
	lost = true
	step()
	lost = false
	if !op.intervals[first].settledHere || settledOK("home1") != 0 {
		t.Fatalf("the primary settled %s: %v; home1 verified %v settlements: want settled and lost", first, op.intervals[first].settledHere, settledOK("home1"))
	}
	opMQ.connects.Add(1)
	step()
	for _, id := range []string{"operator", "home1", "home2"} {
		if n := settledOK(id); n != 1 {
			t.Errorf("after the primary's new connection %s verified %v settlements of %s, want 1", id, n, first)
		}
	}
	opMQ.connects.Add(1)
	step()
	if n := published("operator", tp.Settlement(first)); n != 2 {
		t.Errorf("the primary published its settlement of %s %d times after two new connections, want 2", first, n)
	}
	if got := c.hub.Retained(tp.Settlement(first)); !bytes.Equal(got, op.intervals[first].ownSettled) {
		t.Errorf("retained %s is not the primary's settlement:\n%s", tp.Settlement(first), got)
	}
	for _, id := range []string{"operator", "home1", "home2"} {
		if n := settledOK(id); n != 1 {
			t.Errorf("%s verified the repeat of %s's settlement: %v settlements, want 1", id, first, n)
		}
	}
}
