// Package broker is p2pgrid's embedded MQTT broker, the default that lets a
// gateway (or a whole test neighbourhood) run on a bare machine without
// Mosquitto. It wraps github.com/mochi-mqtt/server/v2 behind a small type so
// that nothing else in p2pgrid imports mochi: MQTT 3.1.1 and 5, QoS 0-2,
// retained messages, persistent sessions and last wills, all in memory
// (nothing survives Close).
//
// It listens on loopback only, unless Options.AllowNonLoopback says
// otherwise, and by default lets every client connect, publish and
// subscribe. With Options.ACL it enforces the same rules as the shipped
// Mosquitto ACL (configs/mosquitto/acl): see acl.go and hook.go. Production brokers are
// Mosquitto; this one never replaces it in integration tests.
//
// Mochi logs through the Logger given, adapted to p2pgrid's style: its
// message-less record for every client connection that ends (one Warn per
// client at every Close) is "client connection ended" at Debug, and its
// "error" attribute is "err" (log.go).
//
// It knows nothing of the gateway or of what the topics mean beyond the ACL.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Options configures a Broker.
type Options struct {
	// Addr is the TCP address to listen on, host:port. An empty host means
	// 127.0.0.1 and port 0 picks a free port (see URL). "localhost" means
	// 127.0.0.1.
	Addr string `yaml:"addr" json:"addr"`
	// AllowNonLoopback permits an Addr that is not a loopback address. The
	// broker has no TLS and, without ACL, no authentication: do not expose
	// it without a reason.
	AllowNonLoopback bool `yaml:"allow_non_loopback" json:"allow_non_loopback"`
	// ACL enforces the rules of configs/mosquitto/acl: a client must log in
	// with a username (its gateway id; the password is not checked); it may
	// publish only to its own orders, telemetry, status and metered topics,
	// and only the users in Clearers may also publish book, result,
	// settlement and roster; everybody may read the market (orders, books,
	// results, settlements, roster), a gateway its own telemetry, status
	// and metered figures, the clearers everybody's; nothing outside
	// p2pgrid/v1/.
	// Denied publishes are acknowledged and dropped, as Mosquitto does.
	ACL bool `yaml:"acl" json:"acl"`
	// Clearers are the usernames allowed to publish book, result,
	// settlement and roster when ACL is on (the "user" blocks of
	// configs/mosquitto/acl).
	Clearers []string `yaml:"clearers" json:"clearers"`
	// Logger receives mochi's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Broker is a running embedded broker.
type Broker struct {
	server    *mochi.Server
	ln        *trackingListener
	url       string
	closeOnce sync.Once
	closeErr  error
}

// Start starts an allow-all broker on the loopback address addr
// (":0" picks a free port on 127.0.0.1).
func Start(addr string, logger *slog.Logger) (*Broker, error) {
	return StartWith(Options{Addr: addr, Logger: logger})
}

// StartWith starts a broker configured by o.
func StartWith(o Options) (*Broker, error) {
	addr, err := listenAddr(o.Addr, o.AllowNonLoopback)
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "broker")

	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: listen on %s: %w", addr, err)
	}
	ln := newTrackingListener(raw)
	s := mochi.New(&mochi.Options{
		Logger: slog.New(mochiLog{logger.Handler()}),
		// $SYS topics every second would only be noise here.
		SysTopicResendInterval: 3600,
	})
	if err := s.AddHook(newHook(o.ACL, o.Clearers), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded MQTT broker on %s: auth hook: %w", addr, err)
	}
	if err := s.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded MQTT broker on %s: %w", addr, err)
	}
	if err := s.Serve(); err != nil {
		s.Close()
		return nil, fmt.Errorf("embedded MQTT broker on %s: %w", addr, err)
	}
	b := &Broker{server: s, ln: ln, url: "tcp://" + ln.Addr().String()}
	logger.Info("embedded MQTT broker listening", "url", b.url, "acl", o.ACL)
	return b, nil
}

// URL is the broker's address for clients, e.g. tcp://127.0.0.1:41883.
func (b *Broker) URL() string { return b.url }

// Close disconnects every client, stops listening and forgets all state
// (retained messages, sessions). The clients' wills fire as their
// connections drop, into a broker that is going away: nobody receives them.
// The port is free again when Close returns. Close is idempotent.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.ln.quiesce(closeGrace)
		if err := b.server.Close(); err != nil {
			b.closeErr = fmt.Errorf("embedded MQTT broker %s: close: %w", b.url, err)
		}
	})
	return b.closeErr
}

// listenAddr resolves the address to listen on and refuses a non-loopback
// one unless allowed.
func listenAddr(addr string, allowNonLoopback bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("embedded MQTT broker: address %q: %w", addr, err)
	}
	switch host {
	case "":
		host = "127.0.0.1"
	case "localhost":
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil && !allowNonLoopback {
		return "", fmt.Errorf("embedded MQTT broker: address %q: want a loopback IP (127.0.0.1, ::1), not a host name", addr)
	}
	if ip != nil && !ip.IsLoopback() && !allowNonLoopback {
		return "", fmt.Errorf("embedded MQTT broker: address %q: %w", addr, ErrNotLoopback)
	}
	return net.JoinHostPort(host, port), nil
}

// ErrNotLoopback is wrapped by the error for a non-loopback address when
// Options.AllowNonLoopback is not set.
var ErrNotLoopback = errors.New("not a loopback address; the embedded broker has no TLS, set AllowNonLoopback to listen there anyway")

// closeGrace bounds how long Close waits for connections accepted just
// before it to be taken up by mochi.
const closeGrace = time.Second

// trackingListener knows which accepted connections mochi has not touched
// yet. Mochi v2.7.9 counts a connection in a WaitGroup (Add) only once its
// goroutine runs, and Close waits on that WaitGroup: a connection accepted
// just as the broker closes is a data race (WaitGroup Add concurrent with
// Wait). Mochi's first act on a connection after Add is to read from it, so
// Close first stops accepting, then waits until every accepted connection
// has been read from or closed.
type trackingListener struct {
	net.Listener
	mu      sync.Mutex
	changed *sync.Cond
	pending map[*trackedConn]bool
}

func newTrackingListener(l net.Listener) *trackingListener {
	t := &trackingListener{Listener: l, pending: make(map[*trackedConn]bool)}
	t.changed = sync.NewCond(&t.mu)
	return t
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.pending[tc] = true
	l.mu.Unlock()
	return tc, nil
}

// quiesce closes the listener and waits, at most d, until no accepted
// connection is pending.
func (l *trackingListener) quiesce(d time.Duration) {
	_ = l.Listener.Close()
	deadline := time.AfterFunc(d, func() {
		l.mu.Lock()
		clear(l.pending) // give up on them
		l.changed.Broadcast()
		l.mu.Unlock()
	})
	defer deadline.Stop()
	l.mu.Lock()
	for len(l.pending) > 0 {
		l.changed.Wait()
	}
	l.mu.Unlock()
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) touched() {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.pending, c)
		c.l.changed.Broadcast()
		c.l.mu.Unlock()
	})
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.touched()
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.touched()
	return c.Conn.Close()
}
