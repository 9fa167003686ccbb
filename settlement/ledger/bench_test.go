package ledger

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// benchDir is where benchmarks write: P2PGRID_BENCH_DIR if set (to measure
// the disk the gateway will use), else a temporary directory. fsync cost
// depends entirely on that disk.
func benchDir(b *testing.B) string {
	if d := os.Getenv("P2PGRID_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "ledger-bench-*")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchEntry is a trade-sized record: about 300 bytes on disk.
func benchEntry(i int) Entry {
	return Entry{
		Kind: "trade",
		Key:  fmt.Sprintf("2026-11-22T12:15Z/home%d/home%d/%d", i%50, (i+1)%50, i),
		Time: t0.Add(time.Duration(i) * 2250 * time.Millisecond), // 400 records per 15 minutes
		Data: fmt.Appendf(nil, `{"interval":"2026-11-22T12:15Z","seller":"home%d","buyer":"home%d","kwh":"1.250","price":"0.150000","amount":"0.187500"}`, i%50, (i+1)%50),
	}
}

// BenchmarkAppend: one Append (one write, one fsync) per iteration, of 1
// or 100 entries. fsync dominates: records/s grows almost with the batch.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l, err := Open(benchDir(b), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			es := make([]Entry, batch)
			i := 0
			b.ResetTimer()
			for b.Loop() {
				for j := range es {
					es[j] = benchEntry(i)
					i++
				}
				if _, err := l.Append(es...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkOpen100k: opening (and so verifying the whole chain of) a
// ledger of 100,000 trade-sized records (400 per 15 minutes, about 62
// hours of a 200-home community). Target: under 1 s. heap-B/record is the
// memory the open ledger keeps, per record: with every key indexed, and
// with IndexFor 3.5 h (the gateway's, at 15-minute intervals), where it
// no longer grows with the ledger.
func BenchmarkOpen100k(b *testing.B) {
	const n = 100_000
	dir := benchDir(b)
	l, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	es := make([]Entry, 1000)
	for i := 0; i < n; i += len(es) {
		for j := range es {
			es[j] = benchEntry(i + j)
		}
		if _, err := l.Append(es...); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	fi, _ := os.Stat(dir + "/" + FileName)
	for _, c := range []struct {
		name string
		o    Options
	}{{"index=all", Options{}}, {"index=3.5h", Options{IndexFor: 210 * time.Minute}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(fi.Size())
			var heap uint64
			for b.Loop() {
				before := heapInuse()
				l, err := Open(dir, c.o)
				if err != nil {
					b.Fatal(err)
				}
				if l.Last() != n {
					b.Fatalf("Last = %d", l.Last())
				}
				after := heapInuse()
				heap = after - min(after, before)
				l.Close()
			}
			b.ReportMetric(float64(heap)/n, "heap-B/record")
		})
	}
}

// heapInuse is the heap in use just after a GC.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
