package auction

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// benchBook returns a reproducible book of n orders that looks like a large
// community: half sells, half buys, prices spread over 0.05-0.40 per kWh at
// full tick resolution (so many exact ties), 1 Wh to 10 kWh each.
func benchBook(n int) Book {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	b := Book{Interval: "2026-11-22T12:00Z", Orders: make([]Order, n)}
	for i := range b.Orders {
		side := Sell
		price := 50_000 + rng.Int64N(300_000) // sellers ask 0.05-0.35
		if i%2 == 1 {
			side = Buy
			price = 100_000 + rng.Int64N(300_000) // buyers bid 0.10-0.40
		}
		b.Orders[i] = Order{
			ID:          fmt.Sprintf("o%07d", i),
			Participant: fmt.Sprintf("h%05d", i%20000),
			Side:        side,
			Qty:         1 + rng.Int64N(10_000),
			Price:       price,
		}
	}
	rng.Shuffle(n, func(i, j int) { b.Orders[i], b.Orders[j] = b.Orders[j], b.Orders[i] })
	// Lay the strings out in book order, as decoding a book does.
	for i := range b.Orders {
		b.Orders[i].ID = strings.Clone(b.Orders[i].ID)
		b.Orders[i].Participant = strings.Clone(b.Orders[i].Participant)
	}
	return b
}

var benchSizes = []int{1_000, 100_000, 1_000_000}

// BenchmarkClear clears a whole book: checks, canonical sort, SHA-256 of the
// canonical encoding, the curve walk, rationing, fills and trades.
func BenchmarkClear(b *testing.B) {
	m, err := NewMarket(DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes {
		book := benchBook(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var res *Result
			for b.Loop() {
				if res, err = m.Clear(book); err != nil {
					b.Fatal(err)
				}
			}
			if !res.Cleared {
				b.Fatal("benchmark book did not clear")
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

// BenchmarkSortBaseline sorts the same orders by their int64 price key and
// nothing else: the floor under any clearing that must order the book.
func BenchmarkSortBaseline(b *testing.B) {
	for _, n := range benchSizes {
		book := benchBook(n)
		work := make([]Order, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				copy(work, book.Orders)
				slices.SortFunc(work, func(x, y Order) int { return cmp.Compare(x.Price, y.Price) })
			}
			if !slices.IsSortedFunc(work, func(x, y Order) int { return cmp.Compare(x.Price, y.Price) }) {
				b.Fatal("not sorted")
			}
		})
	}
}

// benchBookFiles runs bench as a sub-benchmark for each of benchSizes,
// with the JSON book of that size (EncodeBook of benchBook) as data.
func benchBookFiles(b *testing.B, bench func(b *testing.B, m *Market, n int, data []byte)) {
	m := defaultTestMarket(b)
	for _, n := range benchSizes {
		data := m.EncodeBook(benchBook(n))
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			bench(b, m, n, data)
		})
	}
}

// BenchmarkDecodeClearEncode is what `p2pgrid clear` does with a book file
// in memory: decode the JSON book (strictly, numbers exact) and clear it
// (ClearBookBytes), and write the result as JSON (to io.Discard: the command's write to a file
// is not included).
func BenchmarkDecodeClearEncode(b *testing.B) {
	benchBookFiles(b, func(b *testing.B, m *Market, n int, data []byte) {
		var res *Result
		for b.Loop() {
			var err error
			if res, err = m.ClearBookBytes(data); err != nil {
				b.Fatal(err)
			}
			if err := res.WriteJSON(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		if out, _ := res.MarshalJSON(); !bytes.Contains(out, []byte(`"trades":[{`)) {
			b.Fatal("benchmark book did not clear")
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	})
}

// BenchmarkDecodeBook is the decoding alone, of the book file
// BenchmarkDecodeClearEncode reads.
func BenchmarkDecodeBook(b *testing.B) {
	benchBookFiles(b, func(b *testing.B, m *Market, n int, data []byte) {
		for b.Loop() {
			book, err := m.DecodeBookBytes(data)
			if err != nil || len(book.Orders) != n {
				b.Fatalf("%d orders, %v", len(book.Orders), err)
			}
		}
	})
}

// BenchmarkWriteJSON is the encoding alone, of the result of clearing the
// benchmark's book.
func BenchmarkWriteJSON(b *testing.B) {
	m := defaultTestMarket(b)
	for _, n := range benchSizes {
		res, err := m.Clear(benchBook(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := res.WriteJSON(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWriteBenchBook writes the benchmark's book of P2PGRID_BENCH_ORDERS
// orders (default 1,000,000) to the file P2PGRID_BENCH_BOOK, for timing
// `p2pgrid clear` (docs/performance.md). Without the variable it does
// nothing.
func TestWriteBenchBook(t *testing.T) {
	name := os.Getenv("P2PGRID_BENCH_BOOK")
	if name == "" {
		t.Skip("P2PGRID_BENCH_BOOK is not set")
	}
	n := 1_000_000
	if s := os.Getenv("P2PGRID_BENCH_ORDERS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	m := defaultTestMarket(t)
	data := m.EncodeBook(benchBook(n))
	if _, err := m.DecodeBookBytes(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
