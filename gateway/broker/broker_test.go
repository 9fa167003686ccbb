package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
)

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:1883"} {
		b, err := broker.Start(addr, nil)
		if err == nil {
			b.Close()
			t.Errorf("Start(%q) listened on a non-loopback address", addr)
			continue
		}
		if !errors.Is(err, broker.ErrNotLoopback) || !strings.Contains(err.Error(), addr) {
			t.Errorf("Start(%q): %v, want ErrNotLoopback naming the address", addr, err)
		}
	}
	for _, addr := range []string{"example.com:1883", "1883", ""} {
		if b, err := broker.Start(addr, nil); err == nil {
			b.Close()
			t.Errorf("Start(%q) accepted a bad address", addr)
		}
	}
	// Allowed explicitly.
	b, err := broker.StartWith(broker.Options{Addr: "0.0.0.0:0", AllowNonLoopback: true})
	if err != nil {
		t.Fatalf("AllowNonLoopback: %v", err)
	}
	b.Close()
}

func TestPortZeroURLAndRestartOnSamePort(t *testing.T) {
	for _, addr := range []string{":0", "localhost:0", "127.0.0.1:0"} {
		b, err := broker.Start(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(strings.TrimPrefix(b.URL(), "tcp://"))
		if err != nil || host != "127.0.0.1" || port == "0" || !strings.HasPrefix(b.URL(), "tcp://") {
			t.Fatalf("Start(%q).URL() = %q, want tcp://127.0.0.1:<port>", addr, b.URL())
		}
		c, err := net.Dial("tcp", host+":"+port)
		if err != nil {
			t.Fatalf("dial %s: %v", b.URL(), err)
		}
		c.Close()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		// The port is free again at once.
		b2, err := broker.Start(host+":"+port, nil)
		if err != nil {
			t.Fatalf("restart on %s: %v", port, err)
		}
		if b2.URL() != b.URL() {
			t.Errorf("restarted URL %q, want %q", b2.URL(), b.URL())
		}
		b2.Close()
	}
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := broker.Start(strings.TrimPrefix(b.URL(), "tcp://"), nil); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("a second broker on a busy port: %v, want a listen error", err)
	}
}

// TestRetainedAndWildcardSubscriptionsConcurrently hammers the race that
// the hook's retain guard closes in mochi (retained publishes against new
// wildcard subscriptions); run it with -race.
func TestRetainedAndWildcardSubscriptionsConcurrently(t *testing.T) {
	b, err := broker.Start(":0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Every one of these walks the status topics' nodes for retained messages.
	wildcards := []string{
		"#", "p2pgrid/#", "p2pgrid/v1/#", "p2pgrid/v1/c1/#", "p2pgrid/v1/c1/status/#",
		"p2pgrid/v1/c1/status/+", "p2pgrid/v1/+/status/+", "p2pgrid/v1/+/+/+", "p2pgrid/+/c1/status/+",
		"+/v1/c1/status/+", "+/+/+/+/+", "p2pgrid/+/+/+/+", "+/v1/#", "+/+/c1/#", "p2pgrid/v1/c1/+/+",
	}
	const clients, rounds = 6, 30
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for i := range clients {
		id := fmt.Sprintf("gw-%d", i)
		wg.Add(2)
		go func() { // publishes retained statuses
			defer wg.Done()
			c, err := mqtt.Connect(ctx, mqtt.Options{Broker: b.URL(), ClientID: id + "-pub"})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for r := range rounds {
				if err := c.Publish(ctx, "p2pgrid/v1/c1/status/"+id, []byte(fmt.Sprint(r)), true); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // subscribes with wildcards, again and again
			defer wg.Done()
			c, err := mqtt.Connect(ctx, mqtt.Options{Broker: b.URL(), ClientID: id + "-sub"})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for _, f := range wildcards {
				if err := c.Subscribe(f, func(string, []byte) {}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// And the broker still answers: the last retained status is there.
	c, err := mqtt.Connect(ctx, mqtt.Options{Broker: b.URL(), ClientID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan string, 10)
	if err := c.Subscribe("p2pgrid/v1/c1/status/gw-0", func(_ string, p []byte) { got <- string(p) }); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != fmt.Sprint(rounds-1) {
			t.Errorf("retained status %q, want %d", p, rounds-1)
		}
	case <-ctx.Done():
		t.Fatal("no retained status")
	}
}

// Closing a broker with clients connected logs nothing at Warn: mochi's
// message-less record for every connection that ends is "client
// connection ended" at Debug, with the error under "err".
func TestCloseWithClientsLogsNoEmptyWarnings(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var mu sync.Mutex
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: level}))
			b, err := broker.Start("127.0.0.1:0", logger)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, id := range []string{"gw-a", "gw-b"} {
				c, err := mqtt.Connect(ctx, mqtt.Options{Broker: b.URL(), ClientID: id, MaxReconnectInterval: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			b.Close()
			time.Sleep(200 * time.Millisecond) // mochi logs from the connections' goroutines
			mu.Lock()
			defer mu.Unlock()
			ended := 0
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var r map[string]any
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				if r["msg"] == "" || r["level"] == "WARN" || r["level"] == "ERROR" {
					t.Errorf("log line %s", l)
				}
				if _, ok := r["error"]; ok {
					t.Errorf("log line with \"error\", not \"err\": %s", l)
				}
				if r["msg"] == "client connection ended" {
					ended++
					if r["level"] != "DEBUG" || r["err"] == nil || r["component"] != "broker" {
						t.Errorf("log line %s", l)
					}
				}
			}
			if level == slog.LevelDebug && ended == 0 {
				t.Errorf("at debug, no \"client connection ended\" line:\n%s", buf.String())
			}
		})
	}
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
