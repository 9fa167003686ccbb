package report

import (
	"time"

	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// FromLedger reads the settled intervals starting in [from, to) from the
// ledger in dir, read-only and without its lock (ledger.Scan: safe next to
// a running gateway): a row per participant (only participant's, unless
// it is "") and interval, the community's totals over those intervals,
// and the currency the ledger's latest clearing record names ("" if none
// does).
func FromLedger(dir string, from, to time.Time, participant string) (rows []Row, c *settlement.Community, currency string, err error) {
	var settled []*settlement.IntervalSettlement
	currency, err = ScanSettled(dir, from, to, func(s *settlement.IntervalSettlement) {
		settled = append(settled, s)
		for _, p := range s.Participants {
			if participant == "" || p.Participant == participant {
				rows = append(rows, Row{Interval: s.Interval, Statement: p})
			}
		}
	})
	if err != nil {
		return nil, nil, "", err
	}
	totals := settlement.CommunityTotals(settled...)
	return rows, &totals, currency, nil
}

// ScanSettled reads the ledger in dir as FromLedger does and passes each
// settlement of an interval starting in [from, to) to fn, in ledger
// order. It returns the currency the latest clearing record names.
func ScanSettled(dir string, from, to time.Time, fn func(*settlement.IntervalSettlement)) (currency string, err error) {
	// A torn last record (a crash, or an append under way) is cut by the
	// gateway on its next start; the records before it are intact and are
	// read. Anything else broken in the chain is an error.
	_, err = ledger.Scan(dir, 1, func(r ledger.Record) error {
		switch r.Kind {
		case record.KindClearing:
			if c, err := record.DecodeClearing(r.Data); err == nil && c.Currency != "" {
				currency = c.Currency
			}
		case record.KindInterval:
			v, err := record.Decode(r)
			if err != nil {
				return err
			}
			s := v.(*settlement.IntervalSettlement)
			at, err := market.ParseIntervalLoose(s.Interval)
			if err != nil || at.Before(from) || !at.Before(to) {
				return nil
			}
			fn(s)
		}
		return nil
	})
	return currency, err
}
