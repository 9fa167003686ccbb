package auction

// entry is an order as clearing sees it: a 64-bit sort key, its quantity
// and its index in the book. Sorting entries rather than orders keeps the
// sort and the curve walk on small, pointer-free, sequential memory.
type entry struct {
	key  uint64
	qty  int64
	idx  int32
	line uint32 // offset of the order's canonical line (canonical.lines)
}

// radixSort sorts a by key, ascending and stably, using tmp (same length) as
// scratch: least significant byte first, skipping the bytes in which all
// keys agree. It returns whichever of a and tmp holds the sorted keys.
//
// Clearing a million orders is mostly ordering them; a comparison sort of
// that many spends its time in branch misses, this spends it in a few
// sequential passes.
func radixSort(a, tmp []entry) []entry { return radixSortFrom(a, tmp, 0) }

// radixSortFrom sorts a by the bytes of key from byte from (0 is the least
// significant) up: from = 5 orders by the top 24 bits only.
func radixSortFrom(a, tmp []entry, from int) []entry {
	if len(a) < 2 {
		return a
	}
	// Only the bytes in which some keys differ need a pass.
	var differ uint64
	k0 := a[0].key
	for _, e := range a {
		differ |= e.key ^ k0
	}
	var passes [8]int
	np := 0
	for p := from; p < 8; p++ {
		if byte(differ>>(8*p)) != 0 {
			passes[np] = 8 * p
			np++
		}
	}
	var counts [8][256]int
	for _, e := range a {
		for n, shift := range passes[:np] {
			counts[n][byte(e.key>>shift)]++
		}
	}
	src, dst := a, tmp
	for n, shift := range passes[:np] {
		c := &counts[n]
		sum := 0
		for b := range c {
			v := c[b]
			c[b] = sum
			sum += v
		}
		for _, e := range src {
			b := byte(e.key >> shift)
			dst[c[b]] = e
			c[b]++
		}
		src, dst = dst, src
	}
	return src
}

// priceKey maps an int64 to a uint64 with the same order.
func priceKey(v int64) uint64 { return uint64(v) ^ (1 << 63) }
