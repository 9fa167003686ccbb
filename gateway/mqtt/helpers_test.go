package mqtt_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
)

// wait is how long a test waits for something that should happen at once.
const wait = 10 * time.Second

// testLog collects a test's logs and prints them only if the test failed
// (goroutines of paho may log after the test has ended, so no t.Log).
// P2PGRID_TEST_DEBUG=1 adds debug logs (every message, mochi's details).
func testLog(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("logs:\n%s", buf.String())
		}
	})
	level := slog.LevelInfo
	if os.Getenv("P2PGRID_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: level}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func startBroker(t *testing.T, addr string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(addr, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// options are the test defaults: quick reconnects, short timeouts.
func options(url, id string) mqtt.Options {
	return mqtt.Options{
		Broker:               url,
		ClientID:             id,
		Username:             id,
		KeepAlive:            10 * time.Second,
		ConnectTimeout:       3 * time.Second,
		MaxReconnectInterval: 200 * time.Millisecond,
	}
}

// withStatus adds the gateway status: retained online on connect, offline
// as will and on Close.
func withStatus(o mqtt.Options, topic string) mqtt.Options {
	o.WillTopic, o.WillPayload = topic, []byte("offline")
	o.OnlineTopic, o.OnlinePayload = topic, []byte("online")
	return o
}

func connect(t *testing.T, o mqtt.Options) *mqtt.Client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLog(t).With("client", o.ClientID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := mqtt.Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func publish(t *testing.T, c *mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Publish(ctx, topic, []byte(payload), retained); err != nil {
		t.Fatal(err)
	}
}

type msg struct{ topic, payload string }

func (m msg) String() string { return m.topic + " " + m.payload }

// inbox records the messages of a subscription.
type inbox struct {
	mu      sync.Mutex
	msgs    []msg
	changed chan struct{}
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{}, 1)} }

func (in *inbox) handle(topic string, payload []byte) {
	in.mu.Lock()
	in.msgs = append(in.msgs, msg{topic, string(payload)})
	in.mu.Unlock()
	select {
	case in.changed <- struct{}{}:
	default:
	}
}

func (in *inbox) all() []msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.msgs)
}

func (in *inbox) has(m msg) bool { return slices.Contains(in.all(), m) }

// waitFor waits until cond holds for the messages so far, failing the test
// after d with what arrived.
func (in *inbox) waitFor(t *testing.T, d time.Duration, what string, cond func([]msg) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if cond(in.all()) {
			return
		}
		select {
		case <-in.changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; got %d messages: %v", d, what, len(in.all()), in.all())
		}
	}
}

func (in *inbox) waitForMsg(t *testing.T, m msg) {
	t.Helper()
	in.waitFor(t, wait, fmt.Sprintf("%q", m), func(ms []msg) bool { return slices.Contains(ms, m) })
}

func subscribe(t *testing.T, c *mqtt.Client, filter string) *inbox {
	t.Helper()
	in := newInbox()
	if err := c.Subscribe(filter, in.handle); err != nil {
		t.Fatal(err)
	}
	return in
}

// eventually polls cond until it holds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
