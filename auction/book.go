package auction

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
)

// Book is everything submitted for one delivery interval.
type Book struct {
	// Interval names the delivery interval (e.g. "2026-11-22T10:15Z"); it
	// is part of the canonical encoding and of every trade id. May be empty.
	Interval string
	Orders   []Order
}

// maxBookOrders bounds a book so that order indices fit in int32 and the
// canonical encoding in a 4 GiB buffer.
const maxBookOrders = 1 << 24

// CheckBook checks every order against the market and that ids are unique.
// The error is an *OrderError naming the first bad order, in book order.
func (m *Market) CheckBook(b Book) error { return m.checkBook(b, nil) }

// checkBook is CheckBook with scratch space for checkUnique (see there).
func (m *Market) checkBook(b Book, scratch []entry) error { return m.checkBookOrders(b, scratch, true) }

// checkDecodedBook is CheckBook of a book whose every order passed
// CheckOrder as it was decoded: what is left is the book's own rules.
func (m *Market) checkDecodedBook(b Book) error { return m.checkBookOrders(b, nil, false) }

// checkBookOrders is CheckBook, each order checked only if checkOrders.
func (m *Market) checkBookOrders(b Book, scratch []entry, checkOrders bool) error {
	if b.Interval != "" {
		if err := CheckName(b.Interval); err != nil {
			return fmt.Errorf("book interval %q: %w", b.Interval, err)
		}
	}
	if len(b.Orders) > maxBookOrders {
		return fmt.Errorf("%w: %d orders (at most %d)", ErrOverflow, len(b.Orders), maxBookOrders)
	}
	var total [3]int64 // per side, so that no sum over a side overflows
	for i := range b.Orders {
		o := &b.Orders[i]
		if checkOrders {
			if err := m.CheckOrder(*o); err != nil {
				var oe *OrderError
				if errors.As(err, &oe) {
					oe.Index = i
				}
				return err
			}
		}
		if total[o.Side] > math.MaxInt64-o.Qty {
			return fmt.Errorf("%w: the %s side exceeds %d quanta", ErrOverflow, o.Side, int64(math.MaxInt64))
		}
		total[o.Side] += o.Qty
	}
	return checkUnique(b.Orders, scratch)
}

// checkUnique finds the first duplicate id. It hashes the ids and sorts the
// hashes rather than filling a map: the book may hold a million orders.
// scratch, if it holds 2*len(orders) entries, is used instead of allocating.
func checkUnique(orders []Order, scratch []entry) error {
	if len(scratch) < 2*len(orders) {
		scratch = make([]entry, 2*len(orders))
	}
	seed := maphash.MakeSeed()
	hs := scratch[:len(orders)]
	for i := range orders {
		hs[i] = entry{key: maphash.String(seed, orders[i].ID), idx: int32(i)}
	}
	// Grouping by the top 24 bits is enough: runs are short and compared
	// by id below.
	hs = radixSortFrom(hs, scratch[len(orders):2*len(orders)], 5)
	first := -1 // index of the earliest second occurrence
	for s := 0; s < len(hs); {
		e := s + 1
		for e < len(hs) && hs[e].key>>40 == hs[s].key>>40 {
			e++
		}
		if e-s > 1 { // similar hashes: compare the ids themselves
			run := hs[s:e]
			slices.SortFunc(run, func(a, b entry) int {
				if c := strings.Compare(orders[a.idx].ID, orders[b.idx].ID); c != 0 {
					return c
				}
				return int(a.idx - b.idx)
			})
			for k := 1; k < len(run); k++ {
				if orders[run[k].idx].ID == orders[run[k-1].idx].ID {
					if later := int(run[k].idx); first < 0 || later < first {
						first = later
					}
				}
			}
		}
		s = e
	}
	if first >= 0 {
		o := orders[first]
		return &OrderError{Index: first, ID: o.ID, Field: "id", Err: ErrDuplicateID}
	}
	return nil
}

// EncodeBook writes b in the JSON form DecodeBook reads, orders as given,
// numbers as exact decimal strings.
func (m *Market) EncodeBook(b Book) []byte {
	buf := bytes.NewBufferString("{")
	if b.Interval != "" {
		buf.WriteString(`"interval":`)
		writeJSONString(buf, b.Interval)
		buf.WriteByte(',')
	}
	buf.WriteString(`"orders":[`)
	for i, o := range b.Orders {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":`)
		writeJSONString(buf, o.ID)
		buf.WriteString(`,"participant":`)
		writeJSONString(buf, o.Participant)
		fmt.Fprintf(buf, `,"side":"%s","kwh":"%s","price":"%s"}`, o.Side, m.FormatKWh(o.Qty), m.FormatPrice(o.Price))
	}
	buf.WriteString("]}\n")
	return buf.Bytes()
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}
