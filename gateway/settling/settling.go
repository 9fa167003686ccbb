// Package settling is the settlement side of a gateway, as
// gateway/clearing is its market side: the grid meter's counters at
// interval boundaries turned into an interval's figures (Boundaries,
// Figures); the clearer's collection of the neighbours' signed figures,
// refusing what no meter can have counted (Collector); the clearer's
// settlement of an interval, signed (Seal); and the check with which every
// gateway settles again from the same signed figures and compares (Verify).
//
// It is pure apart from the clock values handed in and the Store the
// boundaries are saved through: no MQTT, no goroutines, no files. Package
// gateway feeds it readings and messages and publishes what it returns.
package settling

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// Rules are what settling an interval needs beyond its figures; they are
// the same on every gateway of a community (its market section).
type Rules struct {
	Calendar market.Calendar
	Tariffs  settlement.Tariffs
	// MaxConnectionKW bounds one home's grid connection: figures beyond
	// what it carries in an interval count as missing.
	MaxConnectionKW decimal.Decimal
	// PostDelivery, when set, is the community's market rules, and the
	// clearer settles every interval through the post-delivery market
	// under them (settlement.SettlePostDelivery). Verify follows the
	// published settlement's policy either way, so that settlements sealed
	// before and after a community turned it on both verify; one with the
	// post-delivery market verifies only where PostDelivery is set.
	PostDelivery *auction.Rules
	// SealPlain makes Seal settle without the post-delivery market even
	// where PostDelivery is set (market.post_delivery: false), for a
	// community with gateways that cannot verify it yet. Verify is not
	// affected.
	SealPlain bool
}

// Bound is the most energy, in Wh, one home's connection can carry in one
// interval each way.
func (r Rules) Bound() int64 {
	secs := decimal.NewFromInt(int64(r.Calendar.Interval / time.Second))
	return r.MaxConnectionKW.Mul(decimal.NewFromInt(1000)).Mul(secs).Div(decimal.NewFromInt(3600)).Truncate(0).IntPart()
}

// MaxClockSkew is how far ahead of the clearer's clock a gateway's may be
// for its metered figures to count (at most the gate-closure period, the
// time the clearer waits for figures after an interval's end): a clock a
// few seconds fast sends real figures a few seconds "early".
const MaxClockSkew = 30 * time.Second

// Check refuses signed figures no meter can have counted: for an interval
// that has not ended at now (give or take MaxClockSkew), or beyond Bound.
func (r Rules) Check(m *protocol.MeteredMsg, now time.Time) error {
	start, err := market.ParseInterval(m.Interval)
	if err != nil {
		return err
	}
	skew := min(MaxClockSkew, r.Calendar.GateClosure)
	if end := r.Calendar.End(start); now.Add(skew).Before(end) {
		return fmt.Errorf("metered figures of %s for %s, an interval that is not over (it ends at %s)", m.Gateway, m.Interval, end.Format(time.RFC3339))
	}
	if bound := r.Bound(); m.ImportWh > bound || m.ExportWh > bound {
		return fmt.Errorf("metered figures of %s for %s (import %d Wh, export %d Wh) beyond what a %s kW connection carries in an interval (%d Wh): refused, settled as missing",
			m.Gateway, m.Interval, m.ImportWh, m.ExportWh, r.MaxConnectionKW, bound)
	}
	return nil
}

// Why the figures of an interval cannot be published: the reasons of
// Figures, which p2pgrid_metered_missing_total counts.
const (
	NoFiguresNotRunning   = "not_running"   // no reading at the interval's start
	NoFiguresLateReading  = "late_reading"  // a boundary reading came too late
	NoFiguresCounterReset = "counter_reset" // a counter went backwards
)

// NoFiguresReasons lists them, for metric labels.
var NoFiguresReasons = []string{NoFiguresLateReading, NoFiguresCounterReset, NoFiguresNotRunning}

// NoFigures is why an interval has no figures.
type NoFigures struct {
	Reason string
	Detail string
}

func (e *NoFigures) Error() string { return "no metered figures: " + e.Detail }

// Figures returns what the grid meter counted in a due interval, or a
// *NoFigures error saying why it cannot tell.
func Figures(d Due) (importWh, exportWh int64, err error) {
	switch {
	case d.Start == nil:
		return 0, 0, &NoFigures{NoFiguresNotRunning, "the gateway did not read the meter at the interval's start"}
	case !d.Start.Near || !d.End.Near:
		return 0, 0, &NoFigures{NoFiguresLateReading, fmt.Sprintf("no reading near an interval boundary (the first ones came %s after the start and %s after the end)",
			d.Start.At.Sub(d.Start.Start).Round(time.Second), d.End.At.Sub(d.End.Start).Round(time.Second))}
	}
	imp, okI, why := settlement.CounterDelta(d.Start.ImportWh, d.End.ImportWh, 0)
	exp, okE, whyE := settlement.CounterDelta(d.Start.ExportWh, d.End.ExportWh, 0)
	if !okI || !okE {
		return 0, 0, &NoFigures{NoFiguresCounterReset, fmt.Sprintf("grid meter counters reset (import: %s; export: %s)", why, whyE)}
	}
	return imp, exp, nil
}

// RefusedError is signed figures refused by Rules.Check: the gateway that
// signed them did so (an alarm), unlike figures that do not verify.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// ErrTooOld is wrapped by Offer's error for figures of an interval the
// calendar's window no longer holds (a redelivery after a long outage).
var ErrTooOld = errors.New("an interval no longer settled")

// Collector collects the community's signed metered figures for a
// clearer. It is safe for concurrent use.
type Collector struct {
	rosters *protocol.Rosters // which roster governs which interval
	rules   Rules

	mu      sync.Mutex
	figures map[string]map[string]figure // interval -> gateway -> message
}

// figure is one gateway's signed figures and the roster key they were
// verified with.
type figure struct {
	raw []byte
	key ed25519.PublicKey
}

// NewCollector returns an empty collector. It checks figures against the
// roster in effect for their interval.
func NewCollector(rosters *protocol.Rosters, rules Rules) *Collector {
	return &Collector{rosters: rosters, rules: rules, figures: map[string]map[string]figure{}}
}

// Offer takes one metered message received at now on the metered topic
// of topicGateway. It keeps the first verified figures of each gateway and
// interval inside the calendar's window, and returns the message's gateway
// and interval; a *RefusedError for signed figures no meter can have
// counted.
func (c *Collector) Offer(now time.Time, topicGateway string, raw []byte) (gateway, interval string, err error) {
	m, err := protocol.DecodeMetered(raw)
	if err != nil {
		return topicGateway, "", err
	}
	if m.Gateway != topicGateway {
		return m.Gateway, m.Interval, fmt.Errorf("metered figures of %q posted on the topic of %q", m.Gateway, topicGateway)
	}
	start, _ := market.ParseInterval(m.Interval) // checked by DecodeMetered
	roster := c.rosters.At(start)
	if err := m.Verify(roster); err != nil {
		return m.Gateway, m.Interval, err
	}
	if err := c.rules.Check(m, now); err != nil {
		return m.Gateway, m.Interval, &RefusedError{err}
	}
	if from, _ := c.rules.Calendar.Window(now); start.Before(from) {
		return m.Gateway, m.Interval, fmt.Errorf("metered figures of %s for %s: %w", m.Gateway, m.Interval, ErrTooOld)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.figures[m.Interval] == nil {
		c.figures[m.Interval] = map[string]figure{}
	}
	if _, dup := c.figures[m.Interval][m.Gateway]; !dup {
		key, _ := roster.Key(m.Gateway) // there: Verify found it
		c.figures[m.Interval][m.Gateway] = figure{append([]byte(nil), raw...), key}
	}
	return m.Gateway, m.Interval, nil
}

// Figures returns the figures collected for interval, by gateway id: of
// the gateways the roster of the interval holds with the key that
// verified them (a version accepted after the figures may have removed
// one, and every gateway checks the settlement against it).
func (c *Collector) Figures(interval string) [][]byte {
	start, err := market.ParseInterval(interval)
	if err != nil {
		return nil // not an interval: none collected
	}
	roster := c.rosters.At(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	gws := make([]string, 0, len(c.figures[interval]))
	for gw, f := range c.figures[interval] {
		if pub, ok := roster.Key(gw); ok && pub.Equal(f.key) {
			gws = append(gws, gw)
		}
	}
	sort.Strings(gws)
	out := make([][]byte, len(gws))
	for i, gw := range gws {
		out[i] = c.figures[interval][gw].raw
	}
	return out
}

// Forget drops the figures of intervals that start before t.
func (c *Collector) Forget(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.figures {
		if at, err := market.ParseInterval(id); err == nil && at.Before(t) {
			delete(c.figures, id)
		}
	}
}

// Settle settles a cleared interval from signed metered messages: res is
// the verified clearing of book, the interval's verified book, whose
// orders are the standing limits of the post-delivery market. Every
// gateway runs it: the clearer to publish, the others to check what was
// published. Figures beyond the rules' bound count as missing, on every
// gateway alike. It settles through the post-delivery market when
// rules.PostDelivery is set.
func Settle(interval string, res *auction.Result, book auction.Book, rules Rules, raws [][]byte) (*settlement.IntervalSettlement, error) {
	return settle(interval, res, book, rules, raws, rules.PostDelivery != nil)
}

// settle is Settle, through the post-delivery market if postDelivery.
func settle(interval string, res *auction.Result, book auction.Book, rules Rules, raws [][]byte, postDelivery bool) (*settlement.IntervalSettlement, error) {
	bound := rules.Bound()
	var ms []settlement.Metered
	for _, raw := range raws {
		m, err := protocol.DecodeMetered(raw)
		if err != nil {
			return nil, err
		}
		if m.ImportWh > bound || m.ExportWh > bound {
			continue
		}
		ms = append(ms, settlement.Metered{Participant: m.Gateway, ImportWh: m.ImportWh, ExportWh: m.ExportWh})
	}
	s, err := settlement.Settle(interval, res, rules.Tariffs, ms, settlement.SellerBearsShortfall{})
	if err != nil || !postDelivery {
		return s, err
	}
	if rules.PostDelivery == nil {
		return nil, fmt.Errorf("settle %s: a settlement through the post-delivery market, which this gateway does not run (no market rules)", interval)
	}
	return settlement.SettlePostDelivery(s, book, *rules.PostDelivery)
}

// Seal settles a cleared interval and returns the signed settlement
// message of clearer, for settlement/<interval>.
func Seal(key ed25519.PrivateKey, community, clearer, interval string, res *auction.Result, book auction.Book, rules Rules, raws [][]byte) ([]byte, *settlement.IntervalSettlement, error) {
	s, err := settle(interval, res, book, rules, raws, rules.PostDelivery != nil && !rules.SealPlain)
	if err != nil {
		return nil, nil, fmt.Errorf("settle %s: %w", interval, err)
	}
	js, err := s.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("settle %s: %w", interval, err)
	}
	msg, err := protocol.EncodeSettlement(key, community, interval, clearer, raws, js)
	if err != nil {
		return nil, nil, fmt.Errorf("settle %s: %w", interval, err)
	}
	return msg, s, nil
}

// Verdict is what a gateway concluded about a published settlement.
type Verdict struct {
	Clearer    string
	Settlement *settlement.IntervalSettlement // this gateway's own settlement of the published figures
	JSON       []byte                         // its canonical JSON, byte-identical to the published one
	Gateways   map[string]bool                // the gateways whose figures it holds
}

// ErrNotASettlement is wrapped by Verify's error for a message that no
// roster clearer signed, or that is of another interval: nobody's
// settlement of this interval, to count and ignore (anyone with broker
// access could send one) rather than to raise an alarm about.
var ErrNotASettlement = errors.New("not a settlement of this interval")

// ErrMismatch is wrapped by Verify's error for a signed settlement that
// is not the settlement of its own figures: a faulty or dishonest clearer.
var ErrMismatch = errors.New("settlement mismatch")

// Verify checks a published settlement of interval, whose verified
// clearing is res of book, against roster, the roster in effect for
// interval, by settling the verified figures it carries again: through
// the post-delivery market when the published settlement's policy says
// so (settlement.PostDeliverySuffix), else without it.
func Verify(roster *protocol.Roster, interval string, res *auction.Result, book auction.Book, rules Rules, payload []byte) (*Verdict, error) {
	msg, err := protocol.DecodeSettlement(payload)
	var metered []*protocol.MeteredMsg
	if err == nil {
		metered, err = msg.Verify(roster)
	}
	if err == nil && msg.Interval != interval {
		err = fmt.Errorf("a settlement of %s", msg.Interval)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotASettlement, err)
	}
	raws := make([][]byte, len(msg.Metered))
	for i, m := range msg.Metered {
		raws[i] = m
	}
	var published struct{ Policy string }
	if err := json.Unmarshal(msg.Settlement, &published); err != nil {
		return nil, fmt.Errorf("%w: interval %s: the settlement by %q: %w", ErrMismatch, interval, msg.Clearer, err)
	}
	post := strings.HasSuffix(published.Policy, settlement.PostDeliverySuffix)
	s, err := settle(interval, res, book, rules, raws, post)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	mine, err := s.MarshalJSON()
	if err != nil || string(mine) != string(msg.Settlement) {
		return nil, fmt.Errorf("%w: interval %s: the settlement by %q differs from this gateway's settlement of the same figures", ErrMismatch, interval, msg.Clearer)
	}
	v := &Verdict{Clearer: msg.Clearer, Settlement: s, JSON: mine, Gateways: map[string]bool{}}
	for _, m := range metered {
		v.Gateways[m.Gateway] = true
	}
	return v, nil
}
