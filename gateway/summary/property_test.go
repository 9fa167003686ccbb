package summary

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/p2pgrid/p2pgrid/settlement"
)

// For any statements of home1 and a neighbour, over two months, fed in any
// order and some twice: the month's totals are settlement.Sum of home1's
// statements of intervals that start in the month (each once), today's of
// those that start today, in the tally's zone; and the order changes
// nothing.
func TestTotalsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		zone := rapid.SampledFrom([]*time.Location{time.UTC, berlin, time.FixedZone("UTC-9:30", -(9*3600 + 1800))}).Draw(t, "zone")
		now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rapid.IntRange(0, 40*96).Draw(t, "now")) * 15 * time.Minute)
		type st struct {
			iv           string
			who          string
			bought, sold int64
			saving       decimal.Decimal
		}
		n := rapid.IntRange(0, 60).Draw(t, "n")
		var all []st
		seen := map[string]bool{}
		for range n {
			start := now.Add(-time.Duration(rapid.IntRange(0, 45*96).Draw(t, "ago")) * 15 * time.Minute)
			s := st{iv: start.Format("2006-01-02T15:04Z"), who: rapid.SampledFrom([]string{"home1", "home2"}).Draw(t, "who"),
				bought: rapid.Int64Range(0, 1e6).Draw(t, "bought"), sold: rapid.Int64Range(0, 1e6).Draw(t, "sold"),
				saving: decimal.New(rapid.Int64Range(-1e9, 1e9).Draw(t, "saving"), -int32(rapid.IntRange(0, 6).Draw(t, "exp")))}
			if seen[s.who+s.iv] {
				continue // one statement per participant and interval, as settlement makes them
			}
			seen[s.who+s.iv] = true
			all = append(all, s)
			if rapid.Bool().Draw(t, "twice") {
				all = append(all, s)
			}
		}
		feed := func(order []int) Summary {
			tally := NewTally("home1", zone, now)
			for _, i := range order {
				s := all[i]
				r := stmtOf(s.iv, s.who, s.bought, s.sold, s.saving)
				if err := tally.Add(r.kind, r.data); err != nil {
					t.Fatal(err)
				}
			}
			return tally.Summary("c1", "EUR", now)
		}
		order := make([]int, len(all))
		for i := range order {
			order[i] = i
		}
		got := feed(order)
		shuffled := rapid.Permutation(order).Draw(t, "order")
		if a, b := mustJSON(t, got), mustJSON(t, feed(shuffled)); a != b {
			t.Fatalf("the order of the statements changed the summary:\n%s\n%s", a, b)
		}
		var today, month []settlement.Statement
		counted := map[string]bool{}
		for _, s := range all {
			start, _ := time.Parse("2006-01-02T15:04Z", s.iv)
			local, nowLocal := start.In(zone), now.In(zone)
			if s.who != "home1" || counted[s.iv] || local.Format("2006-01") != nowLocal.Format("2006-01") {
				continue
			}
			counted[s.iv] = true
			x := settlement.Statement{Participant: "home1", BoughtWh: s.bought, SoldWh: s.sold, Saving: s.saving}
			month = append(month, x)
			if local.Format("2006-01-02") == nowLocal.Format("2006-01-02") {
				today = append(today, x)
			}
		}
		for _, c := range []struct {
			name string
			got  Period
			want settlement.Statement
		}{{"today", got.Today, settlement.Sum(today...)}, {"month", got.ThisMonth, settlement.Sum(month...)}} {
			if c.got.BoughtWh != c.want.BoughtWh || c.got.SoldWh != c.want.SoldWh || !c.got.Saving.Equal(c.want.Saving) {
				t.Fatalf("%s: %+v, want %+v", c.name, c.got, c.want)
			}
		}
	})
}

func mustJSON(t *rapid.T, s Summary) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
