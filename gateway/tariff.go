package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/tariff"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// TariffPath is the route of the community's price for the coming
// intervals, in the form evcc reads for a custom grid tariff (docs/evcc.md).
const TariffPath = "/tariff"

// ledgerReader is what /tariff reads of the ledger for its estimate: the
// clearing records of the last days. settlement/ledger.Ledger has it; a
// Ledger without it leaves the estimate to the clearings held in memory.
type ledgerReader interface {
	Last() uint64
	Read(from uint64, max int) ([]ledger.Record, error)
}

var _ ledgerReader = (*ledger.Ledger)(nil)

// tariffHistory holds the verified clearings of the last tariff.MaxDays
// days that the ledger records, read as the ledger grows: the first
// request finds where those days start (a binary search over the records'
// times, which the gateway appends in order), later ones read only what
// was appended since.
type tariffHistory struct {
	mu      sync.Mutex
	next    uint64 // the next record to read; 0 before the first request
	byStart map[int64]tariff.Clearing
}

// readBatch is how many records one Read of the history takes.
const readBatch = 512

// clearings returns the clearings the ledger holds of intervals starting
// at or after since, reading what it has not read yet.
func (h *tariffHistory) clearings(l ledgerReader, cal market.Calendar, now, since time.Time) ([]tariff.Clearing, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byStart == nil {
		h.byStart = map[int64]tariff.Clearing{}
	}
	last := l.Last()
	if h.next == 0 {
		from, err := firstSince(l, last, now.Add(-tariff.MaxDays*24*time.Hour-time.Hour))
		if err != nil {
			return nil, err
		}
		h.next = from
	}
	for h.next <= last {
		recs, err := l.Read(h.next, readBatch)
		if err != nil {
			return nil, fmt.Errorf("ledger: record %d: %w", h.next, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Kind != record.KindClearing {
				continue
			}
			c, err := record.DecodeClearing(r.Data)
			if err != nil {
				continue // record.Decode's readers report it; the estimate does without
			}
			start, _ := market.ParseIntervalLoose(c.Interval) // DecodeClearing checked it
			if !cal.Aligned(start) {
				continue // not one of this market's intervals
			}
			k := tariff.Clearing{Start: start.UTC(), Cleared: c.Price.IsSet(), Price: c.Price.Value()}
			h.byStart[start.Unix()] = k
		}
		h.next = recs[len(recs)-1].Seq + 1
	}
	var out []tariff.Clearing
	for s, c := range h.byStart {
		if c.Start.Before(now.Add(-tariff.MaxDays*24*time.Hour - time.Hour)) {
			delete(h.byStart, s)
		} else if !c.Start.Before(since) {
			out = append(out, c)
		}
	}
	return out, nil
}

// firstSince returns the first record appended at or after t (last+1 if
// none): a binary search, each probe one Read.
func firstSince(l ledgerReader, last uint64, t time.Time) (uint64, error) {
	lo, hi := uint64(1), last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		recs, err := l.Read(mid, 1)
		if err != nil {
			return 0, fmt.Errorf("ledger: record %d: %w", mid, err)
		}
		if len(recs) == 0 {
			return 0, fmt.Errorf("ledger: record %d of %d missing", mid, last)
		}
		if recs[0].Time.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// errNoRetail: /tariff cannot price an interval without a local clearing.
var errNoRetail = errors.New("market.price_cap (the grid's retail tariff) is not set: " +
	"/tariff has no price for the intervals without a local clearing")

// tariffRules reads the query of a /tariff request: horizon (a Go
// duration, e.g. 24h) and days (how many days back the estimate looks).
func (g *Gateway) tariffRules(r *http.Request) (tariff.Rules, error) {
	mk := g.cfg.Market
	if mk.PriceCap == nil {
		return tariff.Rules{}, errNoRetail
	}
	tr := tariff.Rules{Calendar: g.calendar, Retail: *mk.PriceCap, Fee: mk.Fee}
	q := r.URL.Query()
	if v := q.Get("horizon"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return tr, fmt.Errorf("horizon %.40q: want a duration such as 24h", v)
		}
		tr.Horizon = d
	}
	if v := q.Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return tr, fmt.Errorf("days %.40q: want a whole number from 1 to %d", v, tariff.MaxDays)
		}
		tr.Days = n
	}
	return tr, tr.Check()
}

// knownClearings returns the verified clearings the gateway holds in
// memory (the intervals of its window).
func (g *Gateway) knownClearings() []tariff.Clearing {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []tariff.Clearing
	for _, iv := range g.intervals {
		if res := iv.cleared; res != nil {
			out = append(out, tariff.Clearing{Start: iv.start, Cleared: res.Cleared, Price: g.market.Price(res.Price)})
		}
	}
	return out
}

// tariffHandler serves TariffPath: GET answers the slots as a JSON list;
// a bad query is a 400 naming the parameter, a market without a retail
// tariff a 503.
func (g *Gateway) tariffHandler() http.HandlerFunc {
	hist := &tariffHistory{}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: GET "+TariffPath, http.StatusMethodNotAllowed)
			return
		}
		rules, err := g.tariffRules(r)
		if errors.Is(err, errNoRetail) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := g.now()
		var known []tariff.Clearing
		if l, ok := g.ledger.(ledgerReader); ok {
			since := g.calendar.Start(now).Add(-rules.Lookback())
			if known, err = hist.clearings(l, g.calendar, now, since); err != nil {
				g.log.Warn("tariff: the ledger's clearings not read; estimating without them", "err", err)
			}
		}
		known = append(known, g.knownClearings()...) // last: what memory holds wins
		slots, err := tariff.Slots(now, rules, known)
		if err != nil {
			g.log.Error("tariff not computed", "err", err)
			http.Error(w, "tariff not computed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		body, err := json.Marshal(slots)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(body, '\n'))
	}
}
