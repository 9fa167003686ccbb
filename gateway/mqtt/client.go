// Package mqtt is the MQTT client of the p2pgrid gateway: a thin, safe layer
// over github.com/eclipse/paho.mqtt.golang (MQTT 3.1.1) that publishes and
// subscribes with QoS 1 on a persistent session, reconnects by itself with
// backoff, re-subscribes after every reconnect, and keeps the gateway's
// retained status true.
//
// Connect returns once connected. New and Start connect in the background
// instead, for a gateway that must run (read its meters, serve /healthz)
// while the broker is unreachable: until the connection is up, and while
// it is down later, Publish fails at once with ErrNotConnected and
// Subscribe is remembered for the connection.
//
// It knows nothing of orders, books or auctions: topics and payloads are
// opaque strings and bytes. The gateway core declares the small
// Publish/Subscribe interface it needs and *Client satisfies it.
//
// # Handler dispatch
//
// Paho calls message handlers from its single router goroutine, and while a
// handler runs, paho's reader stops at the next incoming message and reads
// nothing behind it, not even the PUBACK a handler waits for when it
// publishes: a handler that blocks, or publishes and waits, stalls or
// deadlocks the client (paho's README,
// "common problems"; upstream issues such as #509 and #613). This package
// never lets a caller's handler run on that goroutine. Paho's router (kept
// in its ordered mode) calls one function of ours that only appends the
// message to the queue of each matching subscription and returns at once;
// every subscription has its own worker goroutine that calls the handler,
// one message at a time, in arrival order. So a handler may block, take its
// time or call Publish and wait for the PUBACK; a slow handler delays only
// its own subscription. (SetOrderMatters(false) would also avoid the
// deadlock, but it runs every message in a goroutine of its own: no order,
// and no bound on goroutines.) The price: the PUBACK to the broker is sent
// when the message is queued, not when the handler has finished, so a
// message queued when the process dies is lost (QoS 1 is at-least-once up
// to this client's queue); and a handler stuck for good makes its queue
// grow, which is logged. A handler that panics is logged and counted; the
// client carries on.
//
// Messages the broker delivers before the matching Subscribe call (a
// persistent session delivers what it queued while the gateway was away
// right after CONNACK, before the gateway can subscribe again) are held, up
// to a bound, and handed to the first Subscribe whose filter matches them.
//
// # Status
//
// With Options.WillTopic and OnlineTopic set (usually the same topic), the
// retained status is the client's current status after every connect
// (OnlinePayload, or what PublishStatus last published: a status with
// alarms), the broker's will says "offline" when the connection dies
// without a DISCONNECT, and Close says "offline" itself (a clean disconnect
// does not fire the will). The client also watches its own status topic:
// when a gateway reconnects before the broker has noticed that its old
// connection died, the broker publishes the old connection's will as it
// takes the session over, and the embedded broker may do so after the new
// status; the client then states its current status again (see
// watchStatus). A status published with plain Publish is not the client's
// status and would be overwritten so: use PublishStatus.
//
// # Several brokers
//
// With Options.Brokers a community's gateways fail over between brokers
// (two Mosquittos bridged to each other, each with every message). Paho
// tries the list in order at every connection attempt, the first one and
// every automatic reconnect, and takes the first broker that accepts; the
// client's own retry loop (Connect, Start) only repeats such attempts. So
// when the broker the client is on dies, the reconnect lands on the next
// one that is up, and at the reconnect after that it is back on the first
// one that is up: a client does not leave a broker that works to go back
// to the first one. Broker says which one the client is on.
//
// The persistent session lives on one broker: after a failover the other
// broker may know no session of this client id (or an old one, with what
// it queued since, which arrives as duplicates), so the client subscribes
// again, as it does after every connect, and retained messages come from
// the other broker. What was queued for the client on the dead broker is
// lost to it; what paho had not seen acknowledged is sent again to the
// new one. What is published must therefore be idempotent, as it must
// anyway for QoS 1.
//
// A refusal (bad password, not authorised) of one broker does not stop
// Connect with several: another may be down only for now (and paho's
// error is that of the last broker it tried).
//
// # Paho's pitfalls guarded against
//
//   - Every wait on paho (connect, publish, subscribe, close) is bounded by a
//     context or a timeout: paho's token.Wait can hang forever.
//   - An invalid topic never reaches paho (the broker would drop the
//     connection and paho re-send the stored publish after every reconnect).
//   - The session store hands paho copies (a data race in paho's resume,
//     issue #703) and has nothing to resume on the first connection (paho
//     would send what OnConnect published a second time): see sessionStore.
//   - Connect and Start retry by themselves rather than with paho's
//     ConnectRetry, so that Connect can give up at once on a refusal (bad
//     password, not authorised) and report the last error, and Start can
//     log every refusal and keep trying.
package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Defaults used when an Options field is zero.
const (
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = time.Minute
)

const (
	qos = 1 // every publish and subscription; QoS 2 is not worth its round trips here

	// maxHeld bounds the messages held for a Subscribe that has not been
	// called yet; older ones are dropped first.
	maxHeld = 1024

	// firstRetry is the pause after the first failed connection attempt in
	// Connect; it doubles up to Options.MaxReconnectInterval.
	firstRetry = 250 * time.Millisecond

	// disconnectQuiesce is how long Close lets paho finish in-flight work.
	disconnectQuiesce = 250 // milliseconds, as paho wants it

	// handlerGrace is how long Close waits for running handlers to return.
	handlerGrace = 5 * time.Second
)

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("mqtt client closed")

// ErrNotConnected is wrapped by the error of a Publish while the
// connection is down: Publish fails at once rather than wait for the
// reconnect.
var ErrNotConnected = errors.New("not connected to the broker")

// ErrRefused is wrapped by the error of a Subscribe the broker refused
// (SUBACK 0x80, e.g. an ACL that denies the filter).
var ErrRefused = errors.New("refused by the broker")

// Options configures a Client. Only a broker (Broker or Brokers) and
// ClientID are required.
type Options struct {
	// Broker is the broker URL: tcp://host:1883 (or mqtt://), ssl://host:8883
	// (or mqtts://, tls://), ws://host/path or wss://host/path.
	Broker string `yaml:"broker" json:"broker"`
	// Brokers, in place of Broker, are the URLs of several brokers of one
	// community (bridged, so that each has every message): every
	// connection attempt, the first and every reconnect, tries them in
	// order and takes the first that accepts (paho's own behaviour with
	// several servers), so the client fails over when its broker dies and
	// comes back to the first one at its next reconnect. Give Broker or
	// Brokers, not both. They must all be TLS URLs or none: the TLS files
	// apply to every one. See the package doc, "Several brokers".
	Brokers []string `yaml:"brokers" json:"brokers"`
	// ClientID identifies the session on the broker; use the gateway id. It
	// must be stable: the persistent session (QoS 1 messages queued while
	// the gateway was away, subscriptions) belongs to it.
	ClientID string `yaml:"client_id" json:"client_id"`
	// Username and Password log in to the broker. With the shipped
	// Mosquitto ACL the username must be the gateway id.
	Username string `yaml:"username" json:"username"`
	Password string `yaml:"-" json:"-"` // a secret: never marshalled
	// CAFile is a PEM file of the CAs to trust for the broker's certificate;
	// empty means the system roots. CertFile and KeyFile are this client's
	// PEM certificate and key for mutual TLS; give both or neither. The
	// files are read once, by New (or Connect). They need a TLS broker URL.
	CAFile   string `yaml:"ca_file" json:"ca_file"`
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
	// WillTopic and WillPayload are the offline status: the broker publishes
	// them, retained, when the connection dies without a clean disconnect,
	// and Close publishes them itself. Empty WillTopic: no status at all.
	WillTopic   string `yaml:"will_topic" json:"will_topic"`
	WillPayload []byte `yaml:"will_payload" json:"will_payload"`
	// OnlineTopic and OnlinePayload are published, retained, after every
	// connect and reconnect, and again whenever a live message other than
	// the current status appears there while the client is up (a late will
	// of its own): the client subscribes to OnlineTopic for that, so it
	// needs read access to it. PublishStatus replaces OnlinePayload as the
	// current status. Usually OnlineTopic == WillTopic.
	OnlineTopic   string `yaml:"online_topic" json:"online_topic"`
	OnlinePayload []byte `yaml:"online_payload" json:"online_payload"`
	// KeepAlive is the MQTT keep-alive (PINGREQ) interval; it is how soon a
	// silently dead link is noticed. Default DefaultKeepAlive.
	KeepAlive time.Duration `yaml:"keep_alive" json:"keep_alive"`
	// ConnectTimeout bounds one connection attempt, and the waits for a
	// SUBACK or a PUBACK that have no context of their own (resubscribing,
	// the online and offline status). Default DefaultConnectTimeout.
	ConnectTimeout time.Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// MaxReconnectInterval caps the exponential backoff between connection
	// attempts. Default DefaultMaxReconnectInterval.
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval" json:"max_reconnect_interval"`
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Stats are the client's counters since Connect.
type Stats struct {
	Connects       uint64 // successful connections, the first one included
	Reconnects     uint64 // successful connections after the first
	ConnectionLost uint64 // connections that died (not counting Close)
	Published      uint64 // Publish calls that completed without error
	Received       uint64 // messages delivered by the broker
	Unrouted       uint64 // messages that matched no subscription when they arrived
	HandlerPanics  uint64 // handler calls that panicked (recovered)
}

// Client is an MQTT client. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	brokers []string // the broker URLs, in the order they are tried
	broker  string   // the broker URLs (CheckBroker refuses credentials), for errors and logs

	// trying is the URL paho is dialling (set by its OnConnectAttempt);
	// current is the one the connection is up on ("" while it is down).
	trying, current atomic.Pointer[string]
	losses          lossLog
	log             *slog.Logger
	po              *paho.ClientOptions
	pc              atomic.Pointer[paho.Client] // set once, by the first successful connection attempt

	// status is the payload of the retained status while the client is
	// up: Options.OnlinePayload, then what PublishStatus last published.
	// route reads it without locks; it is written under statusMu.
	status atomic.Pointer[[]byte]

	mu     sync.Mutex
	subs   map[string]*subscription // by filter
	held   []message                // arrived before their Subscribe
	closed bool

	statusMu sync.Mutex // orders the online and offline status publishes
	closing  bool       // under statusMu: no more online status

	restate   chan struct{} // a will of ours was seen: publish online again
	stopped   chan struct{} // closed by Close, ends watchStatus and the dialling
	ready     chan struct{} // closed when the first onConnect has finished
	dialed    chan struct{} // closed when the dialling is over (pc is final)
	readyOnce sync.Once
	startOnce sync.Once
	closeOnce sync.Once
	workers   sync.WaitGroup

	connects, reconnects, lost, published, received, unrouted, panics atomic.Uint64
}

type message struct {
	topic   string
	payload []byte
}

// Connect connects to the broker and returns when the first connection is
// up, the subscriptions are (trivially) in place and the online status has
// been acknowledged, or when ctx ends. It retries failed attempts with
// backoff until ctx ends; a refusal that a retry cannot cure (bad username or
// password, not authorised, client id rejected) and bad options fail at once,
// with one broker (with Options.Brokers, a refusal is retried until ctx ends:
// see the package doc).
// After Connect the client reconnects by itself, for good, until Close.
func Connect(ctx context.Context, o Options) (*Client, error) {
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	c.startOnce.Do(func() {}) // Connect dials itself; Start does nothing
	pc, err := c.dial(ctx, true)
	c.setConnection(pc)
	if err != nil {
		c.Close()
		return nil, err
	}
	select {
	case <-c.ready:
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("mqtt broker %s: connected, but the online status was not acknowledged: %w", c.broker, ctx.Err())
	}
}

// New checks o and returns a client that is not connected yet: Start
// connects it in the background. Until the first connection, Publish fails
// with ErrNotConnected, Subscribe remembers the subscription for the
// connection, Connected is false and Close only stops the attempts. New
// does not touch the network; it reads the TLS files.
func New(o Options) (*Client, error) {
	brokers, tlsURL, err := checkBrokers(o.Broker, o.Brokers)
	if err != nil {
		return nil, err
	}
	broker := strings.Join(brokers, " or ") // CheckBroker refuses credentials: nothing to hide
	if o.ClientID == "" {
		return nil, fmt.Errorf("mqtt broker %s: ClientID is empty: a persistent session needs a stable client id (the gateway id)", broker)
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxReconnectInterval <= 0 {
		o.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	for _, t := range []struct{ what, topic string }{{"WillTopic", o.WillTopic}, {"OnlineTopic", o.OnlineTopic}} {
		if t.topic == "" {
			continue
		}
		if err := checkTopicName(t.topic); err != nil {
			return nil, fmt.Errorf("mqtt broker %s: %s %q: %w", broker, t.what, t.topic, err)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		opts:    o,
		brokers: brokers,
		broker:  broker,
		log:     log.With("broker", broker, "client_id", o.ClientID),
		subs:    make(map[string]*subscription),
		restate: make(chan struct{}, 1),
		stopped: make(chan struct{}),
		ready:   make(chan struct{}),
		dialed:  make(chan struct{}),
	}
	online := bytes.Clone(o.OnlinePayload)
	c.status.Store(&online)

	store := newSessionStore()
	po := paho.NewClientOptions()
	for _, b := range brokers {
		po.AddBroker(b)
	}
	po.SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, without paho's silent fallback to 3.1
		SetCleanSession(false).
		SetResumeSubs(true).
		SetOrderMatters(true). // our router callback never blocks; see the package doc
		SetAutoReconnect(true).
		SetConnectRetry(false). // dial retries itself, to report the last error
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(min(o.KeepAlive, 10*time.Second)).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.ConnectTimeout).
		SetMaxReconnectInterval(o.MaxReconnectInterval).
		SetDefaultPublishHandler(c.route).
		SetConnectionLostHandler(c.onConnectionLost).
		SetStore(store).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			store.arm()
			c.log.Debug("mqtt reconnecting")
		}).
		SetConnectionAttemptHandler(func(u *url.URL, cfg *tls.Config) *tls.Config {
			b := u.String()
			c.trying.Store(&b)
			return cfg
		})
	if o.WillTopic != "" {
		if len(o.WillPayload) == 0 {
			// A will without payload is a protocol violation to brokers:
			// they drop the connection, and paho reconnects forever.
			return nil, fmt.Errorf("mqtt broker %s: WillTopic %q without a WillPayload", broker, o.WillTopic)
		}
		po.SetBinaryWill(o.WillTopic, o.WillPayload, qos, true)
	}
	if tlsURL || o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" {
		if !tlsURL {
			return nil, fmt.Errorf("mqtt broker %s: CAFile, CertFile or KeyFile given but the URL is not TLS (use ssl:// or mqtts://)", broker)
		}
		cfg, err := tlsConfig(o.CAFile, o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt broker %s: %w", broker, err)
		}
		po.SetTLSConfig(cfg)
	}
	c.po = po
	return c, nil
}

// Start connects a client from New in the background: it makes connection
// attempts with backoff (up to Options.MaxReconnectInterval apart) until one
// succeeds or Close is called, refusals included (a password or an ACL may
// be fixed on the broker meanwhile; each is logged as an error). Once
// connected, the client reconnects by itself as after Connect. Start
// returns at once; Connected says when the client is up. Calling it again
// does nothing.
func (c *Client) Start() {
	c.startOnce.Do(func() {
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-c.stopped:
					cancel()
				case <-ctx.Done():
				}
			}()
			pc, _ := c.dial(ctx, false) // an error here only means Close
			c.setConnection(pc)
		}()
	})
}

// setConnection records the outcome of the dialling: the connected paho
// client, or nil. A connection made as Close began is dropped.
func (c *Client) setConnection(pc paho.Client) {
	defer close(c.dialed)
	if pc == nil {
		return
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.pc.Store(&pc)
	}
	c.mu.Unlock()
	if closed {
		// No online status from this connection's onConnect after the
		// offline one.
		c.statusMu.Lock()
		c.closing = true
		c.statusMu.Unlock()
		c.dropConnection(pc)
		return
	}
	if c.opts.OnlineTopic != "" {
		go c.watchStatus()
	}
}

// conn returns the paho client once a connection attempt has succeeded,
// else nil.
func (c *Client) conn() paho.Client {
	if p := c.pc.Load(); p != nil {
		return *p
	}
	return nil
}

// dial makes connection attempts, each with a fresh paho client, until one
// succeeds or ctx ends, or, with giveUp, one fails for good.
func (c *Client) dial(ctx context.Context, giveUp bool) (paho.Client, error) {
	po := c.po
	pause := firstRetry
	var last error
	for attempt := 1; ; attempt++ {
		abandoned := new(atomic.Bool)
		po.SetOnConnectHandler(func(pc paho.Client) {
			if !abandoned.Load() {
				c.onConnect(pc)
			}
		})
		pc := paho.NewClient(po)
		tok := pc.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			abandoned.Store(true)
			go c.dropLateConnection(pc, tok)
			return nil, c.giveUp(ctx, attempt, last)
		}
		err := tok.Error()
		if err == nil {
			return pc, nil
		}
		last = err
		switch {
		case permanent(err) && giveUp && len(c.brokers) == 1:
			return nil, fmt.Errorf("mqtt broker %s: connect as %q: %w", c.broker, c.opts.ClientID, err)
		case permanent(err):
			c.log.Error("mqtt connection refused, retrying", "attempt", attempt, "retry_in", pause.Round(time.Millisecond).String(), "err", err)
		default:
			c.log.Warn("mqtt connect failed, retrying", "attempt", attempt, "retry_in", pause.Round(time.Millisecond).String(), "err", err)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, c.giveUp(ctx, attempt, last)
		}
		pause = min(2*pause, c.opts.MaxReconnectInterval)
	}
}

// lossLog keeps the times of the last maxLosses connection losses.
type lossLog struct {
	mu    sync.Mutex
	times []time.Time // oldest first, at most maxLosses
}

// maxLosses bounds the losses LostRecently can count.
const maxLosses = 64

func (l *lossLog) add(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.times) == maxLosses {
		l.times = append(l.times[:0], l.times[1:]...)
	}
	l.times = append(l.times, t)
}

// since counts the losses after t.
func (l *lossLog) since(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := len(l.times) - 1; i >= 0 && l.times[i].After(t); i-- {
		n++
	}
	return n
}

func (c *Client) giveUp(ctx context.Context, attempts int, last error) error {
	if last == nil {
		return fmt.Errorf("mqtt broker %s: no connection: %w", c.broker, ctx.Err())
	}
	return fmt.Errorf("mqtt broker %s: no connection after %d attempts: %w (last attempt: %w)", c.broker, attempts, ctx.Err(), last)
}

// dropLateConnection disconnects an attempt that dial gave up on, should
// it succeed after all, leaving the offline status behind.
func (c *Client) dropLateConnection(pc paho.Client, tok paho.Token) {
	<-tok.Done() // bounded by ConnectTimeout
	if tok.Error() != nil {
		return
	}
	c.dropConnection(pc)
}

// dropConnection publishes the offline status on pc and disconnects it.
func (c *Client) dropConnection(pc paho.Client) {
	if c.opts.WillTopic != "" {
		waitToken(pc.Publish(c.opts.WillTopic, qos, true, c.opts.WillPayload), c.opts.ConnectTimeout)
	}
	pc.Disconnect(disconnectQuiesce)
}

// permanent reports whether a connect error will not go away by retrying.
func permanent(err error) bool {
	for _, p := range []error{
		packets.ErrorRefusedBadUsernameOrPassword,
		packets.ErrorRefusedNotAuthorised,
		packets.ErrorRefusedIDRejected,
		packets.ErrorRefusedBadProtocolVersion,
	} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// onConnect runs, in a goroutine of paho's, after every successful
// connection: it re-subscribes and publishes the online status.
func (c *Client) onConnect(pc paho.Client) {
	n := c.connects.Add(1)
	if n > 1 {
		c.reconnects.Add(1)
	}
	to := c.trying.Load()
	c.current.Store(to)
	if to != nil {
		c.log.Info("mqtt connected", "connects", n, "to", *to)
	} else {
		c.log.Info("mqtt connected", "connects", n)
	}

	// The broker may have lost the session (restarted without persistence,
	// session expired): subscribe again to everything, every time.
	c.mu.Lock()
	filters := make([]string, 0, len(c.subs))
	for f := range c.subs {
		filters = append(filters, f)
	}
	c.mu.Unlock()
	for _, f := range filters {
		if err := c.subscribeOn(pc, f); err != nil {
			c.log.Warn("mqtt re-subscribe failed", "filter", f, "err", err)
		}
	}
	if c.opts.OnlineTopic != "" {
		// Watch our own status before publishing it: see watchStatus.
		if err := c.subscribeOn(pc, c.opts.OnlineTopic); err != nil {
			c.log.Warn("mqtt cannot watch its own status", "topic", c.opts.OnlineTopic, "err", err)
		}
	}

	c.statusMu.Lock()
	if !c.closing && c.opts.OnlineTopic != "" {
		tok := pc.Publish(c.opts.OnlineTopic, qos, true, *c.status.Load())
		if err := waitToken(tok, c.opts.ConnectTimeout); err != nil {
			c.log.Warn("mqtt online status not published", "topic", c.opts.OnlineTopic, "err", err)
		}
	}
	c.statusMu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
}

// watchStatus publishes the current status (OnlinePayload or the last
// PublishStatus) again whenever a live (not retained) message other than
// it appears on the status topic while the client is up. That is the will of our previous
// connection arriving late: when a gateway reconnects before the broker has
// noticed that the old connection died, the broker drops the old one as the
// session is taken over and publishes its will, and mochi does so after the
// new connection may already have published "online"; the retained status
// would then say offline for a gateway that is online. (Mosquitto publishes
// the old will before it answers the new CONNECT, but a will delayed by the
// broker or a stale session has the same effect.)
func (c *Client) watchStatus() {
	for {
		select {
		case <-c.stopped:
			return
		case <-c.restate:
		}
		c.statusMu.Lock()
		if pc := c.conn(); !c.closing && pc != nil && pc.IsConnectionOpen() {
			c.log.Info("mqtt status overwritten (a late will of ours?); publishing the current status again", "topic", c.opts.OnlineTopic)
			tok := pc.Publish(c.opts.OnlineTopic, qos, true, *c.status.Load())
			if err := waitToken(tok, c.opts.ConnectTimeout); err != nil {
				c.log.Warn("mqtt online status not published", "topic", c.opts.OnlineTopic, "err", err)
			}
		}
		c.statusMu.Unlock()
	}
}

func (c *Client) onConnectionLost(_ paho.Client, err error) {
	c.lost.Add(1)
	c.losses.add(time.Now())
	var from string
	if p := c.current.Swap(nil); p != nil {
		from = *p
	}
	c.log.Warn("mqtt connection lost; reconnecting", "from", from, "err", err)
}

// LostRecently returns how many times the connection was lost (by the
// broker, the network or a session takeover: not by Close) within window
// before now, by the client's clock, up to the last maxLosses losses. A
// gateway whose client id someone else connects with is kicked off again
// and again: this is how it notices.
func (c *Client) LostRecently(window time.Duration) int {
	return c.losses.since(time.Now().Add(-window))
}

// Connects returns how many times the client has connected, the first
// connection included (Stats().Connects). A caller that sees it change knows
// that the connection was made anew, maybe to another broker (with
// Options.Brokers), where what it published on the old one may never have
// arrived: the gateway publishes its open order and its unsettled metered
// figures again then, and a clearer its recent books, results and
// settlements.
func (c *Client) Connects() uint64 { return c.connects.Load() }

// Broker returns the URL of the broker the connection is up on, or ""
// while it is down: with Options.Brokers, which of them the client is on.
func (c *Client) Broker() string {
	if !c.Connected() {
		return ""
	}
	if p := c.current.Load(); p != nil {
		return *p
	}
	return ""
}

// Publish publishes payload to topic with QoS 1 and waits for the broker's
// PUBACK, or until ctx ends.
//
// While the connection is down (before the first connection, or while the
// client reconnects) Publish fails at once with an error wrapping
// ErrNotConnected: a caller's loop is not held up by an outage, and it
// publishes again when it sees fit (the retained status is restated by the
// client itself after the reconnect: see PublishStatus). A message handed
// to paho just before the connection dropped waits in the session store
// and goes out after the reconnect; paho then completes the wait without an
// error as soon as it has re-sent the message, before any PUBACK. When ctx
// ends first, Publish returns ctx's error but does not withdraw the message:
// it may still be delivered, so what is published must be idempotent.
//
// A broker that denies the topic by ACL (Mosquitto, and the embedded broker
// with its ACL) still acknowledges a QoS 1 publish under MQTT 3.1.1: a nil
// error does not prove that anyone can receive the message.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if err := checkTopicName(topic); err != nil {
		return fmt.Errorf("mqtt broker %s: publish to %q: %w", c.broker, topic, err)
	}
	if c.isClosed() {
		return fmt.Errorf("mqtt broker %s: publish to %q: %w", c.broker, topic, ErrClosed)
	}
	pc := c.conn()
	if pc == nil || !pc.IsConnectionOpen() {
		return fmt.Errorf("mqtt broker %s: publish to %q: %w", c.broker, topic, ErrNotConnected)
	}
	tok := pc.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt broker %s: publish to %q: %w", c.broker, topic, err)
		}
		c.published.Add(1)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt broker %s: publish to %q: no PUBACK: %w", c.broker, topic, ctx.Err())
	}
}

// PublishStatus makes payload the client's status (in place of
// Options.OnlinePayload) and publishes it, retained, on Options.OnlineTopic,
// waiting for the PUBACK as Publish does. From then on it is what the client
// publishes after every reconnect, and what it restates when something else
// appears on its status topic (a late will of its own): a status with
// alarms stays the status. While the connection is down the payload is
// recorded and the error wraps ErrNotConnected; the reconnect publishes it.
// After Close, and without an OnlineTopic, it fails.
func (c *Client) PublishStatus(ctx context.Context, payload []byte) error {
	topic := c.opts.OnlineTopic
	if topic == "" {
		return fmt.Errorf("mqtt broker %s: publish status: no OnlineTopic", c.broker)
	}
	if len(payload) == 0 {
		return fmt.Errorf("mqtt broker %s: publish status to %q: empty payload (a retained empty message deletes the status)", c.broker, topic)
	}
	// Under statusMu, so that a restatement or the online status after a
	// reconnect is never sent after a newer status, nor this one after
	// Close's offline status.
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	if c.closing || c.isClosed() {
		return fmt.Errorf("mqtt broker %s: publish status to %q: %w", c.broker, topic, ErrClosed)
	}
	p := bytes.Clone(payload)
	c.status.Store(&p)
	return c.Publish(ctx, topic, p, true)
}

// Subscribe subscribes to the topic filter with QoS 1 and calls h for every
// message that matches it, from a goroutine of this subscription, one
// message at a time, in arrival order (see the package doc). h may block and
// may call Publish. Held messages that match the filter are handed to h
// first.
//
// The subscription is remembered and made again after every reconnect. If
// the connection is down, Subscribe returns nil and the reconnect makes it.
// Subscribe fails for an invalid filter, a filter already subscribed, after
// Close, and when the broker refuses the filter (errors.Is(err, ErrRefused));
// a refused filter is forgotten.
func (c *Client) Subscribe(filter string, h func(topic string, payload []byte)) error {
	if err := checkFilter(filter); err != nil {
		return fmt.Errorf("mqtt broker %s: subscribe to %q: %w", c.broker, filter, err)
	}
	if h == nil {
		return fmt.Errorf("mqtt broker %s: subscribe to %q: nil handler", c.broker, filter)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("mqtt broker %s: subscribe to %q: %w", c.broker, filter, ErrClosed)
	}
	if _, dup := c.subs[filter]; dup {
		c.mu.Unlock()
		return fmt.Errorf("mqtt broker %s: subscribe to %q: already subscribed", c.broker, filter)
	}
	s := newSubscription(filter, h, c)
	c.subs[filter] = s
	kept := c.held[:0]
	for _, m := range c.held {
		if matches(filter, m.topic) {
			s.push(m)
		} else {
			kept = append(kept, m)
		}
	}
	clear(c.held[len(kept):])
	c.held = kept
	c.mu.Unlock()
	c.workers.Add(1)
	go s.run()

	pc := c.conn()
	if pc == nil || !pc.IsConnectionOpen() {
		c.log.Info("mqtt not connected; will subscribe once connected", "filter", filter)
		return nil
	}
	err := c.subscribeOn(pc, filter)
	switch {
	case errors.Is(err, ErrRefused):
		c.mu.Lock()
		delete(c.subs, filter)
		c.mu.Unlock()
		s.stop()
		return err
	case err != nil:
		c.log.Warn("mqtt subscribe not acknowledged; will subscribe again after the reconnect", "filter", filter, "err", err)
	}
	return nil
}

// subscribeOn sends one SUBSCRIBE on pc and waits for its SUBACK.
//
// Mochi (the embedded broker) shares one packet-id space between the two
// directions of a session: right after a reconnect, while it still waits
// for the PUBACKs of the messages it re-sent, a SUBSCRIBE that happens to
// reuse one of their ids is answered 0x91 (packet identifier in use, an
// MQTT 5 code even for 3.1.1 clients). Paho takes a new id for every
// SUBSCRIBE, so that answer is retried.
func (c *Client) subscribeOn(pc paho.Client, filter string) error {
	const idInUse = 0x91
	for attempt := 1; ; attempt++ {
		tok := pc.Subscribe(filter, qos, nil) // nil: every message goes through c.route
		if err := waitToken(tok, c.opts.ConnectTimeout); err != nil {
			return fmt.Errorf("mqtt broker %s: subscribe to %q: %w", c.broker, filter, err)
		}
		st, ok := tok.(*paho.SubscribeToken)
		if !ok {
			return nil
		}
		granted, ok := st.Result()[filter]
		switch {
		case !ok || granted <= 2:
			return nil
		case granted == idInUse && attempt < 5:
			time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
		default:
			return fmt.Errorf("mqtt broker %s: subscribe to %q: %w (SUBACK 0x%02x)", c.broker, filter, ErrRefused, granted)
		}
	}
}

// route is paho's default publish handler and, as Subscribe passes paho no
// handler of its own, it receives every message. It runs on paho's router
// goroutine, so it must never block: it only queues.
func (c *Client) route(_ paho.Client, m paho.Message) {
	c.received.Add(1)
	msg := message{topic: m.Topic(), payload: m.Payload()}
	c.log.Debug("mqtt message", "topic", msg.topic, "bytes", len(msg.payload), "retained", m.Retained(), "duplicate", m.Duplicate(), "id", m.MessageID())
	ownStatus := c.opts.OnlineTopic != "" && msg.topic == c.opts.OnlineTopic
	if ownStatus && !m.Retained() && !bytes.Equal(msg.payload, *c.status.Load()) {
		select {
		case c.restate <- struct{}{}:
		default: // already pending
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	routed := ownStatus // never held: the client subscribed to it itself
	for f, s := range c.subs {
		if matches(f, msg.topic) {
			s.push(msg)
			routed = true
		}
	}
	if routed {
		return
	}
	c.unrouted.Add(1)
	if len(c.held) == maxHeld {
		c.log.Warn("mqtt message matched no subscription and the hold is full; dropping the oldest", "topic", c.held[0].topic)
		c.held = append(c.held[:0], c.held[1:]...)
	}
	c.held = append(c.held, msg)
}

// Close publishes the offline status (the will's topic and payload) itself,
// as a clean disconnect does not fire the will, disconnects, and stops the
// handlers: it waits a few seconds at most for running handlers to return
// and drops messages still queued. A client that is still making its first
// connection attempts (Start) stops them. Close is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true // no connection is taken up after this
		subs := c.subs
		c.subs = map[string]*subscription{}
		c.held = nil
		c.mu.Unlock()
		close(c.stopped) // ends the attempts of Start
		started := true
		c.startOnce.Do(func() { started = false }) // and forbids new ones
		if started {
			select {
			case <-c.dialed:
			case <-time.After(c.opts.ConnectTimeout + time.Second):
				c.log.Warn("mqtt connection attempt did not end at Close")
			}
		}

		pc := c.conn()
		c.statusMu.Lock()
		c.closing = true
		if pc != nil && c.opts.WillTopic != "" && pc.IsConnectionOpen() {
			tok := pc.Publish(c.opts.WillTopic, qos, true, c.opts.WillPayload)
			if err := waitToken(tok, c.opts.ConnectTimeout); err != nil {
				c.log.Warn("mqtt offline status not published", "topic", c.opts.WillTopic, "err", err)
			}
		}
		c.statusMu.Unlock()

		if pc != nil {
			pc.Disconnect(disconnectQuiesce)
		}
		for _, s := range subs {
			s.stop()
		}
		done := make(chan struct{})
		go func() { c.workers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(handlerGrace):
			c.log.Warn("mqtt closed with a message handler still running")
		}
		c.log.Info("mqtt closed")
	})
}

// Connected reports whether the connection is up right now.
func (c *Client) Connected() bool {
	pc := c.conn()
	return !c.isClosed() && pc != nil && pc.IsConnectionOpen()
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Connects:       c.connects.Load(),
		Reconnects:     c.reconnects.Load(),
		ConnectionLost: c.lost.Load(),
		Published:      c.published.Load(),
		Received:       c.received.Load(),
		Unrouted:       c.unrouted.Load(),
		HandlerPanics:  c.panics.Load(),
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// waitToken waits for tok at most d; paho's own Wait may never return.
func waitToken(tok paho.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %v", d)
	}
}

// brokerSchemes are the URL schemes of a broker, and whether each is TLS.
var brokerSchemes = map[string]bool{
	"tcp": false, "mqtt": false, "ws": false,
	"ssl": true, "tls": true, "mqtts": true, "wss": true,
}

// MaxBrokers bounds Options.Brokers: each connection attempt may try every
// one, ConnectTimeout each.
const MaxBrokers = 8

// checkBrokers checks Options.Broker and Brokers as New does, and returns
// the URLs to try, in order, and whether they are TLS URLs.
func checkBrokers(one string, list []string) ([]string, bool, error) {
	switch {
	case one != "" && len(list) > 0:
		return nil, false, errors.New("mqtt broker: both Broker and Brokers are set: give one broker URL or the list")
	case one != "":
		list = []string{one}
	case len(list) == 0:
		_, err := CheckBroker("")
		return nil, false, fmt.Errorf("mqtt broker: %w", err)
	case len(list) > MaxBrokers:
		return nil, false, fmt.Errorf("mqtt brokers: %d URLs (at most %d)", len(list), MaxBrokers)
	}
	var tlsAll bool
	for i, b := range list {
		isTLS, err := CheckBroker(b)
		if err != nil {
			if len(list) == 1 {
				return nil, false, fmt.Errorf("mqtt broker: %w", err)
			}
			return nil, false, fmt.Errorf("mqtt brokers[%d]: %w", i, err)
		}
		if err := SameFamily(list[0], b); i > 0 && err != nil {
			return nil, false, fmt.Errorf("mqtt brokers[%d]: %w", i, err)
		}
		if i > 0 && slices.Contains(list[:i], b) {
			return nil, false, fmt.Errorf("mqtt brokers[%d]: %q is given twice", i, b)
		}
		tlsAll = isTLS
	}
	return slices.Clone(list), tlsAll, nil
}

// SameFamily checks that the broker URL b can stand in for a: both TLS
// (ssl://, tls://, mqtts://, wss://) or neither, as one client's TLS files
// (or their absence) apply to every broker it fails over to. Both must
// have passed CheckBroker.
func SameFamily(a, b string) error {
	ta, _ := CheckBroker(a)
	tb, _ := CheckBroker(b)
	if ta != tb {
		kind := func(t bool) string {
			if t {
				return "a TLS URL"
			}
			return "not a TLS URL"
		}
		return fmt.Errorf("%q is %s but %q is %s: the brokers of one gateway are all TLS or none", b, kind(tb), a, kind(ta))
	}
	return nil
}

// CheckBroker checks a broker URL as Connect does, and says whether it is a
// TLS URL: a known scheme (tcp://, mqtt://, ssl://, tls://, mqtts://, ws://,
// wss://), a host, a port from 1 to 65535 (optional for websockets only),
// and no credentials (they go in Options.Username and Password). Its errors
// never quote a URL that carries credentials.
func CheckBroker(raw string) (tls bool, err error) {
	if raw == "" {
		return false, errors.New("empty (want tcp://host:1883 or mqtts://host:8883)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error repeats the URL, which may hold a password
		}
		return false, fmt.Errorf("not a URL: %w", err)
	}
	if u.User != nil {
		return false, errors.New("credentials in the URL: give the username and password separately")
	}
	tls, ok := brokerSchemes[u.Scheme]
	if !ok {
		return false, fmt.Errorf("%q: want a tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss:// URL", raw)
	}
	if u.Hostname() == "" {
		return false, fmt.Errorf("%q has no host", raw)
	}
	switch p := u.Port(); {
	case p != "":
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false, fmt.Errorf("%q: port %q is not a number from 1 to 65535", raw, p)
		}
	case !strings.HasPrefix(u.Scheme, "ws"):
		return false, fmt.Errorf("%q has no port (1883 for tcp://, 8883 for TLS)", raw)
	}
	return tls, nil
}
