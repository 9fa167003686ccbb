package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
)

// BookMsg is the sealed book of one interval, as the clearer publishes it,
// retained, on book/<interval>:
//
//	{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1",
//	 "orders":[<signed order message>, ...]}
//
// The orders are the gateways' signed order messages themselves (compacted,
// otherwise verbatim), sorted by gateway id, so that the same orders always
// make the same bytes and anyone can check every signature.
type BookMsg struct {
	Community string
	Interval  string
	Clearer   string
	Orders    []json.RawMessage // compact order messages, by gateway id ascending
}

// MaxBookSize bounds a book message: tens of thousands of orders.
const MaxBookSize = 8 << 20

// EncodeBook seals the orders collected for an interval into a book message.
// Each order must decode (DecodeOrder) and name the book's community and
// interval, and no gateway may appear twice; the orders are sorted by
// gateway id. Signatures are not checked here: the clearer verified each
// order when it arrived.
func EncodeBook(community, interval, clearer string, orders [][]byte) ([]byte, error) {
	type entry struct {
		gateway string
		raw     json.RawMessage
	}
	es := make([]entry, len(orders))
	for i, data := range orders {
		o, err := DecodeOrder(data)
		if err != nil {
			return nil, reject(ReasonOf(err), "book %s: orders[%d]: %w", interval, i, err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil { // cannot fail: DecodeOrder read it
			return nil, reject(RejectMalformed, "book %s: orders[%d]: %w", interval, i, err)
		}
		es[i] = entry{o.Gateway, buf.Bytes()}
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.gateway, b.gateway) })
	b := &BookMsg{Community: community, Interval: interval, Clearer: clearer, Orders: make([]json.RawMessage, len(es))}
	for i, e := range es {
		b.Orders[i] = e.raw
	}
	if _, err := b.check(); err != nil {
		return nil, err
	}
	data := b.Encode()
	if len(data) > MaxBookSize {
		return nil, reject(RejectOversize, "book %s: %d bytes (at most %d)", interval, len(data), MaxBookSize)
	}
	return data, nil
}

// DecodeBook reads a book message strictly (see DecodeOrder) and checks its
// structure: every order is a well-formed order message naming the book's
// community and interval, and the orders are sorted by gateway id with none
// twice (RejectDuplicate). Errors are *RejectError. Signatures and market
// rules are checked by Verify.
func DecodeBook(data []byte) (*BookMsg, error) {
	if len(data) > MaxBookSize {
		return nil, reject(RejectOversize, "book: %d bytes (at most %d)", len(data), MaxBookSize)
	}
	b := &BookMsg{Orders: []json.RawMessage{}}
	err := decodeObject(data,
		field{"v", true, version},
		field{"community", true, id(&b.Community)},
		field{"interval", true, interval(&b.Interval)},
		field{"clearer", true, id(&b.Clearer)},
		field{"orders", true, func(raw []byte) error {
			return walkArray(raw, func(i int, raw []byte) error {
				var buf bytes.Buffer
				if err := json.Compact(&buf, raw); err != nil {
					return fmt.Errorf("orders[%d]: %w", i, err)
				}
				b.Orders = append(b.Orders, buf.Bytes())
				return nil
			})
		}},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "book: %w", err)
	}
	if _, err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// check decodes the book's orders and checks that they name the book's
// community and interval, in gateway id order, none twice.
func (b *BookMsg) check() ([]*OrderMsg, error) {
	if err := CheckID(b.Community); err != nil {
		return nil, reject(RejectMalformed, "book: community %q: %w", b.Community, err)
	}
	if _, err := market.ParseInterval(b.Interval); err != nil {
		return nil, reject(RejectMalformed, "book: %w", err)
	}
	if err := CheckID(b.Clearer); err != nil {
		return nil, reject(RejectMalformed, "book %s: clearer %q: %w", b.Interval, b.Clearer, err)
	}
	msgs := make([]*OrderMsg, len(b.Orders))
	for i, raw := range b.Orders {
		o, err := DecodeOrder(raw)
		if err != nil {
			return nil, reject(ReasonOf(err), "book %s: orders[%d]: %w", b.Interval, i, err)
		}
		switch {
		case o.Community != b.Community:
			return nil, reject(RejectWrongCommunity, "book %s: orders[%d] (gateway %q): community %q, not the book's %q",
				b.Interval, i, o.Gateway, o.Community, b.Community)
		case o.Interval != b.Interval:
			return nil, reject(RejectWrongInterval, "book %s: orders[%d] (gateway %q): interval %s, not the book's",
				b.Interval, i, o.Gateway, o.Interval)
		case i > 0 && o.Gateway == msgs[i-1].Gateway:
			return nil, reject(RejectDuplicate, "book %s: orders[%d]: gateway %q has two orders", b.Interval, i, o.Gateway)
		case i > 0 && o.Gateway < msgs[i-1].Gateway:
			return nil, reject(RejectMalformed, "book %s: orders[%d]: gateway %q after %q: orders must be sorted by gateway id",
				b.Interval, i, o.Gateway, msgs[i-1].Gateway)
		}
		msgs[i] = o
	}
	return msgs, nil
}

// Encode writes the message in its JSON form, the orders as they are.
func (b *BookMsg) Encode() []byte {
	n := 128
	for _, o := range b.Orders {
		n += len(o) + 1
	}
	out := append(make([]byte, 0, n), `{"v":1`...)
	out = appendField(out, "community", b.Community)
	out = appendField(out, "interval", b.Interval)
	out = appendField(out, "clearer", b.Clearer)
	out = append(out, `,"orders":[`...)
	for i, o := range b.Orders {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, o...)
	}
	return append(out, "]}"...)
}

// Verify checks the book against the roster and the market and returns it as
// an auction book: Interval the interval id, Orders in book order (by
// gateway id), each message's orders as OrderMsg.Verify gives them: a v1
// message one order whose id and participant are its gateway id, a v2
// message one order per step, in step order, with ids StepID (gateway ":"
// step from 1) and participant its gateway id. A book may mix both. Two
// messages whose order ids clash (a v1 order of a gateway "home2:1" and the
// first step of "home2") make the book invalid: the clearer rejects the
// later one as a duplicate. The book's
// community must be the roster's (RejectWrongCommunity), its clearer a
// roster clearer (RejectForged), its structure sound (see DecodeBook), and
// every order must pass OrderMsg.Verify; the error names the first order
// that fails, with that order's reason.
func (b *BookMsg) Verify(r *Roster, m *auction.Market) (auction.Book, error) {
	if b.Community != r.Community {
		return auction.Book{}, reject(RejectWrongCommunity, "book %s: community %q, not %q", b.Interval, b.Community, r.Community)
	}
	if !r.IsClearer(b.Clearer) {
		return auction.Book{}, reject(RejectForged, "book %s: %q is not a clearer in the roster", b.Interval, b.Clearer)
	}
	msgs, err := b.check()
	if err != nil {
		return auction.Book{}, err
	}
	book := auction.Book{Interval: b.Interval, Orders: make([]auction.Order, 0, len(msgs))}
	for i, o := range msgs {
		os, err := o.Verify(r, m)
		if err != nil {
			return auction.Book{}, reject(ReasonOf(err), "book %s: orders[%d]: %w", b.Interval, i, err)
		}
		book.Orders = append(book.Orders, os...)
	}
	if err := m.CheckBook(book); err != nil { // totals beyond the market's arithmetic
		return auction.Book{}, reject(RejectInvalid, "book %s: %w", b.Interval, err)
	}
	return book, nil
}
