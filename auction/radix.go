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
func radixSort(a, tmp []entry) []entry {
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
	for p := range 8 {
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

// sortByTop24 orders a by the top 24 bits of each value, least significant
// byte first, using tmp (same length) as scratch, and returns whichever
// of a and tmp holds the result.
func sortByTop24(a, tmp []uint64) []uint64 {
	var counts [3][256]int
	for _, v := range a {
		counts[0][byte(v>>40)]++
		counts[1][byte(v>>48)]++
		counts[2][byte(v>>56)]++
	}
	src, dst := a, tmp
	for p := range counts {
		c, shift := &counts[p], 40+8*p
		sum := 0
		for b, v := range c {
			c[b] = sum
			sum += v
		}
		for _, v := range src {
			b := byte(v >> shift)
			dst[c[b]] = v
			c[b]++
		}
		src, dst = dst, src
	}
	return src
}

// priceKey maps an int64 to a uint64 with the same order.
func priceKey(v int64) uint64 { return uint64(v) ^ (1 << 63) }
