package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/forecast"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// Messenger is what the gateway needs from MQTT: QoS 1 publish and
// subscribe. gateway/mqtt.Client is the real one.
type Messenger interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
	Subscribe(topic string, h func(topic string, payload []byte)) error
}

// Options are what a gateway is built from.
type Options struct {
	Config  *config.Config // validated
	Key     ed25519.PrivateKey
	Roster  *protocol.Roster
	MQTT    Messenger
	Devices []Device
	// Now is the clock; nil means time.Now. The demo runs gateways on the
	// simulator's accelerated clock, tests on a hand-moved one.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a new private registry
	Version  string
	// OnVerified, if set, is called after every verification of a
	// published clearing (err nil: verified).
	OnVerified func(interval string, v *clearing.Verdict, err error)
	// OnSealed, if set, is called when this gateway has cleared and
	// published an interval.
	OnSealed func(s *clearing.Sealed)
	// Ledger, if set, records every verified settlement and one reading
	// per device and interval.
	Ledger Ledger
	// OnSettled, if set, is called after a published settlement verified
	// (and went into the ledger).
	OnSettled func(s *settlement.IntervalSettlement)
	// SyncPolls makes Tick wait for the device reads it starts and apply
	// them before it returns, for tests that move a clock by hand and
	// expect the readings due at now to be taken in that Tick. Without it
	// (the daemon), Tick never waits for a device: see devices.go.
	SyncPolls bool
}

// Gateway is one home's gateway (and, if configured, a clearer).
type Gateway struct {
	cfg      *config.Config
	id       string
	market   *auction.Market
	key      ed25519.PrivateKey
	roster   *protocol.Roster
	topics   protocol.Topics
	schedule clearing.Schedule
	mq       Messenger
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics
	opts     Options

	clearer *clearing.Clearer // nil unless primary or standby
	ledger  Ledger

	devices  *devices // the device loop (devices.go)
	forecast *forecast.Forecaster

	mu         sync.Mutex
	books      map[string][]byte   // book message by interval
	results    map[string][]byte   // result message by interval
	verified   map[string][32]byte // interval -> digest of the book and result verified (or failed)
	own        map[string][]byte   // our order message by interval
	skipped    map[string]string   // interval -> why no order was placed (its reason, logged once)
	sealedByUs map[string]bool
	startedAt  time.Time // when Start subscribed: a clearer seals only books it collected whole
	alarms     []protocol.Alarm

	// Settlement state.
	bounds      map[time.Time]boundary       // grid counters at interval starts
	cleared     map[string]*auction.Result   // verified clearings by interval
	metered     map[string]map[string][]byte // clearer: metered messages by interval, gateway
	settlements map[string][]byte            // published settlement messages by interval
	settled     map[string]bool              // settlement checked (and recorded)
	settledByUs map[string]bool
	lastTelem   time.Time
}

// New builds a gateway. It does not touch the network: Start subscribes.
func New(o Options) (*Gateway, error) {
	cfg := o.Config
	m, err := auction.NewMarket(cfg.AuctionRules())
	if err != nil {
		return nil, fmt.Errorf("gateway %s: market: %w", cfg.Gateway, err)
	}
	if o.Roster.Community != cfg.Community {
		return nil, fmt.Errorf("gateway %s: the roster is for community %q, the config for %q", cfg.Gateway, o.Roster.Community, cfg.Community)
	}
	pub, ok := o.Roster.Key(cfg.Gateway)
	if !ok {
		return nil, fmt.Errorf("gateway %s: not in the roster of %q; add its public key %s", cfg.Gateway, cfg.Community,
			protocol.PublicKeyString(o.Key.Public().(ed25519.PublicKey)))
	}
	if !pub.Equal(o.Key.Public()) {
		return nil, fmt.Errorf("gateway %s: the roster has another public key for this gateway than its key file", cfg.Gateway)
	}
	if cfg.Clearer != config.ClearerNone && !o.Roster.IsClearer(cfg.Gateway) {
		return nil, fmt.Errorf("gateway %s: configured as %s clearer but the roster does not mark it clearer", cfg.Gateway, cfg.Clearer)
	}
	topics, err := protocol.NewTopics(cfg.Community)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	g := &Gateway{
		cfg: cfg, id: cfg.Gateway, market: m, key: o.Key, roster: o.Roster, topics: topics,
		schedule: clearing.Schedule{Interval: cfg.Market.Interval, GateClosure: cfg.Market.GateClosure},
		mq:       o.MQTT, now: o.Now, log: o.Logger.With("gateway", cfg.Gateway), opts: o,
		books: map[string][]byte{}, results: map[string][]byte{}, verified: map[string][32]byte{},
		own: map[string][]byte{}, skipped: map[string]string{}, sealedByUs: map[string]bool{},
		ledger: o.Ledger, bounds: map[time.Time]boundary{}, cleared: map[string]*auction.Result{},
		metered: map[string]map[string][]byte{}, settlements: map[string][]byte{}, settled: map[string]bool{},
		settledByUs: map[string]bool{},
	}
	g.metrics = newMetrics(o.Registry)
	gridPoll := g.addDevices(o.Devices, o.SyncPolls)
	if gridPoll > 0 {
		g.forecast, err = forecast.New(forecast.Rules{
			Interval:     cfg.Market.Interval,
			Poll:         gridPoll,
			SafetyFactor: cfg.Policy.SafetyFactor,
			MinTradeWh:   toWh(cfg.Market.MinTradeKWh),
			MaxOrderWh:   toWhPtr(cfg.Policy.MaxOrderKWh),
		})
		if err != nil {
			return nil, err
		}
	}
	if cfg.Clearer != config.ClearerNone {
		g.clearer = clearing.NewClearer(g.id, o.Key, o.Roster, m, g.schedule)
	}
	return g, nil
}

func toWh(kwh decimal.Decimal) int64 { return kwh.Shift(3).Truncate(0).IntPart() }

func toWhPtr(kwh *decimal.Decimal) int64 {
	if kwh == nil {
		return 0
	}
	return toWh(*kwh)
}

// Market returns the gateway's market.
func (g *Gateway) Market() *auction.Market { return g.market }

// Topics returns the community's topics.
func (g *Gateway) Topics() protocol.Topics { return g.topics }

// Start subscribes to the community's books, results and settlements, and,
// for a clearer, to the orders and the metered figures; the primary clearer
// also publishes the roster.
func (g *Gateway) Start() error {
	subs := []string{g.topics.BookAll(), g.topics.ResultAll(), g.topics.SettlementAll()}
	if g.clearer != nil {
		subs = append(subs, g.topics.OrdersAll(), g.topics.MeteredAll())
	}
	g.mu.Lock()
	g.startedAt = g.now()
	g.mu.Unlock()
	for _, t := range subs {
		if err := g.mq.Subscribe(t, g.handle); err != nil {
			return fmt.Errorf("gateway %s: subscribe %s: %w", g.id, t, err)
		}
	}
	if g.cfg.Clearer == config.ClearerPrimary {
		// The operator's clearer publishes the roster it trusts, retained, for
		// the neighbours' apps and tools (gateways trust their roster file).
		if err := g.publish(context.Background(), g.topics.Roster(), g.roster.Encode(), true); err != nil {
			g.log.Warn("roster not published", "err", err)
		}
	}
	return nil
}

// Run starts the gateway and ticks it every period until ctx ends.
func (g *Gateway) Run(ctx context.Context, period time.Duration) error {
	if err := g.Start(); err != nil {
		return err
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		g.Tick(ctx, g.now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// handle receives every subscribed message. Bad input is logged and
// counted, never fatal.
func (g *Gateway) handle(topic string, payload []byte) {
	kind, _, key, err := protocol.ParseTopic(topic)
	if err != nil {
		g.metrics.badMessages.WithLabelValues("unknown").Inc()
		g.log.Warn("message on an unexpected topic", "topic", topic, "err", err)
		return
	}
	if len(payload) == 0 {
		return // a retained message being cleared
	}
	switch kind {
	case protocol.KindOrders:
		g.offer(key, payload)
	case protocol.KindBook:
		g.mu.Lock()
		g.books[key] = payload
		g.mu.Unlock()
		g.verify(key)
	case protocol.KindResult:
		if key == protocol.Latest {
			return // the same bytes as result/<interval>
		}
		g.mu.Lock()
		g.results[key] = payload
		g.mu.Unlock()
		g.verify(key)
	case protocol.KindMetered:
		g.collectMetered(key, payload)
	case protocol.KindSettlement:
		g.mu.Lock()
		g.settlements[key] = payload
		g.mu.Unlock()
		g.checkSettlement(key)
	}
}

// offer hands an order to the clearer and counts the outcome.
func (g *Gateway) offer(topicGateway string, payload []byte) {
	if g.clearer == nil {
		return
	}
	gw, interval, err := g.clearer.Offer(g.now(), topicGateway, payload)
	if err != nil {
		reason := protocol.ReasonOf(err)
		g.metrics.ordersRejected.WithLabelValues(string(reason)).Inc()
		g.log.Warn("order rejected", "from", gw, "interval", interval, "reason", reason, "err", err)
		return
	}
	g.metrics.ordersAccepted.Inc()
	g.log.Debug("order accepted", "from", gw, "interval", interval)
}

// verify checks an interval's published clearing once both its book and
// its result have arrived (again when either changes).
func (g *Gateway) verify(interval string) {
	g.mu.Lock()
	book, result, own := g.books[interval], g.results[interval], g.own[interval]
	if book == nil || result == nil {
		g.mu.Unlock()
		return
	}
	h := sha256.New()
	h.Write(book)
	h.Write(result)
	var seen [32]byte
	h.Sum(seen[:0])
	if g.verified[interval] == seen {
		g.mu.Unlock()
		return
	}
	g.verified[interval] = seen
	g.mu.Unlock()

	v, err := clearing.Verify(g.roster, g.market, g.id, book, result, own)
	if err != nil {
		kind := clearing.KindOf(err)
		g.metrics.verifications.WithLabelValues(kind).Inc()
		g.log.Error("published clearing does not verify", "interval", interval, "kind", kind, "err", err)
		g.raise(protocol.Alarm{Interval: interval, Kind: kind, Detail: truncate(err.Error(), 200)})
	} else {
		g.metrics.verifications.WithLabelValues("ok").Inc()
		g.metrics.observeClearing(v.Result, g.market)
		g.mu.Lock()
		g.cleared[interval] = v.Result
		g.mu.Unlock()
		attrs := []any{"interval", interval, "clearer", v.Clearer, "orders", v.Result.Orders,
			"volume_kwh", g.market.FormatKWh(v.Result.Volume)}
		if v.Result.Cleared {
			attrs = append(attrs, "price", g.market.FormatPrice(v.Result.Price))
		}
		if v.OwnFill != nil {
			attrs = append(attrs, "own_fill_kwh", g.market.FormatKWh(v.OwnFill.Qty))
		}
		g.log.Info("clearing verified", attrs...)
	}
	if g.opts.OnVerified != nil {
		g.opts.OnVerified(interval, v, err)
	}
	if err == nil {
		g.checkSettlement(interval) // it may have arrived first
	}
}

// publishTimeout bounds one publish: the loop must never hang on a broker
// that does not acknowledge.
const publishTimeout = 10 * time.Second

// publish sends one QoS 1 message, waiting at most publishTimeout for the
// broker's acknowledgement.
func (g *Gateway) publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return g.mq.Publish(ctx, topic, payload, retained)
}

// Tick does what is due at now: poll devices, publish telemetry, place the
// order for the open interval, and (a clearer) seal the interval whose
// gate has closed. The loop calls it; tests call it with their own times.
func (g *Gateway) Tick(ctx context.Context, now time.Time) {
	g.poll(ctx, now)
	g.telemetry(ctx, now)
	g.submit(ctx, now)
	if g.clearer != nil {
		g.seal(ctx, now)
		g.settleDue(ctx, now)
	}
	g.forget(now)
}

// submit places this home's order for the open interval, once, half-way
// between the interval's start and gate closure (or as soon after as a
// forecast is possible).
func (g *Gateway) submit(ctx context.Context, now time.Time) {
	if g.forecast == nil {
		return
	}
	delivery := g.schedule.Open(now)
	interval := protocol.IntervalID(delivery)
	gate := g.schedule.GateClose(delivery)
	start := delivery.Add(-g.schedule.Interval)
	if now.Before(start.Add(gate.Sub(start)/2)) || !now.Before(gate) {
		return
	}
	g.mu.Lock()
	done := g.own[interval] != nil
	g.mu.Unlock()
	if done {
		return
	}
	fc, err := g.forecast.At(now)
	if err != nil {
		g.skip(interval, err)
		return
	}
	side, price, ok := g.priceFor(fc)
	if !ok {
		g.skip(interval, errors.New("no price: set policy.max_buy_price or market.price_cap to buy"))
		return
	}
	qty := fc.Qty() * pow10(g.cfg.Market.QtyDecimals) / 1000 // Wh to the market's quanta, rounded down
	if qty <= 0 {
		g.skip(interval, forecast.ErrBelowMinimum)
		return
	}
	raw, err := protocol.SignOrder(g.key, g.cfg.Community, interval, g.id, side, qty, price, g.market)
	if err != nil {
		g.skip(interval, err)
		return
	}
	if err := g.publish(ctx, g.topics.Orders(g.id), raw, false); err != nil {
		g.log.Warn("order not published; will retry", "interval", interval, "err", err)
		return
	}
	g.mu.Lock()
	g.own[interval] = raw
	g.mu.Unlock()
	g.metrics.ordersPlaced.WithLabelValues(side.String()).Inc()
	g.log.Info("order placed", "interval", interval, "side", side, "kwh", g.market.FormatKWh(qty),
		"price", g.market.FormatPrice(price), "forecast_net_wh", fc.NetWh, "window", fc.Window)
}

func (g *Gateway) skip(interval string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	msg, reason := err.Error(), skipReason(err)
	// Once per interval and reason: the message of a stale reading carries
	// its age, which changes at every tick.
	seen := reason
	if reason == "other" {
		seen = msg
	}
	if g.skipped[interval] == seen {
		return
	}
	g.skipped[interval] = seen
	g.metrics.ordersSkipped.WithLabelValues(reason).Inc()
	g.log.Info("no order", "interval", interval, "reason", msg)
}

func skipReason(err error) string {
	for _, s := range []struct {
		err    error
		reason string
	}{
		{meter.ErrStale, "stale"}, {forecast.ErrNoReadings, "no_readings"}, {forecast.ErrShortHistory, "short_history"},
		{forecast.ErrCounterReset, "counter_reset"}, {forecast.ErrBelowMinimum, "below_minimum"},
	} {
		if errors.Is(err, s.err) {
			return s.reason
		}
	}
	return "other"
}

// priceFor returns the side and limit price of a forecast's order.
func (g *Gateway) priceFor(fc forecast.Forecast) (auction.Side, int64, bool) {
	p, c := g.cfg.Policy, g.cfg.Market
	pick := func(ds ...*decimal.Decimal) (int64, bool) {
		for _, d := range ds {
			if d != nil {
				return d.Shift(int32(c.PriceDecimals)).IntPart(), true
			}
		}
		return 0, false
	}
	if fc.Sell() {
		zero := decimal.Zero
		price, _ := pick(p.MinSellPrice, c.PriceFloor, &zero)
		return auction.Sell, price, true
	}
	price, ok := pick(p.MaxBuyPrice, c.PriceCap)
	return auction.Buy, price, ok
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// seal clears the interval whose gate has closed: the primary at gate
// closure, a standby once the grace period has passed without a result.
func (g *Gateway) seal(ctx context.Context, now time.Time) {
	// The interval whose gate closed most recently is the open one if its
	// gate has closed already, otherwise the one before.
	delivery := g.schedule.Open(now)
	if now.Before(g.schedule.GateClose(delivery)) {
		delivery = delivery.Add(-g.schedule.Interval)
	}
	interval := protocol.IntervalID(delivery)
	wait := time.Duration(0)
	if g.cfg.Clearer == config.ClearerStandby {
		wait = g.cfg.Market.Grace
	}
	if now.Before(g.schedule.GateClose(delivery).Add(wait)) || !now.Before(delivery.Add(g.schedule.Interval)) {
		return
	}
	g.mu.Lock()
	published := g.results[interval] != nil || g.sealedByUs[interval]
	// A clearer that started after the gate closed has not seen the whole
	// book (and the result may be on its way): it leaves that one alone.
	late := !g.startedAt.Before(g.schedule.GateClose(delivery))
	g.mu.Unlock()
	if published || late {
		return
	}
	s, err := g.clearer.Seal(interval)
	if err != nil {
		g.log.Error("cannot clear", "interval", interval, "err", err)
		return
	}
	for _, p := range []struct {
		topic   string
		payload []byte
	}{
		{g.topics.Book(interval), s.Book},
		{g.topics.Result(interval), s.Result},
		{g.topics.ResultLatest(), s.Result},
	} {
		if err := g.publish(ctx, p.topic, p.payload, true); err != nil {
			g.log.Error("clearing not published; will retry", "interval", interval, "topic", p.topic, "err", err)
			return
		}
	}
	g.mu.Lock()
	g.sealedByUs[interval] = true
	g.mu.Unlock()
	g.metrics.intervalsCleared.Inc()
	attrs := []any{"interval", interval, "role", string(g.cfg.Clearer), "orders", s.Cleared.Orders,
		"volume_kwh", g.market.FormatKWh(s.Cleared.Volume), "trades", len(s.Cleared.Trades)}
	if s.Cleared.Cleared {
		attrs = append(attrs, "price", g.market.FormatPrice(s.Cleared.Price))
	}
	g.log.Info("interval cleared and published", attrs...)
	if g.opts.OnSealed != nil {
		g.opts.OnSealed(s)
	}
	g.retire(ctx, delivery)
}

// keepRetained is how many intervals of books and results stay retained
// on the broker: one day of 15-minute intervals.
const keepRetained = 96

// retire clears the retained book and result of the interval keepRetained
// intervals before delivery, so the broker's retained store stays bounded.
func (g *Gateway) retire(ctx context.Context, delivery time.Time) {
	old := protocol.IntervalID(delivery.Add(-keepRetained * g.schedule.Interval))
	for _, t := range []string{g.topics.Book(old), g.topics.Result(old)} {
		if err := g.publish(ctx, t, nil, true); err != nil {
			g.log.Debug("old retained message not cleared", "topic", t, "err", err)
		}
	}
}

// forget drops state older than a few intervals.
func (g *Gateway) forget(now time.Time) {
	cut := protocol.IntervalStart(now, g.schedule.Interval).Add(-4 * g.schedule.Interval)
	g.mu.Lock()
	dropBefore(cut, g.books)
	dropBefore(cut, g.results)
	dropBefore(cut, g.own)
	dropBefore(cut, g.settlements)
	dropBefore(cut, g.verified)
	dropBefore(cut, g.skipped)
	dropBefore(cut, g.sealedByUs)
	dropBefore(cut, g.cleared)
	dropBefore(cut, g.metered)
	dropBefore(cut, g.settled)
	dropBefore(cut, g.settledByUs)
	for at := range g.bounds {
		if at.Before(cut) {
			delete(g.bounds, at)
		}
	}
	// Alarms about an interval stay a day, then leave the status.
	keep := g.alarms[:0]
	for _, a := range g.alarms {
		if at, err := protocol.ParseInterval(a.Interval); err != nil || !at.Before(now.Add(-24*time.Hour)) {
			keep = append(keep, a)
		}
	}
	g.alarms = keep
	g.mu.Unlock()
	if g.clearer != nil {
		g.clearer.Forget(cut)
	}
}

// dropBefore deletes the entries of m, keyed by interval id, for intervals
// that start before cut.
func dropBefore[V any](cut time.Time, m map[string]V) {
	for id := range m {
		if at, err := protocol.ParseInterval(id); err == nil && at.Before(cut) {
			delete(m, id)
		}
	}
}

// raise records an alarm and publishes the gateway's status with it.
func (g *Gateway) raise(a protocol.Alarm) {
	g.mu.Lock()
	g.alarms = append(g.alarms, a)
	if len(g.alarms) > protocol.MaxAlarms {
		g.alarms = g.alarms[len(g.alarms)-protocol.MaxAlarms:]
	}
	alarms := append([]protocol.Alarm(nil), g.alarms...)
	g.mu.Unlock()
	g.metrics.alarms.WithLabelValues(a.Kind).Inc()
	st := protocol.Status{Gateway: g.id, State: protocol.StateOnline, Version: g.opts.Version, Time: g.now(), Alarms: alarms}
	payload, err := st.Encode()
	if err == nil {
		err = g.publish(context.Background(), g.topics.Status(g.id), payload, true)
	}
	if err != nil {
		g.log.Warn("status not published", "err", err)
	}
}

// Alarms returns the open alarms.
func (g *Gateway) Alarms() []protocol.Alarm {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]protocol.Alarm(nil), g.alarms...)
}

// OwnOrder returns the order message this gateway placed for interval.
func (g *Gateway) OwnOrder(interval string) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.own[interval]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
