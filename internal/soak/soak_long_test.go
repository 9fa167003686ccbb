//go:build soak

package soak_test

import (
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/internal/soak"
)

var (
	soakHomes     = flag.Int("soak.homes", 200, "gateways (homes) in the soak")
	soakIntervals = flag.Int("soak.intervals", 100, "delivery intervals the soak trades")
)

// TestSoak is the long soak (`make soak`, scripts/soak): 200 gateways for
// 100 accelerated intervals by default, with the figures of
// docs/performance.md printed at the end.
func TestSoak(t *testing.T) {
	homes, intervals := *soakHomes, *soakIntervals
	rep := runSoak(t, homes, intervals)
	var toResult, toVerified []time.Duration
	var worstResult, worstVerified time.Duration
	var cpuHomes, cpuClearer []time.Duration
	for _, iv := range rep.Intervals {
		toResult = append(toResult, soak.Median(iv.ToResult))
		toVerified = append(toVerified, soak.Median(iv.ToVerified))
		worstResult = max(worstResult, iv.ToResult[len(iv.ToResult)-1])
		worstVerified = max(worstVerified, iv.ToVerified[len(iv.ToVerified)-1])
		cpuHomes = append(cpuHomes, iv.CPUHomes)
		cpuClearer = append(cpuClearer, iv.CPUClearer)
	}
	for _, d := range [][]time.Duration{toResult, toVerified, cpuHomes, cpuClearer} {
		slices.Sort(d)
	}
	first, last := rep.Samples[0], rep.Samples[len(rep.Samples)-1]
	w := t.Output()
	fmt.Fprintf(w, "\nsoak: %d gateways, %d intervals in %v\n", homes, intervals, rep.Wall.Round(time.Second))
	fmt.Fprintf(w, "gate closure to result at every gateway: median of the interval medians %v, worst %v\n",
		soak.Median(toResult).Round(time.Millisecond), worstResult.Round(time.Millisecond))
	fmt.Fprintf(w, "gate closure to verified at every gateway: median of the interval medians %v, worst %v\n",
		soak.Median(toVerified).Round(time.Millisecond), worstVerified.Round(time.Millisecond))
	fmt.Fprintf(w, "CPU per interval: homes' process median %v (max %v), clearer median %v (max %v)\n",
		soak.Median(cpuHomes).Round(time.Millisecond), cpuHomes[len(cpuHomes)-1].Round(time.Millisecond),
		soak.Median(cpuClearer).Round(time.Millisecond), cpuClearer[len(cpuClearer)-1].Round(time.Millisecond))
	fmt.Fprintln(w, "memory (heap in use after GC; RSS):")
	for _, s := range rep.Samples {
		fmt.Fprintf(w, "  after %3d intervals: homes %s = %s per gateway (RSS %s), clearer %s (RSS %s), %d ledger records per gateway\n",
			s.Interval, soak.MiB(s.Homes.HeapInuse), soak.KiB(s.HeapPerHome(homes)), soak.MiB(s.Homes.RSS),
			soak.MiB(s.Clearer.HeapInuse), soak.MiB(s.Clearer.RSS), s.LedgerRecords)
	}
	if n := last.LedgerRecords - first.LedgerRecords; n > 0 {
		grow := int64(last.HeapPerHome(homes)) - int64(first.HeapPerHome(homes))
		fmt.Fprintf(w, "heap per gateway grew %d B over %d ledger records: %d B per record\n", grow, n, grow/int64(n))
	}
	// No growth once the ledger's index window is full: from the first
	// sample past twice the window (market.Calendar.Recall, in
	// intervals) to the end, heap per gateway and the clearer's heap may
	// move by the index's amortised pruning, not with the records.
	cal := config.Default().Market.Calendar() // the soak's gateways trade on the default market
	full := 2 * int(cal.Recall()/cal.Interval)
	for _, s := range rep.Samples {
		if s.Interval < full || s.Interval == last.Interval {
			continue
		}
		fmt.Fprintf(w, "after the index window was full (interval %d to %d, %d ledger records added): heap per gateway %s -> %s, clearer %s -> %s\n",
			s.Interval, last.Interval, last.LedgerRecords-s.LedgerRecords, soak.KiB(s.HeapPerHome(homes)), soak.KiB(last.HeapPerHome(homes)),
			soak.MiB(s.Clearer.HeapInuse), soak.MiB(last.Clearer.HeapInuse))
		if a, b := s.HeapPerHome(homes), last.HeapPerHome(homes); b > a+a/4+128<<10 {
			t.Errorf("heap per gateway grew from %s after interval %d to %s after %d, with the ledger's index window full",
				soak.KiB(a), s.Interval, soak.KiB(b), last.Interval)
		}
		if a, b := s.Clearer.HeapInuse, last.Clearer.HeapInuse; b > a+a/4+1<<20 {
			t.Errorf("clearer heap grew from %s after interval %d to %s after %d", soak.MiB(a), s.Interval, soak.MiB(b), last.Interval)
		}
		break
	}
}
