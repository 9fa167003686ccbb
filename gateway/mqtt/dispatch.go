package mqtt

import (
	"fmt"
	"sync"
)

// queueWarnAt is the first queue length that is logged; every doubling
// after it is logged again.
const queueWarnAt = 1000

// subscription is one Subscribe: a filter, its handler and the queue that
// its own worker goroutine drains (see "Handler dispatch" in the package
// doc). push never blocks; the queue is unbounded.
type subscription struct {
	filter  string
	handler func(topic string, payload []byte)
	c       *Client

	mu      sync.Mutex
	wake    *sync.Cond
	queue   []message
	stopped bool
	warnAt  int
}

func newSubscription(filter string, h func(string, []byte), c *Client) *subscription {
	s := &subscription{filter: filter, handler: h, c: c, warnAt: queueWarnAt}
	s.wake = sync.NewCond(&s.mu)
	return s
}

// push queues m for the handler; it never blocks.
func (s *subscription) push(m message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.queue = append(s.queue, m)
	if len(s.queue) >= s.warnAt {
		s.c.log.Warn("mqtt handler falls behind: messages queued", "filter", s.filter, "queued", len(s.queue))
		s.warnAt *= 2
	}
	s.wake.Signal()
}

// stop makes the worker return after the handler call in progress; queued
// messages are dropped.
func (s *subscription) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped && len(s.queue) > 0 {
		s.c.log.Info("mqtt subscription stopped with messages queued; dropping them", "filter", s.filter, "dropped", len(s.queue))
	}
	s.stopped = true
	s.queue = nil
	s.wake.Broadcast()
}

// run is the worker: it calls the handler for each queued message in turn.
func (s *subscription) run() {
	defer s.c.workers.Done()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.stopped {
			s.wake.Wait()
		}
		if s.stopped {
			s.mu.Unlock()
			return
		}
		m := s.queue[0]
		s.queue[0] = message{}
		s.queue = s.queue[1:]
		if len(s.queue) == 0 {
			s.queue = nil // let the backing array go
			s.warnAt = queueWarnAt
		}
		s.mu.Unlock()
		s.call(m)
	}
}

// call runs the handler, turning a panic into a log line and a count.
func (s *subscription) call(m message) {
	defer func() {
		if r := recover(); r != nil {
			s.c.panics.Add(1)
			s.c.log.Error("mqtt message handler panicked", "filter", s.filter, "topic", m.topic, "panic", fmt.Sprint(r))
		}
	}()
	s.handler(m.topic, m.payload)
}
