package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/homeassistant"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/gateway/summary"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/profile"
)

// Limits that Validate enforces.
const (
	MinInterval = time.Minute
	MinPoll     = 100 * time.Millisecond
	// MinGateClosure is the shortest market.gate_closure. An interval is
	// settled gate_closure after it ends, from the metered figures the
	// gateways publish at their first poll after the end: with no time
	// between the two, settlement runs before any figure has arrived and
	// every participant is settled as missing. 10s covers the loop's tick
	// (1s), the publish and its delivery through the broker, and clocks
	// a few seconds apart; it is the same on every gateway, as the market
	// section must be. Each gateway also needs PollsPerGateClosure polls
	// of its slowest device to fit in it (see devices).
	MinGateClosure = 10 * time.Second
	// PollsPerGateClosure is how many polls of each of a gateway's devices
	// must fit in market.gate_closure: the figures go out at the first
	// poll after an interval ends, and a read that fails then is tried
	// again at the next one.
	PollsPerGateClosure = 2
	MaxUnit             = 247
	// MaxKeepAlive is the largest keepalive MQTT can carry (16 bits of
	// seconds).
	MaxKeepAlive = 65535 * time.Second
)

// Validate checks every setting and the rules between them, and returns
// every problem found (Join of *Error: one per line, in file order), or nil.
// A Config from Load or Parse has passed it; call it on a Config built or
// changed in code. It looks at nothing outside the Config: the gateway's
// whole check at start, files and roster included, is daemon.Check.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.top()
	v.mqtt()
	v.market() // before devices and policy, which depend on it
	if len(c.Devices) > MaxDevices {
		v.fail("devices", "%d entries (at most %d)", len(c.Devices), MaxDevices)
	} else {
		v.devices()
	}
	v.policy()
	if c.Influx.URL != "" {
		if u, err := url.Parse(c.Influx.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("influx.url", "%q is not an http:// or https:// URL", c.Influx.URL)
		}
		if c.Influx.Bucket == "" {
			v.fail("influx.bucket", "is required with influx.url (InfluxDB 1.8: database/retention-policy)")
		}
	}
	if c.Telemetry.Every < protocol.TelemetryMinPeriod {
		v.fail("telemetry.every", "%s is shorter than %s, the protocol's limit", c.Telemetry.Every, protocol.TelemetryMinPeriod)
	}
	v.log()
	v.apps()
	return Join(v.errs...)
}

// apps checks the apps section with the checks of the packages that use
// it: the zone as gateway/summary loads it, the prefix as
// gateway/homeassistant takes it.
func (v *validator) apps() {
	a := v.c.Apps
	if _, err := summary.LoadZone(a.TimeZone); err != nil {
		v.fail("apps.time_zone", "%v", err)
	}
	if err := homeassistant.CheckPrefix(a.DiscoveryPrefix); err != nil {
		v.fail("apps.discovery_prefix", "%v", err)
	}
}

type validator struct {
	c    *Config
	errs []error
	// rulesOK says the market's resolutions, floor and cap are valid, so
	// prices and kWh elsewhere can be checked against them.
	rulesOK bool
}

func (v *validator) fail(key, format string, args ...any) {
	v.add(v.c.src.errorf(key, format, args...))
}

// failIn reports an error about key, a key that is missing from the
// section parent, at parent's line.
func (v *validator) failIn(key, parent, format string, args ...any) {
	e := v.c.src.errorf(parent, format, args...)
	e.Key = key
	v.add(e)
}

func (v *validator) add(e *Error) {
	switch {
	case len(v.errs) < maxErrors:
		v.errs = append(v.errs, e)
	case len(v.errs) == maxErrors:
		more := &Error{Err: errTooMany}
		if v.c.src != nil {
			more.File = v.c.src.file
		}
		v.errs = append(v.errs, more)
	}
}

// blame returns the first of keys that the file or the environment set,
// or keys[0]: a rule between two settings is reported at the one the
// operator wrote, not at a default.
func (v *validator) blame(keys ...string) string {
	for _, k := range keys {
		if v.isSet(k) {
			return k
		}
	}
	return keys[0]
}

// isSet reports whether the file or the environment set key.
func (v *validator) isSet(key string) bool {
	if v.c.src == nil {
		return false
	}
	_, ok := v.c.src.origins[key]
	return ok
}

func (v *validator) name(key, parent, val, what string) {
	if val == "" {
		v.failIn(key, parent, "missing: %s", what)
		return
	}
	if err := auction.CheckName(val); err != nil {
		v.fail(key, "%q: %v", val, err)
	}
}

func (v *validator) top() {
	c := v.c
	v.name("gateway", "gateway", c.Gateway, "this gateway's id, 1 to 64 of [A-Za-z0-9._:-]")
	v.name("community", "community", c.Community, "the community's id, 1 to 64 of [A-Za-z0-9._:-]")
	switch c.Clearer {
	case ClearerNone, ClearerPrimary, ClearerStandby:
	default:
		v.fail("clearer", "%q is not a clearer role (want \"\", primary or standby)", c.Clearer)
	}
	if c.DataDir == "" {
		v.fail("data_dir", "empty (the default is %s)", DefaultDataDir)
	}
	if c.HTTP != "" {
		if err := checkListen(c.HTTP); err != nil {
			v.fail("http", "%w", err)
		}
	}
	if c.Roster == "" {
		v.fail("roster", "missing: the path of the community roster file (JSON)")
	}
	if c.OperatorKey != "" {
		if _, err := protocol.ParsePublicKey(c.OperatorKey); err != nil {
			v.fail("operator_key", "%w", err)
		}
	}
}

func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (as in 127.0.0.1:9410; \"\" switches the listener off)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

func (v *validator) mqtt() {
	m := v.c.MQTT
	tls := false
	if m.Broker != "" {
		var err error
		if tls, err = mqtt.CheckBroker(m.Broker); err != nil {
			v.fail("mqtt.broker", "%w", err)
			tls = true // do not pile TLS errors on a broken URL
		}
	}
	first := "mqtt.broker" // the key of the first broker URL
	switch {
	case m.Broker != "" && len(m.Brokers) > 0:
		v.fail(v.blame("mqtt.brokers", "mqtt.broker"), "mqtt.broker and mqtt.brokers are both set: give mqtt.broker for one broker or mqtt.brokers for several, not both")
	case len(m.Brokers) > mqtt.MaxBrokers:
		v.fail("mqtt.brokers", "%d URLs (at most %d)", len(m.Brokers), mqtt.MaxBrokers)
	case len(m.Brokers) > 0:
		first = "mqtt.brokers[0]"
		valid := -1 // the first valid URL, the one the others are compared with
		for i, b := range m.Brokers {
			key := fmt.Sprintf("mqtt.brokers[%d]", i)
			isTLS, err := mqtt.CheckBroker(b)
			switch {
			case err != nil:
				v.fail(key, "%w", err)
				tls = true
				continue
			case valid < 0:
				valid, tls = i, isTLS
			default:
				if err := mqtt.SameFamily(m.Brokers[valid], b); err != nil {
					v.fail(key, "%w", err)
					tls = true
				}
			}
			for j := range i {
				if m.Brokers[j] == b {
					v.fail(key, "%q is also mqtt.brokers[%d]", b, j)
					break
				}
			}
		}
	}
	for _, f := range []struct{ key, val string }{
		{"mqtt.ca_file", m.CAFile}, {"mqtt.cert_file", m.CertFile}, {"mqtt.key_file", m.KeyFile},
	} {
		if f.val == "" || tls {
			continue
		}
		if urls := m.BrokerURLs(); len(urls) == 0 {
			v.fail(f.key, "set, but mqtt.broker is empty (the embedded broker, which has no TLS)")
		} else {
			v.fail(f.key, "set, but %s %q is not a TLS URL (ssl://, tls://, mqtts:// or wss://)", first, urls[0])
		}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		if m.CertFile == "" {
			v.fail("mqtt.key_file", "set without mqtt.cert_file: a client certificate needs both")
		} else {
			v.fail("mqtt.cert_file", "set without mqtt.key_file: a client certificate needs both")
		}
	}
	if m.ClientID == "" {
		v.fail("mqtt.client_id", "empty (Load and Parse default it to the gateway id)")
	}
	switch {
	case m.KeepAlive < time.Second || m.KeepAlive > MaxKeepAlive:
		v.fail("mqtt.keepalive", "%s is outside 1s..%s", m.KeepAlive, MaxKeepAlive)
	case m.KeepAlive%time.Second != 0:
		v.fail("mqtt.keepalive", "%s is not a whole number of seconds", m.KeepAlive)
	}
}

func (v *validator) devices() {
	names := map[string]int{}
	type busUnit struct {
		url  string
		unit int
	}
	buses := map[busUnit]int{}
	grid := -1
	interval := v.c.Market.Interval
	gate := v.c.Market.GateClosure
	gateOK := gate >= MinGateClosure && gate < interval
	for i, d := range v.c.Devices {
		entry := fmt.Sprintf("devices[%d]", i)
		key := func(field string) string { return entry + "." + field }
		v.name(key("name"), entry, d.Name, "the device's name, 1 to 64 of [A-Za-z0-9._:-]")
		if j, dup := names[d.Name]; dup && d.Name != "" {
			v.fail(key("name"), "%q is also the name of devices[%d]", d.Name, j)
		} else {
			names[d.Name] = i
		}
		if d.URL == "" {
			v.failIn(key("url"), entry, "missing: the Modbus bus, as in tcp://192.168.1.50:502 or rtu:///dev/ttyUSB0")
		} else if err := bus.CheckURL(d.URL); err != nil {
			v.fail(key("url"), "%w", err)
		}
		switch {
		case d.Unit == 0 && !v.isSet(key("unit")):
			v.failIn(key("unit"), entry, "missing: the Modbus unit id, 1 to %d", MaxUnit)
		case d.Unit < 1 || d.Unit > MaxUnit:
			v.fail(key("unit"), "%d is outside 1..%d", d.Unit, MaxUnit)
		default:
			b := busUnit{d.URL, d.Unit}
			if j, dup := buses[b]; dup {
				v.fail(key("unit"), "devices[%d] has the same url and unit", j)
			} else {
				buses[b] = i
			}
		}
		if d.Profile == "" {
			v.failIn(key("profile"), entry, "missing: a device profile such as sdm630, or sunspec")
		} else if !profile.ValidName(d.Profile) {
			v.fail(key("profile"), "%q is not a profile name (lower-case letters, digits, - and _, as in sdm630)", d.Profile)
		}
		switch d.Role {
		case RoleGrid:
			if grid >= 0 {
				v.fail(key("role"), "devices[%d] is already the grid meter; a home has one", grid)
			} else {
				grid = i
			}
		case RolePV:
		case "":
			v.failIn(key("role"), entry, "missing: grid or pv")
		default:
			v.fail(key("role"), "%q is not a device role (want grid or pv)", d.Role)
		}
		switch {
		case d.Poll < MinPoll:
			v.fail(key("poll"), "%s is shorter than %s", d.Poll, MinPoll)
		case interval > 0 && d.Poll > interval:
			v.fail(v.blame(key("poll"), "market.interval"), "%s is longer than market.interval %s", d.Poll, interval)
		case gateOK && d.Poll*PollsPerGateClosure > gate:
			v.fail(v.blame(key("poll"), "market.gate_closure"),
				"%s %s is more than 1/%d of market.gate_closure %s: this gateway publishes its metered figures at its first poll after an interval ends (and retries at the next), and the interval is settled market.gate_closure after its end, so its figures could arrive too late (poll at most %s, or a longer gate_closure on every gateway)",
				key("poll"), d.Poll, PollsPerGateClosure, gate, gate/PollsPerGateClosure)
		}
	}
}

func (v *validator) market() {
	m := v.c.Market
	const day = 24 * time.Hour
	switch {
	case m.Interval < MinInterval:
		v.fail("market.interval", "%s is shorter than %s", m.Interval, MinInterval)
	case m.Interval%time.Minute != 0:
		v.fail("market.interval", "%s is not a whole number of minutes (interval ids name the minute)", m.Interval)
	case day%m.Interval != 0:
		v.fail("market.interval", "%s does not divide a day evenly (as 5m, 15m, 30m and 1h do)", m.Interval)
	}
	switch {
	case m.GateClosure < 0:
		v.fail("market.gate_closure", "%s is negative", m.GateClosure)
	case m.GateClosure < MinGateClosure:
		v.fail("market.gate_closure", "%s is shorter than %s: an interval is settled gate_closure after it ends, and the gateways' metered figures, sent at their first poll after the end, must have arrived by then", m.GateClosure, MinGateClosure)
	case m.GateClosure >= m.Interval:
		v.fail(v.blame("market.gate_closure", "market.interval"), "market.gate_closure %s is not shorter than market.interval %s", m.GateClosure, m.Interval)
	}
	switch {
	case m.Grace <= 0:
		v.fail("market.grace", "%s is not positive", m.Grace)
	case m.Grace >= m.Interval:
		v.fail(v.blame("market.grace", "market.interval"), "market.grace %s is not shorter than market.interval %s", m.Grace, m.Interval)
	}
	if !m.MaxConnectionKW.IsPositive() || m.MaxConnectionKW.GreaterThan(decimal.New(1, 6)) {
		v.fail("market.max_connection_kw", "%s is not between 0 and 1000000 kW", m.MaxConnectionKW)
	}
	if !ValidCurrency(m.Currency) {
		v.fail("market.currency", "%q is not an ISO 4217 currency code (three capital letters, as EUR, GBP or CHF)", m.Currency)
	}
	v.rulesOK = v.auctionRules()
	if m.MinTradeKWh.IsNegative() {
		v.fail("market.min_trade_kwh", "%s is negative", m.MinTradeKWh)
	} else if v.rulesOK && !fits(m.MinTradeKWh, m.QtyDecimals) {
		v.fail("market.min_trade_kwh", "%s has more decimals than market.qty_decimals (%d)", m.MinTradeKWh, m.QtyDecimals)
	}
}

// auctionRules checks the market section as auction rules, one rule at a
// time on top of the valid ones, so that each error names the key that is
// wrong; then all of them together. It reports whether they make a market.
func (v *validator) auctionRules() bool {
	full := v.c.AuctionRules()
	base := auction.DefaultRules()
	ok := true
	// step checks base with one more rule set, and keeps it when keep is
	// true and it is valid.
	step := func(key, rule string, keep bool, set func(r *auction.Rules)) {
		r := base
		set(&r)
		if _, err := auction.NewMarket(r); err != nil {
			v.fail(key, "%w", trimRule(err, rule))
			ok = false
		} else if keep {
			base = r
		}
	}
	// The resolutions first: every price and kWh is checked against them.
	step("market.qty_decimals", "qty_decimals", true, func(r *auction.Rules) { r.QtyDecimals = full.QtyDecimals })
	step("market.price_decimals", "price_decimals", true, func(r *auction.Rules) { r.PriceDecimals = full.PriceDecimals })
	if !ok {
		return false
	}
	step("market.k", "k", false, func(r *auction.Rules) { r.K = full.K })
	step("market.fee", "fee", false, func(r *auction.Rules) { r.Fee = full.Fee })
	for _, p := range []struct {
		key, rule string
		price     *decimal.Decimal
		set       func(r *auction.Rules)
	}{
		{"market.price_floor", "price_floor", full.PriceFloor, func(r *auction.Rules) { r.PriceFloor = full.PriceFloor }},
		{"market.price_cap", "price_cap", full.PriceCap, func(r *auction.Rules) { r.PriceCap = full.PriceCap }},
	} {
		if p.price != nil && p.price.Abs().GreaterThan(base.MaxAbsPrice) {
			v.fail(p.key, "%s is beyond the largest price, %s", p.price, base.MaxAbsPrice)
			ok = false
			continue
		}
		step(p.key, p.rule, false, p.set)
	}
	if !ok {
		return false
	}
	if full.PriceFloor != nil && full.PriceCap != nil && full.PriceFloor.GreaterThan(*full.PriceCap) {
		v.fail(v.blame("market.price_floor", "market.price_cap"), "market.price_floor %s is above market.price_cap %s", full.PriceFloor, full.PriceCap)
		return false
	}
	if _, err := auction.NewMarket(full); err != nil { // anything the steps missed
		v.fail("market", "%w", err)
		return false
	}
	return true
}

// ruleError is an auction rule error without its "market rule x: " prefix,
// which the key in front of it already says.
type ruleError struct {
	msg string
	err error
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.err }

func trimRule(err error, rule string) error {
	msg, ok := strings.CutPrefix(err.Error(), "market rule "+rule+": ")
	if !ok {
		return err
	}
	return &ruleError{msg: msg, err: err}
}

// fits reports whether d is a whole number of 10^-decimals.
func fits(d decimal.Decimal, decimals int) bool {
	return d.Shift(int32(decimals)).IsInteger()
}

func (v *validator) policy() {
	p := v.c.Policy
	m := v.c.Market
	rules := auction.DefaultRules()
	for _, f := range []struct {
		key   string
		price *decimal.Decimal
	}{
		{"policy.min_sell_price", p.MinSellPrice},
		{"policy.max_buy_price", p.MaxBuyPrice},
	} {
		if f.price != nil {
			v.price(f.key, *f.price)
		}
	}
	v.curve("policy.buy_steps", p.BuySteps, -1, p.MaxBuyPrice, "policy.max_buy_price")
	v.curve("policy.sell_steps", p.SellSteps, +1, p.MinSellPrice, "policy.min_sell_price")
	one := decimal.NewFromInt(1)
	if p.SafetyFactor.IsNegative() || p.SafetyFactor.GreaterThan(one) {
		v.fail("policy.safety_factor", "%s is outside [0, 1]", p.SafetyFactor)
	}
	if q := p.MaxOrderKWh; q != nil {
		switch {
		case !q.IsPositive():
			v.fail("policy.max_order_kwh", "%s is not positive", q)
		case q.GreaterThan(rules.MaxOrderKWh):
			v.fail("policy.max_order_kwh", "%s is above the market's limit of %s kWh per order", q, rules.MaxOrderKWh)
		case !v.rulesOK:
		case !fits(*q, m.QtyDecimals):
			v.fail("policy.max_order_kwh", "%s has more decimals than market.qty_decimals (%d)", q, m.QtyDecimals)
		case q.LessThan(m.MinTradeKWh):
			v.fail(v.blame("policy.max_order_kwh", "market.min_trade_kwh"), "policy.max_order_kwh %s is below market.min_trade_kwh %s", q, m.MinTradeKWh)
		}
	}
}

// price checks the price d of the policy under key against the market's
// resolution and limits, once they are known to be valid.
func (v *validator) price(key string, d decimal.Decimal) {
	m := v.c.Market
	if !v.rulesOK {
		return
	}
	switch {
	case !fits(d, m.PriceDecimals):
		v.fail(key, "%s has more decimals than market.price_decimals (%d)", d, m.PriceDecimals)
	case d.Abs().GreaterThan(auction.DefaultRules().MaxAbsPrice):
		v.fail(key, "%s is beyond the largest price, %s", d, auction.DefaultRules().MaxAbsPrice)
	case m.PriceFloor != nil && d.LessThan(*m.PriceFloor):
		v.fail(v.blame(key, "market.price_floor"), "%s %s is below market.price_floor %s", key, d, m.PriceFloor)
	case m.PriceCap != nil && d.GreaterThan(*m.PriceCap):
		v.fail(v.blame(key, "market.price_cap"), "%s %s is above market.price_cap %s", key, d, m.PriceCap)
	}
}

// curve checks a bid curve of the policy under key: at most protocol.MaxSteps
// steps, shares positive and adding up to 1, prices strictly rising (dir
// +1) or falling (-1), each a valid price of the market on the side of the
// policy's own limit (limitKey), if set.
func (v *validator) curve(key string, steps []CurveStep, dir int, limit *decimal.Decimal, limitKey string) {
	if len(steps) == 0 {
		return
	}
	if len(steps) > protocol.MaxSteps {
		v.fail(key, "%d steps (at most %d)", len(steps), protocol.MaxSteps)
		return
	}
	sum := decimal.Zero
	for i, st := range steps {
		k := fmt.Sprintf("%s[%d]", key, i)
		if !st.Share.IsPositive() {
			v.fail(k+".share", "%s is not positive", st.Share)
		}
		sum = sum.Add(st.Share)
		d := st.Price
		switch {
		case i > 0 && d.Cmp(steps[i-1].Price) != dir:
			v.fail(k+".price", "%s after %s: the prices of %s must %s strictly", d, steps[i-1].Price, key, map[int]string{1: "rise", -1: "fall"}[dir])
		case limit != nil && d.Cmp(*limit) == -dir:
			v.fail(v.blame(k+".price", limitKey), "%s is beyond %s %s", d, limitKey, limit)
		default:
			v.price(k+".price", d)
		}
	}
	if !sum.Equal(decimal.NewFromInt(1)) {
		v.fail(key, "the shares add up to %s, not 1", sum)
	}
}

// ValidCurrency reports whether code has the form of an ISO 4217 code:
// three capital letters.
func ValidCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	for _, r := range code {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
