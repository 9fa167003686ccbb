package gateway

import (
	"sync"
	"time"
)

// logEvery is how often one kind of rejection from one sender is logged:
// the counters stay exact, the log does not flood (4,000 forged orders a
// second are one line a minute, which says how many it stands for).
const logEvery = time.Minute

// maxLogKeys bounds the senders and reasons remembered; past it the
// memory starts over (a flood of made-up sender names costs a few extra
// lines, not memory).
const maxLogKeys = 4096

// logLimiter lets one log line per key through every logEvery.
type logLimiter struct {
	mu   sync.Mutex
	keys map[string]*logSlot
}

type logSlot struct {
	last       time.Time
	suppressed int
}

// allow reports whether a line for key may be logged at now, and how many
// lines for key were held back since the last one.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil || len(l.keys) >= maxLogKeys {
		l.keys = map[string]*logSlot{}
	}
	s := l.keys[key]
	if s == nil {
		l.keys[key] = &logSlot{last: now}
		return true, 0
	}
	if now.Sub(s.last) < logEvery {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}

// messageBudget is how many messages one gateway's orders (or metered)
// topic may bring in one interval before the rest are dropped unchecked:
// a gateway sends one order and one set of figures an interval, and QoS 1
// redeliveries and retained copies a few more.
const messageBudget = 32

// topicBudget counts messages per topic in the current interval.
type topicBudget struct {
	mu       sync.Mutex
	interval time.Time
	used     map[string]int
}

// take reports whether a message on key may be handled, counting it; the
// counts start over with every interval.
// interval is the start of the current interval.
func (b *topicBudget) take(key string, interval time.Time) bool {
	start := interval
	b.mu.Lock()
	defer b.mu.Unlock()
	if !start.Equal(b.interval) || b.used == nil || len(b.used) >= maxLogKeys {
		b.interval, b.used = start, map[string]int{}
	}
	b.used[key]++
	return b.used[key] <= messageBudget
}
