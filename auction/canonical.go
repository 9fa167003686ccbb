package auction

import (
	"bytes"
	"crypto/sha256"
	"slices"
)

// canonicalHeader starts the canonical book encoding; see docs/auction.md.
const canonicalHeader = "p2pgrid-book/1\n"

// canonical is a book in its canonical order, with its canonical encoding.
type canonical struct {
	interval string
	// sells by price ascending, buys by price descending, ties by id.
	sells, buys []entry
	// lines holds every order's line of the canonical encoding, in book
	// order; entry.line is the offset of the order's line.
	lines []byte
}

// canonicalize sorts a checked book into its canonical order and encodes
// its lines. A sell's key is its price, a buy's its negated price, both
// mapped to ordered uint64s, so that ascending keys are best first.
//
// The lines are written here, in book order, because that walks the
// orders' memory sequentially; hashing them in canonical order then reads
// one short line per order instead of an order and its strings.
func (m *Market) canonicalize(b Book) canonical {
	os := b.Orders
	nSell := 0
	for i := range os {
		if os[i].Side == Sell {
			nSell++
		}
	}
	scratch := make([]entry, 2*len(os))
	all, tmp := scratch[:len(os)], scratch[len(os):2*len(os)]
	es, eb := all[:0:nSell], all[nSell:nSell]
	lines := make([]byte, 0, 48*len(os))
	for i := range os {
		o := &os[i]
		e := entry{qty: o.Qty, idx: int32(i), line: uint32(len(lines))}
		lines = m.appendLine(lines, o)
		if o.Side == Sell {
			e.key = priceKey(o.Price)
			es = append(es, e)
		} else {
			e.key = priceKey(-o.Price)
			eb = append(eb, e)
		}
	}
	return canonical{
		interval: b.Interval,
		sells:    sortByKeyThenID(lines, es, tmp[:nSell]),
		buys:     sortByKeyThenID(lines, eb, tmp[nSell:]),
		lines:    lines,
	}
}

// appendLine appends o's line of the canonical encoding:
// "<id> <side> <price> <kwh> <participant>\n", numbers in shortest exact
// decimal form. The id comes first so that lines compare as their ids do:
// ' ' sorts before every byte an id may hold.
func (m *Market) appendLine(dst []byte, o *Order) []byte {
	dst = append(dst, o.ID...)
	dst = append(dst, ' ')
	dst = append(dst, o.Side.String()...)
	dst = append(dst, ' ')
	dst = appendFixed(dst, o.Price, m.priceDec)
	dst = append(dst, ' ')
	dst = appendFixed(dst, o.Qty, m.qtyDec)
	dst = append(dst, ' ')
	dst = append(dst, o.Participant...)
	return append(dst, '\n')
}

// sortByKeyThenID sorts es by key and each run of equal keys by id, which
// it reads from the orders' canonical lines.
func sortByKeyThenID(lines []byte, es, tmp []entry) []entry {
	es = radixSort(es, tmp)
	for s := 0; s < len(es); {
		e := s + 1
		for e < len(es) && es[e].key == es[s].key {
			e++
		}
		if e-s > 1 {
			slices.SortFunc(es[s:e], func(a, b entry) int { return bytes.Compare(lines[a.line:], lines[b.line:]) })
		}
		s = e
	}
	return es
}

// digest returns the SHA-256 of the canonical encoding: the header, the
// line "interval <interval>", then the line of every sell and every buy in
// canonical order.
func (c *canonical) digest() [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, canonicalHeader...)
	buf = append(buf, "interval "...)
	buf = append(buf, c.interval...)
	buf = append(buf, '\n')
	for _, side := range [2][]entry{c.sells, c.buys} {
		for _, e := range side {
			line := c.lines[e.line:]
			line = line[:bytes.IndexByte(line, '\n')+1]
			if len(buf)+len(line) > cap(buf) {
				h.Write(buf)
				buf = buf[:0]
			}
			buf = append(buf, line...)
		}
	}
	h.Write(buf)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Digest returns the SHA-256 of b's canonical encoding, as a Result
// carries it, after checking the book. A gateway uses it to check that a
// published book is the one a result was cleared from.
func (m *Market) Digest(b Book) ([32]byte, error) {
	if err := m.CheckBook(b); err != nil {
		return [32]byte{}, err
	}
	c := m.canonicalize(b)
	return c.digest(), nil
}
