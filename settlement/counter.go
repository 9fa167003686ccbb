package settlement

import "fmt"

// WrapWindow sets how close to wrapAt a decreasing counter must be read for
// CounterDelta to take the decrease as a wrap-around rather than a reset:
// the wrapped delta, wrapAt - prev + cur, must be at most wrapAt/WrapWindow
// (0.1% of the counter's range: 100 kWh for a meter that rolls over at
// 10^8 Wh).
const WrapWindow = 1000

// CounterDelta returns the energy counted between two readings, prev then
// cur, of a cumulative energy counter that rolls over to 0 at wrapAt (for
// example 1<<32 for a 32-bit Wh register, or 10^8 Wh for a meter whose kWh
// display has five digits); wrapAt = 0 means the counter never wraps.
//
//   - cur >= prev: a normal increase, delta = cur - prev, ok.
//   - cur < prev and the wrapped delta wrapAt - prev + cur is at most
//     wrapAt/WrapWindow (at least 1): a wrap-around; delta is the wrapped
//     delta, ok, and reason says it wrapped.
//   - any other decrease: a reset (meter replaced, counter cleared, a bad
//     read); ok is false and reason says why. The caller then uses no
//     figure for the interval (Metered.Missing) rather than a huge one.
//   - a reading below 0 or at or above wrapAt, or a negative wrapAt, is
//     not a counter reading: ok is false.
//
// reason is empty only for a normal increase. A genuine reset read within
// the wrap window of the top of the range is indistinguishable from a wrap;
// the window bounds the error such a reset can cause.
func CounterDelta(prev, cur int64, wrapAt int64) (delta int64, ok bool, reason string) {
	switch {
	case wrapAt < 0:
		return 0, false, fmt.Sprintf("wrap point %d is negative", wrapAt)
	case prev < 0 || cur < 0:
		return 0, false, fmt.Sprintf("negative reading (previous %d, current %d)", prev, cur)
	case wrapAt > 0 && (prev >= wrapAt || cur >= wrapAt):
		return 0, false, fmt.Sprintf("reading beyond the counter's range [0, %d) (previous %d, current %d)", wrapAt, prev, cur)
	case cur >= prev:
		return cur - prev, true, ""
	case wrapAt == 0:
		return 0, false, fmt.Sprintf("counter reset: went down from %d to %d and does not wrap", prev, cur)
	}
	wrapped := wrapAt - prev + cur // > 0 and < wrapAt: prev < wrapAt, cur < prev
	window := max(1, wrapAt/WrapWindow)
	if wrapped > window {
		return 0, false, fmt.Sprintf("counter reset: went down from %d to %d (a wrap at %d would mean %d counted, beyond the wrap window %d)",
			prev, cur, wrapAt, wrapped, window)
	}
	return wrapped, true, fmt.Sprintf("wrapped around at %d (from %d to %d)", wrapAt, prev, cur)
}
