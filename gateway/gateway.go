package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/forecast"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/gateway/settling"
	"github.com/p2pgrid/p2pgrid/market"
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
	Config *config.Config // validated
	Key    ed25519.PrivateKey
	// Roster is a plain roster, fixed for the gateway's life (config
	// operator_key unset). Give Roster or Rosters.
	Roster *protocol.Roster
	// Rosters are the signed roster versions to start from (config
	// operator_key set; ReadRosterFile reads them), the gateway's own: it
	// takes newer versions into them, so they must not be shared with
	// another gateway.
	Rosters *protocol.Rosters
	MQTT    Messenger
	Devices []Device
	// Now is the clock; nil means time.Now. The demo runs gateways on the
	// simulator's accelerated clock, tests on a hand-moved one.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a new private registry
	Version  string
	// StateDir is where the gateway keeps what must survive a restart (the
	// grid meter's counters at interval boundaries, BoundariesFile; the
	// newest signed roster version, RosterFile); "" keeps it in memory
	// only.
	StateDir string
	// Observer, if set, is told of every verification, sealed interval
	// and settlement (observer.go).
	Observer Observer
	// Ledger, if set, records every verified settlement and one reading
	// per device and interval.
	Ledger Ledger
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
	rosters  *protocol.Rosters // which roster governs which interval: see roster.go
	topics   protocol.Topics
	calendar market.Calendar
	mq       Messenger
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics
	opts     Options

	clearer *clearing.Clearer // nil unless primary or standby
	ledger  Ledger

	devices  *devices // the device loop (devices.go)
	forecast *forecast.Forecaster

	mu        sync.Mutex
	intervals map[string]*interval // by interval id: see interval.go
	startedAt time.Time            // when Start subscribed: a clearer seals only books it collected whole
	alarms    []protocol.Alarm
	verdicts  []protocol.Verification // on the latest intervals, newest first: see noteVerdict
	lastTelem time.Time

	connects    uint64      // Connections.Connects when republish last ran (under mu)
	rosterStamp fileStamp   // the roster file when last read by checkRosterFile (under mu; zero: read at the first tick)
	rosterStale atomic.Bool // a clearer saw a rejected message on the roster topic: restoreRoster

	bounds    *settling.Boundaries // grid counters at interval starts
	rules     settling.Rules       // how intervals are settled
	settles   bool                 // the market has the tariffs to settle against
	collector *settling.Collector  // a clearer's metered figures; nil otherwise
	limit     logLimiter           // rate-limits repeated log lines (rejections, failed publishes)
	budget    topicBudget          // bounds the orders and figures taken per gateway topic and interval
	progress  progress             // the INFO lines of the first minutes and of each interval (progress.go)
	settleMu  sync.Mutex           // one settlement check at a time (checkSettlement)
	ledgerMu  sync.Mutex           // one ledger check-and-append at a time (record)
	rosterMu  sync.Mutex           // one write of the kept roster at a time (saveRoster)
	apps      *appTopics           // the home's app and Home Assistant topics (apps.go); nil: none
}

// New builds a gateway. It does not touch the network: Start subscribes.
func New(o Options) (*Gateway, error) {
	cfg := o.Config
	m, err := auction.NewMarket(cfg.AuctionRules())
	if err != nil {
		return nil, fmt.Errorf("gateway %s: market: %w", cfg.Gateway, err)
	}
	rosters, err := startRosters(cfg, o)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", cfg.Gateway, err)
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
	if o.Observer == nil {
		o.Observer = ObserverFuncs{}
	}
	g := &Gateway{
		cfg: cfg, id: cfg.Gateway, market: m, key: o.Key, rosters: rosters, topics: topics,
		calendar: cfg.Market.Calendar(),
		mq:       o.MQTT, now: o.Now, log: o.Logger, opts: o,
		intervals: map[string]*interval{}, ledger: o.Ledger,
	}
	g.metrics = newMetrics(o.Registry, o.Version)
	g.keepRosters()
	if err := cfg.CheckRoster(g.newestRoster(), o.Key.Public().(ed25519.PublicKey)); err != nil {
		return nil, fmt.Errorf("gateway %s: %w", cfg.Gateway, err)
	}
	g.metrics.rosterVersion.Set(float64(rosters.Newest().Seq))
	path := ""
	if o.StateDir != "" {
		path = filepath.Join(o.StateDir, BoundariesFile)
	}
	if g.bounds, err = loadBoundaries(path); err != nil {
		g.log.Error("boundary counters lost: the figures of the current interval cannot be published", "err", err)
	}
	g.rules = settling.Rules{Calendar: g.calendar, MaxConnectionKW: cfg.Market.MaxConnectionKW}
	if mk := cfg.Market; mk.PriceFloor != nil && mk.PriceCap != nil {
		g.rules.Tariffs, g.settles = settlement.Tariffs{Retail: *mk.PriceCap, FeedIn: *mk.PriceFloor}, true
		rules := m.Rules()
		g.rules.PostDelivery = &rules // residuals matched among neighbours: docs/settlement.md
		g.rules.SealPlain = !mk.PostDelivery
	}
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
		g.clearer = clearing.NewClearer(g.id, o.Key, rosters, m, g.calendar)
		g.collector = settling.NewCollector(rosters, g.rules)
	}
	g.apps = g.newAppTopics()
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
// for a clearer, to the orders and the metered figures; with signed
// rosters, to the roster. A clearer publishes the roster (rosterPayload).
func (g *Gateway) Start() error {
	subs := []string{g.topics.BookAll(), g.topics.ResultAll(), g.topics.SettlementAll()}
	if g.signedRosters() {
		subs = append([]string{g.topics.Roster()}, subs...) // first: the roster governs what the others bring
	}
	if g.clearer != nil {
		subs = append(subs, g.topics.OrdersAll(), g.topics.MeteredAll())
	}
	g.mu.Lock()
	g.startedAt = g.now()
	if cn, ok := g.mq.(Connections); ok {
		g.connects = cn.Connects()
	}
	g.mu.Unlock()
	for _, t := range subs {
		if err := g.mq.Subscribe(t, g.handle); err != nil {
			return fmt.Errorf("gateway %s: subscribe %s: %w", g.id, t, err)
		}
	}
	g.publishRoster(context.Background())
	return nil
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
	if (kind == protocol.KindOrders || kind == protocol.KindMetered) && !g.budget.take(kind+"/"+key, g.calendar.Start(g.now())) {
		if kind == protocol.KindOrders {
			g.metrics.ordersRejected.WithLabelValues(string(protocol.RejectRateLimited)).Inc()
		} else {
			g.metrics.badMessages.WithLabelValues(kind).Inc()
		}
		if ok, held := g.limit.allow("rate/"+kind+"/"+key, g.now()); ok {
			g.log.Warn("messages beyond the budget of one gateway in one interval dropped", "topic", topic,
				"budget", messageBudget, "similar_not_logged", held)
		}
		return
	}
	switch kind {
	case protocol.KindRoster:
		if g.signedRosters() {
			g.takeRoster(payload)
		}
	case protocol.KindOrders:
		g.offer(key, payload)
	case protocol.KindBook, protocol.KindResult, protocol.KindSettlement:
		if key == protocol.Latest {
			return // result/latest: the same bytes as result/<interval>
		}
		if max := maxSize[kind]; len(payload) > max {
			g.metrics.badMessages.WithLabelValues(kind).Inc()
			if ok, held := g.limit.allow("size/"+kind, g.now()); ok {
				g.log.Warn("message too large; ignored", "topic", topic, "bytes", len(payload), "max", max, "similar_not_logged", held)
			}
			return
		}
		g.mu.Lock()
		iv := g.at(key, g.now())
		if iv != nil {
			switch kind {
			case protocol.KindBook:
				iv.book = payload
			case protocol.KindResult:
				iv.result = payload
			default:
				iv.settlement = payload
			}
		}
		g.mu.Unlock()
		if iv == nil {
			// Retained messages of long-past intervals arrive at every
			// (re)subscription: nothing to do with them.
			g.log.Debug("message about an interval outside the gateway's window", "topic", topic)
			return
		}
		if kind == protocol.KindSettlement {
			g.checkSettlement(key)
		} else {
			g.verify(key)
		}
	case protocol.KindMetered:
		g.collectMetered(key, payload)
	}
}

// closedBeforeStart reports whether the gate of interval closed before the
// gateway subscribed.
func (g *Gateway) closedBeforeStart(interval string) bool {
	start, err := market.ParseInterval(interval)
	if err != nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calendar.GateClose(start).Before(g.startedAt)
}

// maxSize bounds the messages the gateway keeps, by topic kind: a larger
// one is dropped before it is kept.
var maxSize = map[string]int{
	protocol.KindBook: protocol.MaxBookSize, protocol.KindResult: protocol.MaxResultSize,
	protocol.KindSettlement: protocol.MaxSettlementSize,
}

// offer hands an order to the clearer and counts the outcome.
func (g *Gateway) offer(topicGateway string, payload []byte) {
	if g.clearer == nil {
		return
	}
	gw, interval, err := g.clearer.Offer(g.now(), topicGateway, payload)
	if err != nil {
		reason := protocol.ReasonOf(err)
		if reason == protocol.RejectLate && g.closedBeforeStart(interval) {
			// The retained order of an interval whose gate closed before
			// this clearer subscribed: not late, just old.
			g.log.Debug("old retained order ignored", "from", gw, "interval", interval)
			return
		}
		g.metrics.ordersRejected.WithLabelValues(string(reason)).Inc()
		if ok, held := g.limit.allow("order/"+topicGateway+"/"+string(reason), g.now()); ok {
			g.log.Warn("order rejected", "from", gw, "interval", interval, "reason", reason, "err", err, "similar_not_logged", held)
		}
		return
	}
	g.metrics.ordersAccepted.Inc()
	g.log.Debug("order accepted", "from", gw, "interval", interval)
}

// verify checks an interval's published clearing once both its book and
// its result have arrived (again when either changes).
func (g *Gateway) verify(interval string) {
	g.mu.Lock()
	iv := g.intervals[interval]
	if iv == nil || iv.book == nil || iv.result == nil {
		g.mu.Unlock()
		return
	}
	book, result, own := iv.book, iv.result, iv.ownOrder
	seen := digest(book, result)
	if iv.checked == seen {
		g.mu.Unlock()
		return
	}
	iv.checked = seen
	g.mu.Unlock()

	// A result that no roster clearer signed is nobody's clearing, and a
	// genuine result of another interval republished here is not this
	// interval's: counted and logged, no alarm (anyone with access to the
	// broker could raise those), nothing changes.
	rm, err := protocol.DecodeResult(result)
	if err == nil {
		err = rm.Verify(g.rosterAt(interval))
	}
	if err == nil && rm.Interval != interval {
		err = fmt.Errorf("a result of %s", rm.Interval)
	}
	if err != nil {
		g.metrics.badMessages.WithLabelValues(protocol.KindResult).Inc()
		if ok, held := g.limit.allow("result", g.now()); ok {
			g.log.Warn("result rejected", "interval", interval, "err", err, "similar_not_logged", held)
		}
		return
	}
	v, err := clearing.Verify(g.rosterAt(interval), g.market, g.id, book, result, own)
	if err != nil {
		kind := clearing.AlarmOf(err)
		g.noteVerdict(interval, kind, "")
		g.metrics.verifications.WithLabelValues(kind).Inc()
		g.log.Error("published clearing does not verify", "interval", interval, "kind", kind, "err", err)
		g.raiseOnce(interval, protocol.Alarm{Interval: interval, Kind: kind, Detail: truncate(err.Error(), 200)})
	} else {
		g.metrics.verifications.WithLabelValues("ok").Inc()
		g.metrics.observeClearing(v.Result, g.market)
		if v.OwnOrderMissing {
			g.raiseOnce(interval, protocol.Alarm{Interval: interval, Kind: protocol.AlarmMissingOwnOrder, Detail: "the sealed book lacks " +
				"this gateway's order: it did not reach the clearer before gate closure, or the clearer refused it (its log and " +
				"p2pgrid_clearer_orders_rejected_total say why); the interval is settled as if this gateway had not ordered"})
		}
		g.mu.Lock()
		iv.cleared, iv.clearedBy = v.Result, v.Clearer
		iv.clearedBook, iv.clearedResult, iv.clearedOrders = book, result, v.Book
		g.mu.Unlock()
		g.noteVerdict(interval, protocol.VerdictOK, "")
		g.appsCleared(interval, v.Result)
		attrs := []any{"interval", interval, "clearer", v.Clearer, "orders", v.Result.Orders,
			"volume_kwh", g.market.FormatKWh(v.Result.Volume)}
		if v.Result.Cleared {
			attrs = append(attrs, "price", g.market.FormatPrice(v.Result.Price))
		}
		if len(v.OwnFills) > 0 {
			var qty int64
			for _, f := range v.OwnFills {
				qty += f.Qty
			}
			attrs = append(attrs, "own_fill_kwh", g.market.FormatKWh(qty))
		}
		g.log.Debug("clearing verified", attrs...)
	}
	g.opts.Observer.Verified(g.id, interval, v, err)
	if err == nil {
		g.checkSettlement(interval) // it may have arrived first
	}
}

// publishTimeout bounds one publish: the loop must never hang on a broker
// that does not acknowledge.
const publishTimeout = 10 * time.Second

// publish sends one QoS 1 message, retained if its kind is
// (protocol.Retained: which topics are retained is said there once),
// waiting at most publishTimeout for the broker's acknowledgement.
func (g *Gateway) publish(ctx context.Context, topic string, payload []byte) error {
	kind, _, _, err := protocol.ParseTopic(topic)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return g.mq.Publish(ctx, topic, payload, protocol.Retained(kind))
}

// Tick does what is due at now: poll devices, publish telemetry and metered
// figures, place the order for the open interval, (a clearer) seal the
// interval whose gate has closed and settle the one due, and raise alarms
// about overdue results and settlements. Before Start it only polls: until
// the gateway has subscribed it cannot tell what was published. The loop
// calls it; tests call it with their own times.
func (g *Gateway) Tick(ctx context.Context, now time.Time) {
	g.poll(ctx, now)
	g.mu.Lock()
	started := !g.startedAt.IsZero()
	g.mu.Unlock()
	if !started {
		g.forget(now)
		return // not subscribed yet (the broker is not reachable): meters only
	}
	g.checkRosterFile(now)
	g.restoreRoster(ctx)
	g.telemetry(ctx, now)
	g.republish(ctx, now)
	g.publishMetered(ctx)
	g.submit(ctx, now)
	if g.clearer != nil {
		g.seal(ctx, now)
		g.settleDue(ctx, now)
	}
	g.checkOverdue(now)
	g.checkConnection(now)
	g.checkMeters(now)
	g.publishApps(ctx, now)
	g.reportProgress(now)
	g.forget(now)
}

// submit places this home's order for the open interval, once, half-way
// between the interval's start and gate closure (or as soon after as a
// forecast is possible).
func (g *Gateway) submit(ctx context.Context, now time.Time) {
	if g.forecast == nil {
		return
	}
	delivery := g.calendar.Open(now)
	interval := market.IntervalID(delivery)
	if now.Before(g.calendar.OrderAt(delivery)) || !now.Before(g.calendar.GateClose(delivery)) {
		return
	}
	g.mu.Lock()
	iv := g.at(interval, now)
	done := iv == nil || iv.ownOrder != nil
	g.mu.Unlock()
	if done {
		return
	}
	if !g.member(delivery) {
		g.skip(interval, errNotMember)
		return
	}
	fc, err := g.forecast.At(now)
	if err != nil {
		g.skip(interval, err)
		return
	}
	side, price, ok := g.priceFor(fc)
	if !ok && g.curve(side) == nil {
		g.skip(interval, errNoPrice)
		return
	}
	qty := fc.Qty() * pow10(g.cfg.Market.QtyDecimals) / 1000 // Wh to the market's quanta, rounded down
	if qty <= 0 {
		g.skip(interval, forecast.ErrBelowMinimum)
		return
	}
	raw, err := g.signOrder(interval, side, qty, price)
	if err != nil {
		g.skip(interval, err)
		return
	}
	if err := g.publish(ctx, g.topics.Orders(g.id), raw); err != nil {
		if ok, held := g.limit.allow("publish/order", g.now()); ok {
			g.log.Warn("order not published; will retry", "interval", interval, "err", err, "similar_not_logged", held)
		}
		return
	}
	g.mu.Lock()
	iv.ownOrder = raw
	g.mu.Unlock()
	g.metrics.ordersPlaced.WithLabelValues(side.String()).Inc()
	attrs := []any{"interval", interval, "side", side, "kwh", g.market.FormatKWh(qty), "price", g.market.FormatPrice(price)}
	if c := g.curve(side); c != nil { // a bid curve: its steps' own prices
		attrs = append(attrs[:len(attrs)-2], "steps", len(c))
	}
	g.log.Debug("order placed", append(attrs, "forecast_net_wh", fc.NetWh, "window", fc.Window.Round(time.Second).String())...)
}

// skip notes that no order was placed for interval (yet), logging and
// counting it once per interval and reason: the error's text changes from
// poll to poll (a forecast of 23 Wh, then 25 Wh), its reason does not.
func (g *Gateway) skip(interval string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	reason := skipReason(err)
	iv := g.at(interval, g.now())
	if iv == nil || iv.skipped == reason {
		return
	}
	iv.skipped = reason
	g.metrics.ordersSkipped.WithLabelValues(reason).Inc()
	g.log.Debug("no order", "interval", interval, "reason", reason, "detail", err.Error())
}

// skipErrors maps the errors behind a skipped order to their reasons.
var skipErrors = []struct {
	err    error
	reason string
}{
	{meter.ErrStale, "stale"}, {forecast.ErrNoReadings, "no_readings"}, {forecast.ErrShortHistory, "short_history"},
	{forecast.ErrCounterReset, "counter_reset"}, {forecast.ErrBelowMinimum, "below_minimum"},
	{errNotMember, "not_member"},
}

// skipReasons are the reasons of p2pgrid_orders_skipped_total.
func skipReasons() []string {
	out := []string{"no_price", "other"}
	for _, s := range skipErrors {
		out = append(out, s.reason)
	}
	return out
}

func skipReason(err error) string {
	if errors.Is(err, errNoPrice) {
		return "no_price"
	}
	for _, s := range skipErrors {
		if errors.Is(err, s.err) {
			return s.reason
		}
	}
	return "other"
}

var errNoPrice = errors.New("no price: set policy.max_buy_price or market.price_cap to buy")

// errNotMember: the roster in effect for the interval does not list this
// gateway with its key, so every clearer would reject its order.
var errNotMember = errors.New("this gateway is not in the roster of the interval (or with another key): its order would be rejected")

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

// curve returns the policy's bid curve for side: nil when it has none.
func (g *Gateway) curve(side auction.Side) []config.CurveStep {
	if side == auction.Sell {
		return g.cfg.Policy.SellSteps
	}
	return g.cfg.Policy.BuySteps
}

// signOrder signs the order of qty quanta on side for interval: a v2 bid
// curve when the policy has one for the side, else, as ever, one v1 order
// at price.
func (g *Gateway) signOrder(interval string, side auction.Side, qty, price int64) ([]byte, error) {
	curve := g.curve(side)
	if curve == nil {
		return protocol.SignOrder(g.key, g.cfg.Community, interval, g.id, side, qty, price, g.market)
	}
	return protocol.SignOrderSteps(g.key, g.cfg.Community, interval, g.id, curveSteps(curve, side, qty, g.cfg.Market.PriceDecimals), g.market)
}

// curveSteps splits qty quanta over a curve: every step but the last gets
// its share of qty rounded down, the last what is left, so the steps add
// up to qty exactly; steps left with nothing are dropped. Prices are in
// ticks of priceDecimals (config validation made them whole ticks).
func curveSteps(curve []config.CurveStep, side auction.Side, qty int64, priceDecimals int) []protocol.Step {
	var steps []protocol.Step
	left := qty
	for i, c := range curve {
		q := left
		if i < len(curve)-1 {
			q = c.Share.Mul(decimal.NewFromInt(qty)).Floor().IntPart() // shares are at most 1: q <= qty
		}
		left -= q
		if q > 0 {
			steps = append(steps, protocol.Step{Side: side, Qty: q, Price: c.Price.Shift(int32(priceDecimals)).IntPart()})
		}
	}
	return steps
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
	delivery := g.calendar.LastClosed(now)
	interval := market.IntervalID(delivery)
	if now.Before(g.calendar.SealAt(delivery, g.cfg.Clearer == config.ClearerStandby)) || !now.Before(g.calendar.End(delivery)) {
		return
	}
	g.mu.Lock()
	iv := g.at(interval, now)
	// Only a verified clearing counts as published: junk, or a result left
	// retained by an earlier run, on result/<interval> must not keep the
	// clearers from clearing it.
	published := iv == nil || iv.cleared != nil || iv.clearedHere
	// A clearer that started after the gate closed has not seen the whole
	// book (and the result may be on its way): it leaves that one alone.
	late := !g.startedAt.Before(g.calendar.GateClose(delivery))
	g.mu.Unlock()
	if published || late {
		return
	}
	if !g.rosterAt(interval).IsClearer(g.id) {
		// Its result would be nobody's clearing: every gateway checks the
		// clearer against the roster of the interval.
		if ok, held := g.limit.allow("seal/not-clearer", now); ok {
			g.log.Warn("not clearing: the roster of the interval does not mark this gateway as a clearer", "interval", interval, "similar_not_logged", held)
		}
		return
	}
	s, err := g.clearer.Seal(interval)
	if err != nil {
		g.log.Error("cannot clear", "interval", interval, "err", err)
		return
	}
	for _, gw := range s.Dropped {
		g.metrics.ordersRejected.WithLabelValues(string(protocol.RejectForged)).Inc()
		g.log.Warn("order left out of the book: the roster of the interval no longer lists its gateway", "from", gw, "interval", interval)
	}
	for _, p := range []struct {
		topic   string
		payload []byte
	}{
		{g.topics.Book(interval), s.Book},
		{g.topics.Result(interval), s.Result},
		{g.topics.ResultLatest(), s.Result},
	} {
		if err := g.publish(ctx, p.topic, p.payload); err != nil {
			if ok, held := g.limit.allow("publish/clearing", g.now()); ok {
				g.log.Error("clearing not published; will retry", "interval", interval, "topic", p.topic, "err", err, "similar_not_logged", held)
			}
			return
		}
	}
	g.mu.Lock()
	iv.clearedHere, iv.ownBook, iv.ownResult = true, s.Book, s.Result // published again after a reconnect: see republish
	g.mu.Unlock()
	g.metrics.intervalsCleared.Inc()
	attrs := []any{"interval", interval, "role", string(g.cfg.Clearer), "orders", s.Cleared.Orders,
		"volume_kwh", g.market.FormatKWh(s.Cleared.Volume), "trades", len(s.Cleared.Trades)}
	if s.Cleared.Cleared {
		attrs = append(attrs, "price", g.market.FormatPrice(s.Cleared.Price))
	}
	g.log.Debug("interval cleared and published", attrs...)
	g.opts.Observer.Sealed(g.id, s)
	g.retire(ctx, delivery)
}

// retire clears the retained book, result and settlement of the interval
// market.RetainFor before delivery, so the broker's retained store stays bounded
// (one day of messages, whatever the interval's length).
func (g *Gateway) retire(ctx context.Context, delivery time.Time) {
	old := market.IntervalID(g.calendar.Retire(delivery))
	for _, t := range []string{g.topics.Book(old), g.topics.Result(old), g.topics.Settlement(old)} {
		if err := g.publish(ctx, t, nil); err != nil {
			g.log.Debug("old retained message not cleared", "topic", t, "err", err)
		}
	}
}

// Connections is what a Messenger may tell of its connection: how many
// times it has connected, the first time included (gateway/mqtt.Client
// has it). A change means a new connection, maybe to another broker.
type Connections interface {
	Connects() uint64
}

// republish publishes again, after the Messenger connected anew, this
// gateway's order for the open interval (while its gate is open) and its
// metered figures that no verified settlement holds yet: a broker that
// acknowledged them and died before passing them on, to its bridge or to
// the clearer, took them with it. Both are retained and the clearer
// ignores a second copy (an order is counted replayed), so publishing
// them once too often costs nothing. A clearer does the same with what it
// published of the intervals it keeps: the book and result it sealed
// (and result/latest, if its newest is the newest clearing verified here),
// the settlement it sealed and the roster it publishes, the same bytes,
// retained; a gateway that verified them ignores the repeat and records a
// settlement once. It
// leaves them alone where another clearer's clearing or settlement is the
// one that verified here: the other side has that one, and the retained
// copy must not change under it. A failed publish is tried again at the
// next tick.
func (g *Gateway) republish(ctx context.Context, now time.Time) {
	cn, ok := g.mq.(Connections)
	if !ok {
		return
	}
	n := cn.Connects()
	open := market.IntervalID(g.calendar.Open(now))
	gateOpen := now.Before(g.calendar.GateClose(g.calendar.Open(now)))
	type msg struct {
		start   time.Time
		topic   string
		payload []byte
	}
	var out []msg
	g.mu.Lock()
	if n == g.connects {
		g.mu.Unlock()
		return
	}
	var latest, newest *interval // this clearer's newest clearing, and the newest verified here
	for id, iv := range g.intervals {
		if iv.ownMetered != nil && !iv.settled {
			out = append(out, msg{iv.start, g.topics.Metered(g.id), iv.ownMetered})
		}
		if id == open && gateOpen && iv.ownOrder != nil {
			out = append(out, msg{iv.start, g.topics.Orders(g.id), iv.ownOrder})
		}
		if iv.ownResult != nil && (iv.cleared == nil || iv.clearedBy == g.id) {
			out = append(out, msg{iv.start, g.topics.Book(id), iv.ownBook}, msg{iv.start, g.topics.Result(id), iv.ownResult})
			if latest == nil || iv.start.After(latest.start) {
				latest = iv
			}
		}
		if iv.cleared != nil && (newest == nil || iv.start.After(newest.start)) {
			newest = iv
		}
		if iv.ownSettled != nil && (!iv.settled || iv.settledBy == g.id) {
			out = append(out, msg{iv.start, g.topics.Settlement(id), iv.ownSettled})
		}
	}
	if latest != nil && (newest == nil || !newest.start.After(latest.start)) {
		out = append(out, msg{latest.start, g.topics.ResultLatest(), latest.ownResult})
	}
	g.mu.Unlock()
	if roster := g.rosterPayload(); roster != nil {
		out = append(out, msg{time.Time{}, g.topics.Roster(), roster}) // first: it governs the rest
	}
	// Oldest first: the retained copy left is the newest.
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	for _, m := range out {
		if err := g.publish(ctx, m.topic, m.payload); err != nil {
			if ok, held := g.limit.allow("publish/again", g.now()); ok {
				g.log.Warn("not published again after the reconnect; will retry", "topic", m.topic, "err", err, "similar_not_logged", held)
			}
			return
		}
	}
	g.mu.Lock()
	g.connects = n
	g.mu.Unlock()
	if len(out) > 0 {
		g.log.Info("published again after the reconnect", "messages", len(out))
	}
}

// StatusPublisher is what a Messenger may offer to keep the gateway's
// retained status true: gateway/mqtt.Client publishes the payload and uses
// it from then on as the status it restores after a reconnect or a late
// will. Without it the status is published as a plain retained message.
type StatusPublisher interface {
	PublishStatus(ctx context.Context, payload []byte) error
}

// ConnectionLosses is what a Messenger may tell of its connection: how
// many times it was lost within the window before now (gateway/mqtt.Client
// has it).
type ConnectionLosses interface {
	LostRecently(window time.Duration) int
}

// Connection losses that raise AlarmConnectionUnstable: unstableLosses
// within unstableWindow.
const (
	unstableLosses = 3
	unstableWindow = 10 * time.Minute
)

// checkConnection raises an alarm (once per interval) when the broker keeps
// closing the gateway's connection: a session takeover by someone using its
// client id closes it again and again, and so does a failing network.
func (g *Gateway) checkConnection(now time.Time) {
	cl, ok := g.mq.(ConnectionLosses)
	if !ok {
		return
	}
	n := cl.LostRecently(unstableWindow)
	if n < unstableLosses {
		return
	}
	interval := market.IntervalID(g.calendar.Start(now))
	g.raiseOnce(interval, protocol.Alarm{Interval: interval, Kind: protocol.AlarmConnectionUnstable, Detail: fmt.Sprintf(
		"the MQTT connection was lost %d times in %s: another client may be connecting with this gateway's client id "+
			"(a session takeover: see the broker's log, and bind client ids to logins as configs/mosquitto/mosquitto.conf does), "+
			"or the network is failing", n, unstableWindow)})
}

// raiseOnce raises an alarm about an interval unless one of its kind was
// raised about that interval already (an interval outside the kept window
// has no state to remember it by: its alarm is raised each time).
func (g *Gateway) raiseOnce(interval string, a protocol.Alarm) {
	g.mu.Lock()
	iv := g.at(interval, g.now())
	if iv != nil {
		if iv.alarmed[a.Kind] {
			g.mu.Unlock()
			return
		}
		if iv.alarmed == nil {
			iv.alarmed = map[string]bool{}
		}
		iv.alarmed[a.Kind] = true
	}
	g.mu.Unlock()
	g.raise(a)
}

// raise records an alarm and publishes the gateway's status with it.
func (g *Gateway) raise(a protocol.Alarm) {
	g.mu.Lock()
	g.alarms = append(g.alarms, a)
	if len(g.alarms) > protocol.MaxAlarms {
		g.alarms = g.alarms[len(g.alarms)-protocol.MaxAlarms:]
	}
	g.mu.Unlock()
	g.metrics.alarms.WithLabelValues(a.Kind).Inc()
	g.log.Warn("alarm raised", "kind", a.Kind, "interval", a.Interval, "detail", a.Detail)
	g.publishStatus()
}

// closeAlarms drops the open alarms of kind (what they were about is over)
// and publishes the status without them.
func (g *Gateway) closeAlarms(kind string) {
	g.mu.Lock()
	keep := g.alarms[:0]
	for _, a := range g.alarms {
		if a.Kind != kind {
			keep = append(keep, a)
		}
	}
	closed := len(g.alarms) - len(keep)
	g.alarms = keep
	g.mu.Unlock()
	if closed > 0 {
		g.log.Info("alarm closed", "kind", kind)
		g.publishStatus()
	}
}

// noteVerdict records this gateway's verdict on the clearing or the
// settlement of interval (protocol.VerdictOK or an alarm kind; "" leaves
// one as it is) and, when that changes what its status says, publishes
// the status: the operator's dashboard shows every gateway's verdicts.
func (g *Gateway) noteVerdict(interval, clearing, settlement string) {
	g.mu.Lock()
	i := slices.IndexFunc(g.verdicts, func(v protocol.Verification) bool { return v.Interval == interval })
	if i < 0 {
		g.verdicts = append(g.verdicts, protocol.Verification{Interval: interval})
		// Newest first: interval ids sort as their times do.
		slices.SortFunc(g.verdicts, func(a, b protocol.Verification) int { return strings.Compare(b.Interval, a.Interval) })
		i = slices.IndexFunc(g.verdicts, func(v protocol.Verification) bool { return v.Interval == interval })
	}
	was := g.verdicts[i]
	if clearing != "" {
		g.verdicts[i].Clearing = clearing
	}
	if settlement != "" {
		g.verdicts[i].Settlement = settlement
	}
	changed := g.verdicts[i] != was
	if len(g.verdicts) > protocol.MaxVerified {
		g.verdicts = g.verdicts[:protocol.MaxVerified]
	}
	g.mu.Unlock()
	if changed {
		g.publishStatus()
	}
}

// Verdicts returns the gateway's verdicts on its latest intervals, newest
// first, as its status carries them.
func (g *Gateway) Verdicts() []protocol.Verification {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.verdicts)
}

// publishStatus publishes the gateway's retained status with its open
// alarms and its latest verdicts.
func (g *Gateway) publishStatus() {
	st := protocol.Status{Gateway: g.id, State: protocol.StateOnline, Version: g.opts.Version, Time: g.now(), Alarms: g.Alarms(), Verified: g.Verdicts()}
	if st.Version == "" {
		st.Version = "dev"
	}
	payload, err := st.Encode()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		if sp, ok := g.mq.(StatusPublisher); ok {
			err = sp.PublishStatus(ctx, payload)
		} else {
			err = g.mq.Publish(ctx, g.topics.Status(g.id), payload, true)
		}
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
	if iv := g.intervals[interval]; iv != nil {
		return iv.ownOrder
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
