// Package gatewaytest has fakes for testing gateways without a broker: an
// in-process MQTT hub with retained messages and + / # wildcards.
package gatewaytest

import (
	"context"
	"strings"
	"sync"
)

// Hub is an in-process stand-in for an MQTT broker. A NewHub delivers
// synchronously, on the publisher's goroutine, in subscription order, so
// tests are deterministic. A NewConcurrentHub delivers the way
// gateway/mqtt does: every subscription has a goroutine of its own that
// calls its handler one message at a time, in arrival order, so handlers
// of different subscriptions run at the same time (what -race needs to
// see); Wait waits until every queue is empty.
type Hub struct {
	mu       sync.Mutex
	subs     []*sub
	retained map[string][]byte
	// Published records every message, in order.
	Published []Message

	concurrent bool
	inflight   int        // messages queued or being handled (concurrent)
	idle       *sync.Cond // signalled when inflight drops to 0
	closed     bool
}

// Message is one published message.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	From     string
}

type sub struct {
	filter string
	h      func(string, []byte)
	client string
	queue  []Message  // concurrent: waiting for the worker
	wake   *sync.Cond // concurrent: signalled when queue grows or the hub closes
}

// NewHub returns an empty hub that delivers synchronously.
func NewHub() *Hub { return &Hub{retained: map[string][]byte{}} }

// NewConcurrentHub returns an empty hub that delivers on a goroutine per
// subscription. Close stops the goroutines.
func NewConcurrentHub() *Hub {
	h := NewHub()
	h.concurrent = true
	h.idle = sync.NewCond(&h.mu)
	return h
}

// deliver hands a message to s: at once, or (concurrent) to s's worker.
// The caller holds h.mu and, for a synchronous hub, calls the returned
// function after unlocking.
func (h *Hub) deliver(s *sub, m Message) func() {
	if !h.concurrent {
		return func() { s.h(m.Topic, append([]byte(nil), m.Payload...)) }
	}
	m.Payload = append([]byte(nil), m.Payload...)
	s.queue = append(s.queue, m)
	h.inflight++
	s.wake.Signal()
	return func() {}
}

// work is the goroutine of one subscription of a concurrent hub.
func (h *Hub) work(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		for len(s.queue) == 0 && !h.closed {
			s.wake.Wait()
		}
		if h.closed {
			return
		}
		m := s.queue[0]
		s.queue = s.queue[1:]
		h.mu.Unlock()
		s.h(m.Topic, m.Payload)
		h.mu.Lock()
		h.inflight--
		if h.inflight == 0 {
			h.idle.Broadcast()
		}
	}
}

// Wait returns once every message published so far, and every message
// their handlers published in turn, has been handled. On a synchronous hub
// it returns at once.
func (h *Hub) Wait() {
	if !h.concurrent {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.inflight > 0 && !h.closed {
		h.idle.Wait()
	}
}

// Close stops a concurrent hub's goroutines; queued messages are dropped.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, s := range h.subs {
		if s.wake != nil {
			s.wake.Broadcast()
		}
	}
	if h.idle != nil {
		h.idle.Broadcast()
	}
}

// Client returns a Messenger for one client of the hub.
func (h *Hub) Client(name string) *Client { return &Client{hub: h, name: name} }

// Client is one connection to the hub.
type Client struct {
	hub  *Hub
	name string
	// Drop, if set, makes Publish drop messages it returns true for (a
	// broker ACL, or a lost packet).
	Drop func(topic string) bool
}

// Publish delivers payload to every matching subscription.
func (c *Client) Publish(_ context.Context, topic string, payload []byte, retained bool) error {
	if c.Drop != nil && c.Drop(topic) {
		return nil
	}
	h := c.hub
	h.mu.Lock()
	h.Published = append(h.Published, Message{topic, append([]byte(nil), payload...), retained, c.name})
	if retained {
		if len(payload) == 0 {
			delete(h.retained, topic)
		} else {
			h.retained[topic] = append([]byte(nil), payload...)
		}
	}
	var calls []func()
	for _, s := range h.subs {
		if Match(s.filter, topic) {
			calls = append(calls, h.deliver(s, Message{Topic: topic, Payload: payload, Retained: retained}))
		}
	}
	h.mu.Unlock()
	for _, call := range calls {
		call()
	}
	return nil
}

// Subscribe registers h and delivers the retained messages that match.
func (c *Client) Subscribe(filter string, f func(string, []byte)) error {
	h := c.hub
	h.mu.Lock()
	s := &sub{filter: filter, h: f, client: c.name}
	h.subs = append(h.subs, s)
	if h.concurrent {
		s.wake = sync.NewCond(&h.mu)
		go h.work(s)
	}
	var calls []func()
	for t, p := range h.retained {
		if Match(filter, t) {
			calls = append(calls, h.deliver(s, Message{Topic: t, Payload: p, Retained: true}))
		}
	}
	h.mu.Unlock()
	for _, call := range calls {
		call()
	}
	return nil
}

// Retained returns the retained message on topic.
func (h *Hub) Retained(topic string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retained[topic]
}

// Match reports whether an MQTT topic filter matches topic.
func Match(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, p := range f {
		if p == "#" {
			return true
		}
		if i >= len(t) || (p != "+" && p != t[i]) {
			return false
		}
	}
	return len(f) == len(t)
}
