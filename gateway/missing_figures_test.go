package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// A participant settled without metered figures (its figures were dropped
// on the way) is flagged in every ledger's settlement record: intervals 1,
// missing_intervals 1; one whose figures arrived says missing_intervals 0.
func TestLedgerRecordSaysFiguresWereMissing(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	ledgers := map[string]*memLedger{}
	for id, g := range c.gws {
		ledgers[id] = &memLedger{}
		g.ledger = ledgers[id]
	}
	c.gws["home1"].mq.(*gatewaytest.Client).Drop = func(topic string) bool { return strings.Contains(topic, "/metered/") }
	c.run(t0.Add(33*time.Minute), 5*time.Second) // 12:15 is settled at 12:32
	const interval = "2026-11-22T12:15Z"
	for id, l := range ledgers {
		for who, want := range map[string]string{"home1": "1", "home2": "0"} {
			raw := l.find(record.KindStatement, interval+"/"+who)
			if raw == nil {
				t.Fatalf("%s's ledger has no settlement record of %s for %s", id, who, interval)
			}
			var rec map[string]any
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
			if rec["missing_intervals"] != want || rec["intervals"] != "1" {
				t.Errorf("%s's ledger: settlement of %s: missing_intervals %v, intervals %v; want %s and 1: %s",
					id, who, rec["missing_intervals"], rec["intervals"], want, raw)
			}
		}
	}
}
