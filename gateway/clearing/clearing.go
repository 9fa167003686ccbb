// Package clearing is the market side of a gateway: the clearer that
// collects the neighbours' signed orders for a delivery interval, rejects
// the bad ones with a reason, seals the book at gate closure and clears it;
// and the verifier with which every gateway recomputes a published clearing
// from the published book.
//
// It is pure apart from the clock values handed in: no MQTT, no goroutines.
// Package gateway feeds it messages and publishes what it returns.
package clearing

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
)

// Clearer collects orders and clears intervals. It is safe for concurrent
// use: orders arrive from MQTT while the gateway's loop seals.
type Clearer struct {
	community string
	id        string
	key       ed25519.PrivateKey
	rosters   *protocol.Rosters // which roster governs which interval
	market    *auction.Market
	calendar  market.Calendar

	mu      sync.Mutex
	pending map[string]*pending // by interval id
	sealed  map[string]bool
}

type pending struct {
	orders   map[string][]byte            // raw order message by gateway
	verified map[string][]auction.Order   // the same orders, verified and quantised (a v2 order's steps)
	ids      map[string]string            // gateway of every accepted auction order id
	keys     map[string]ed25519.PublicKey // the roster key each was verified with
	seen     map[[32]byte]string          // digest of the signature of every accepted order
}

// NewClearer returns a clearer signing as gateway id with key. It checks
// every order against the roster in effect for the order's interval.
func NewClearer(id string, key ed25519.PrivateKey, rosters *protocol.Rosters, m *auction.Market, cal market.Calendar) *Clearer {
	return &Clearer{community: rosters.Newest().Community, id: id, key: key, rosters: rosters, market: m, calendar: cal,
		pending: map[string]*pending{}, sealed: map[string]bool{}}
}

// Offer takes one order message, received at now on the orders topic of
// topicGateway. It returns the order's gateway and interval, or an error
// whose protocol.ReasonOf is why the order was rejected.
func (c *Clearer) Offer(now time.Time, topicGateway string, raw []byte) (gateway, interval string, err error) {
	if len(raw) > protocol.MaxOrderSize {
		return topicGateway, "", &protocol.RejectError{Reason: protocol.RejectOversize,
			Err: fmt.Errorf("order on the topic of %q: %d bytes (at most %d)", topicGateway, len(raw), protocol.MaxOrderSize)}
	}
	msg, err := protocol.DecodeOrder(raw)
	if err != nil {
		return topicGateway, "", err
	}
	if msg.Gateway != topicGateway {
		return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectForged,
			Err: fmt.Errorf("order from %q posted on the orders topic of %q", msg.Gateway, topicGateway)}
	}
	at, _ := market.ParseInterval(msg.Interval) // checked by DecodeOrder
	roster := c.rosters.At(at)
	o, err := msg.Verify(roster, c.market)
	if err != nil {
		var oe *auction.OrderError
		if errors.As(err, &oe) && oe.Field == "kwh" && errors.Is(err, auction.ErrOutOfRange) {
			// More kWh than the market allows one order: oversize.
			return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectOversize, Err: err}
		}
		return msg.Gateway, msg.Interval, err
	}
	open := c.calendar.Open(now)
	switch {
	case at.Before(open) || !now.Before(c.calendar.GateClose(at)):
		return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectLate,
			Err: fmt.Errorf("order from %q for %s: the gate closed at %s", msg.Gateway, msg.Interval,
				c.calendar.GateClose(at).UTC().Format(time.RFC3339))}
	case at.After(open):
		return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectWrongInterval,
			Err: fmt.Errorf("order from %q for %s: the open interval is %s", msg.Gateway, msg.Interval, market.IntervalID(open))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sealed[msg.Interval] {
		return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectLate,
			Err: fmt.Errorf("order from %q for %s: the book is sealed", msg.Gateway, msg.Interval)}
	}
	p := c.pending[msg.Interval]
	if p == nil {
		p = &pending{orders: map[string][]byte{}, verified: map[string][]auction.Order{}, ids: map[string]string{},
			keys: map[string]ed25519.PublicKey{}, seen: map[[32]byte]string{}}
		c.pending[msg.Interval] = p
	}
	// An order's identity is its signature, not its bytes: a copy of an
	// accepted order with other whitespace or key order is the same signed
	// order, replayed (Ed25519 signatures are deterministic, and Go's
	// verifier refuses the malleable ones).
	sum := sha256.Sum256(msg.Sig)
	if _, ok := p.seen[sum]; ok {
		return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectReplayed,
			Err: fmt.Errorf("order from %q for %s: received before", msg.Gateway, msg.Interval)}
	}
	if _, ok := p.orders[msg.Gateway]; ok {
		return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectDuplicate,
			Err: fmt.Errorf("order from %q for %s: the gateway has an order in this interval already", msg.Gateway, msg.Interval)}
	}
	// Order ids are unique in a book: a v2 step id ("home2:1") may be the
	// id of a gateway so named, whose order came first.
	for _, ao := range o {
		if gw, ok := p.ids[ao.ID]; ok {
			return msg.Gateway, msg.Interval, &protocol.RejectError{Reason: protocol.RejectDuplicate,
				Err: fmt.Errorf("order from %q for %s: order id %q is taken by the order of %q", msg.Gateway, msg.Interval, ao.ID, gw)}
		}
	}
	for _, ao := range o {
		p.ids[ao.ID] = msg.Gateway
	}
	p.seen[sum] = msg.Gateway
	p.orders[msg.Gateway] = append([]byte(nil), raw...)
	p.verified[msg.Gateway] = o
	p.keys[msg.Gateway], _ = roster.Key(msg.Gateway) // there: Verify found it
	return msg.Gateway, msg.Interval, nil
}

// Orders returns how many orders are collected for interval.
func (c *Clearer) Orders(interval string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pending[interval]; p != nil {
		return len(p.orders)
	}
	return 0
}

// Sealed is a cleared interval, ready to publish.
type Sealed struct {
	Interval string
	Book     []byte // the book message, for book/<interval>
	Result   []byte // the signed result message, for result/<interval> and result/latest
	Cleared  *auction.Result
	// Dropped are the gateways whose accepted orders the book leaves out:
	// a roster version taking effect at this interval, accepted after
	// their orders were, no longer lists them (or with another key), and
	// every gateway checks the book against that version. Only the first
	// Seal of the interval reports them.
	Dropped []string
}

// Seal closes the book of interval, clears it and returns the messages to
// publish. Sealing an interval twice returns the same messages: the
// clearing is deterministic. The orders were verified when offered, so
// sealing does not verify their signatures again; it checks only that the
// roster of the interval still holds each order's key (Sealed.Dropped).
func (c *Clearer) Seal(interval string) (*Sealed, error) {
	start, err := market.ParseInterval(interval)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", interval, err)
	}
	roster := c.rosters.At(start)
	c.mu.Lock()
	c.sealed[interval] = true
	var raws [][]byte
	var dropped []string
	book := auction.Book{Interval: interval, Orders: []auction.Order{}}
	if p := c.pending[interval]; p != nil {
		gws := make([]string, 0, len(p.orders))
		for gw := range p.orders {
			gws = append(gws, gw)
		}
		sort.Strings(gws)
		for _, gw := range gws {
			if pub, ok := roster.Key(gw); !ok || !pub.Equal(p.keys[gw]) {
				dropped = append(dropped, gw)
				delete(p.orders, gw) // out of every later sealing too
				for _, o := range p.verified[gw] {
					delete(p.ids, o.ID)
				}
				delete(p.verified, gw)
				continue
			}
			raws = append(raws, p.orders[gw])
			book.Orders = append(book.Orders, p.verified[gw]...)
		}
	}
	c.mu.Unlock()
	bookMsg, err := protocol.EncodeBook(c.community, interval, c.id, raws)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", interval, err)
	}
	res, err := c.market.Clear(book)
	if err != nil {
		return nil, fmt.Errorf("clear %s: %w", interval, err)
	}
	resJSON, err := res.MarshalJSON()
	if err != nil {
		return nil, err
	}
	msg, err := protocol.EncodeResult(c.key, c.community, interval, c.id, resJSON)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", interval, err)
	}
	return &Sealed{Interval: interval, Book: bookMsg, Result: msg, Cleared: res, Dropped: dropped}, nil
}

// Forget drops the state of intervals that start before t.
func (c *Clearer) Forget(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.pending {
		if at, err := market.ParseInterval(id); err == nil && at.Before(t) {
			delete(c.pending, id)
		}
	}
	for id := range c.sealed {
		if at, err := market.ParseInterval(id); err == nil && at.Before(t) {
			delete(c.sealed, id)
		}
	}
}

// Verdict is what a gateway concluded about a published clearing.
type Verdict struct {
	Interval string
	Clearer  string
	Result   *auction.Result // this gateway's own clearing of the published book
	Book     auction.Book
	// OwnFills are this gateway's fills, in result order: one at most for a
	// v1 order, one per traded step for a v2 order; none if it did not trade.
	OwnFills []auction.Fill
	// OwnOrderMissing: this gateway placed an order that is not in the
	// sealed book. The clearing is still the book's clearing, verified from
	// published data alone, so that every gateway decides alike whatever it
	// remembers of its own orders (a restarted one remembers none); the
	// gateway raises protocol.AlarmMissingOwnOrder.
	OwnOrderMissing bool
}

// Problem is a failed verification and the alarm it raises: Alarm is one
// of the protocol.Alarm* kinds.
type Problem struct {
	Alarm string
	Err   error
}

func (p *Problem) Error() string { return p.Alarm + ": " + p.Err.Error() }
func (p *Problem) Unwrap() error { return p.Err }

func problem(alarm string, format string, a ...any) error {
	return &Problem{Alarm: alarm, Err: fmt.Errorf(format, a...)}
}

// AlarmOf returns the alarm kind a verification error raises.
func AlarmOf(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.Alarm
	}
	return protocol.AlarmBadResult
}

// Verify checks a published clearing as any gateway does, against roster,
// the roster in effect for the interval: the result is signed by a clearer
// of the roster, the book's orders are all signed by
// their gateways for this community and interval, and clearing the book
// here gives byte-identical result JSON. It also tells whether this
// gateway's own order (ownOrder, its raw message; nil if it placed none) is
// in the book unchanged (Verdict.OwnOrderMissing), which does not make the
// clearing wrong.
func Verify(roster *protocol.Roster, m *auction.Market, self string, book, result, ownOrder []byte) (*Verdict, error) {
	rm, err := protocol.DecodeResult(result)
	if err != nil {
		return nil, problem(protocol.AlarmBadResult, "%w", err)
	}
	if err := rm.Verify(roster); err != nil {
		return nil, problem(protocol.AlarmBadResult, "%w", err)
	}
	bm, err := protocol.DecodeBook(book)
	if err != nil {
		return nil, problem(protocol.AlarmBadBook, "%w", err)
	}
	if bm.Interval != rm.Interval || bm.Community != rm.Community {
		return nil, problem(protocol.AlarmBadBook, "book for %s/%s, result for %s/%s", bm.Community, bm.Interval, rm.Community, rm.Interval)
	}
	ab, err := bm.Verify(roster, m)
	if err != nil {
		return nil, problem(protocol.AlarmBadBook, "%w", err)
	}
	missing := ownOrder != nil
	for _, raw := range bm.Orders {
		if string(raw) == string(ownOrder) {
			missing = false
		}
	}
	res, err := m.Clear(ab)
	if err != nil {
		return nil, problem(protocol.AlarmBadBook, "interval %s: %w", rm.Interval, err)
	}
	mine, err := res.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if string(mine) != string(rm.Result) {
		return nil, problem(protocol.AlarmMismatch, "interval %s: the result published by %q differs from this gateway's clearing of the book (book %s)",
			rm.Interval, rm.Clearer, res.BookDigest())
	}
	v := &Verdict{Interval: rm.Interval, Clearer: rm.Clearer, Result: res, Book: ab, OwnOrderMissing: missing}
	for _, f := range res.Fills {
		if f.Participant == self {
			v.OwnFills = append(v.OwnFills, f)
		}
	}
	return v, nil
}
