package auction

import (
	"bytes"
	"cmp"
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
func (m *Market) CheckBook(b Book) error { return m.checkBook(b, true) }

// checkDecodedBook is CheckBook of a book whose every order passed
// CheckOrder as it was decoded: what is left is the book's own rules.
func (m *Market) checkDecodedBook(b Book) error { return m.checkBook(b, false) }

// checkBook is CheckBook, each order checked only if checkOrders.
func (m *Market) checkBook(b Book, checkOrders bool) error {
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
	return checkUnique(b.Orders)
}

// checkUnique finds the first duplicate id. It hashes the ids and sorts the
// hashes rather than filling a map: the book may hold a million orders.
// An order is one uint64 in the sort, the top 40 bits of its id's hash
// above its index (a book has at most 2^24 orders): 8 bytes to move, not
// an entry's 24.
func checkUnique(orders []Order) error {
	n := len(orders)
	buf := make([]uint64, 2*n)
	hs := buf[:n]
	seed := maphash.MakeSeed()
	for i := range orders {
		hs[i] = maphash.String(seed, orders[i].ID)&^hashIndex | uint64(i)
	}
	// Grouping by the top 24 bits is enough: runs are short and compared
	// by the rest of the hash, then by id, below.
	hs = sortByTop24(hs, buf[n:])
	first := -1 // index of the earliest second occurrence
	for s := 0; s < len(hs); {
		e := s + 1
		for e < len(hs) && hs[e]>>40 == hs[s]>>40 {
			e++
		}
		if e-s > 1 { // similar hashes: equal ids are adjacent once sorted
			run := hs[s:e]
			slices.SortFunc(run, func(a, b uint64) int {
				if c := cmp.Compare(a&^hashIndex, b&^hashIndex); c != 0 {
					return c
				}
				if c := strings.Compare(orders[a&hashIndex].ID, orders[b&hashIndex].ID); c != 0 {
					return c
				}
				return cmp.Compare(a, b) // by index
			})
			for k := 1; k < len(run); k++ {
				if run[k]&^hashIndex == run[k-1]&^hashIndex && orders[run[k]&hashIndex].ID == orders[run[k-1]&hashIndex].ID {
					if later := int(run[k] & hashIndex); first < 0 || later < first {
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

// hashIndex masks the index in checkUnique's hashes.
const hashIndex = maxBookOrders - 1

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
