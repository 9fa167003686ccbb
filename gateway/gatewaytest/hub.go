// Package gatewaytest has fakes for testing gateways without a broker: an
// in-process MQTT hub with retained messages and + / # wildcards.
package gatewaytest

import (
	"context"
	"strings"
	"sync"
)

// Hub is an in-process stand-in for an MQTT broker. Delivery is
// synchronous, in subscription order, so tests are deterministic.
type Hub struct {
	mu       sync.Mutex
	subs     []sub
	retained map[string][]byte
	// Published records every message, in order.
	Published []Message
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
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{retained: map[string][]byte{}} }

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
	var hs []func(string, []byte)
	for _, s := range h.subs {
		if Match(s.filter, topic) {
			hs = append(hs, s.h)
		}
	}
	h.mu.Unlock()
	for _, f := range hs {
		f(topic, append([]byte(nil), payload...))
	}
	return nil
}

// Subscribe registers h and delivers the retained messages that match.
func (c *Client) Subscribe(filter string, f func(string, []byte)) error {
	h := c.hub
	h.mu.Lock()
	h.subs = append(h.subs, sub{filter, f, c.name})
	var ret []Message
	for t, p := range h.retained {
		if Match(filter, t) {
			ret = append(ret, Message{Topic: t, Payload: p})
		}
	}
	h.mu.Unlock()
	for _, m := range ret {
		f(m.Topic, m.Payload)
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
