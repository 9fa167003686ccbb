package config

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
)

// ConfigEnv is the environment variable cmd/p2pgrid may read the
// configuration file's path from. It is the one P2PGRID_ variable that is
// not an override, and Load and Parse ignore it.
const ConfigEnv = "P2PGRID_CONFIG"

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "P2PGRID_"

// MaxFileSize bounds the configuration file; a larger file is rejected
// before it is parsed.
const MaxFileSize = 1 << 20

// Defaults of the settings that have one. The market's k, fee and
// resolutions default to auction.DefaultRules.
const (
	DefaultDataDir       = "/var/lib/p2pgrid"
	DefaultHTTP          = "127.0.0.1:9410"
	DefaultKeepAlive     = 30 * time.Second
	DefaultPoll          = 5 * time.Second
	DefaultInterval      = 15 * time.Minute
	DefaultGateClosure   = 2 * time.Minute
	DefaultGrace         = 30 * time.Second
	DefaultTelemetryRate = 10 * time.Second
	DefaultCurrency      = "EUR"
	// DefaultMaxConnectionKW is market.max_connection_kw's default: more
	// than a 3 x 100 A connection at 230 V carries.
	DefaultMaxConnectionKW = 100
)

// Config is the gateway's configuration. Load and Parse return it filled
// in and valid; a Config built in code should start from Default and be
// checked with Validate.
type Config struct {
	// Gateway is this gateway's id, the participant name in its orders:
	// 1 to 64 of [A-Za-z0-9._:-]. Required.
	Gateway string `yaml:"gateway"`
	// Community is the id of the community the gateway trades in, with the
	// same rules. Required.
	Community string `yaml:"community"`
	// Clearer is the gateway's part in clearing the auction: none (""),
	// the primary clearer, or a standby that clears when the primary's
	// result has not arrived Market.Grace after gate closure.
	Clearer ClearerRole `yaml:"clearer"`
	// DataDir holds the gateway's key, ledger and state. Default
	// /var/lib/p2pgrid.
	DataDir string `yaml:"data_dir"`
	// HTTP is the listen address (host:port) of /metrics and /healthz.
	// Default 127.0.0.1:9410; "" switches the listener off.
	HTTP string `yaml:"http"`
	// Roster is the path of the community roster file (JSON). Required.
	// With OperatorKey set it holds a roster version signed by the
	// operator (protocol.RosterMsg), and the roster changes live; without
	// it, a plain roster (protocol.ParseRoster) that changes only with a
	// restart.
	Roster string `yaml:"roster"`
	// OperatorKey is the community operator's public key, "ed25519:" and
	// the 32 bytes in standard base64 (as protocol.PublicKeyString writes
	// it): the key that signs roster versions. "" (the default): the
	// roster file is a plain roster, fixed until a restart.
	OperatorKey string `yaml:"operator_key"`
	// ProfileDir is a directory of the user's own device profiles
	// (NAME.yaml, the schema of configs/devices), searched before the
	// built-in ones. "" (the default): built-in profiles only.
	ProfileDir string `yaml:"profile_dir"`

	MQTT      MQTT      `yaml:"mqtt"`
	Devices   []Device  `yaml:"devices"`
	Market    Market    `yaml:"market"`
	Policy    Policy    `yaml:"policy"`
	Telemetry Telemetry `yaml:"telemetry"`
	Influx    Influx    `yaml:"influx"`
	Log       Log       `yaml:"log"`
	Apps      Apps      `yaml:"apps"`

	// src remembers where each value came from, for error messages.
	src *source
}

// ClearerRole is a gateway's part in clearing the auction.
type ClearerRole string

// The clearer roles.
const (
	ClearerNone    ClearerRole = ""
	ClearerPrimary ClearerRole = "primary"
	ClearerStandby ClearerRole = "standby"
)

// MQTT is how the gateway reaches its community's broker.
type MQTT struct {
	// Broker is the broker's URL: tcp://host:1883 or mqtt://, TLS with
	// ssl://, tls:// or mqtts://host:8883, websockets with ws:// or wss://.
	// The port is required except for websockets; credentials do not go in
	// the URL. "" runs the embedded broker on loopback (a single-home
	// setup, or a demo), unless Brokers is set.
	Broker string `yaml:"broker"`
	// Brokers, in place of Broker, are the URLs of a community's several
	// brokers (bridged Mosquittos): the gateway connects to the first
	// that accepts, tried in order at every (re)connect, and so fails over
	// when its broker dies. Give Broker or Brokers, not both; all TLS URLs
	// or none, as the TLS files apply to every one; at most
	// mqtt.MaxBrokers.
	Brokers  []string `yaml:"brokers"`
	Username string   `yaml:"username"`
	// Password is the broker password. Load and Parse fill it from
	// PasswordFile when that is set (and then Password must not be).
	Password Secret `yaml:"password"`
	// PasswordFile is the path of a file holding the password; a trailing
	// newline is dropped.
	PasswordFile string `yaml:"password_file"`
	// CAFile is a PEM file of the CA certificates to trust for a TLS broker
	// ("" = the system's roots). CertFile and KeyFile are a client
	// certificate and its key (both or neither). They are read by the MQTT
	// client, not here.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientID is the MQTT client id. Default: the gateway id.
	ClientID string `yaml:"client_id"`
	// KeepAlive is the MQTT keepalive, whole seconds from 1s to 65535s.
	// Default 30s.
	KeepAlive time.Duration `yaml:"keepalive"`
}

// BrokerURLs returns the broker URLs the gateway connects to, in the order
// it tries them: Brokers, or Broker alone; nil for the embedded broker.
func (m MQTT) BrokerURLs() []string {
	switch {
	case len(m.Brokers) > 0:
		return m.Brokers
	case m.Broker != "":
		return []string{m.Broker}
	}
	return nil
}

// Secret is a string that does not show itself: it prints, logs and
// marshals as "[redacted]". Convert it with string() to use it.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps the secret out of %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalText keeps the secret out of JSON, YAML and slog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Device is one meter or inverter the gateway polls over Modbus.
type Device struct {
	// Name names the device in logs, metrics and errors: 1 to 64 of
	// [A-Za-z0-9._:-], unique. Required.
	Name string `yaml:"name"`
	// URL is the Modbus bus: tcp://host[:port], rtu:///dev/ttyUSB0?baud=9600
	// or rtutcp://host[:port] (see meter/bus). Required.
	URL string `yaml:"url"`
	// Unit is the Modbus unit id, 1 to 247. Required.
	Unit int `yaml:"unit"`
	// Profile is the device's register map: a profile name such as sdm630
	// (configs/devices), or sunspec to discover a SunSpec device. Required.
	Profile string `yaml:"profile"`
	// Role says what the device measures for the home: the grid connection
	// (one device at most) or a PV inverter. Required.
	Role DeviceRole `yaml:"role"`
	// Poll is how often the device is read. Default 5s; at least 100ms,
	// at most the market interval and at most half of the gate closure.
	Poll time.Duration `yaml:"poll"`
}

// DeviceRole says what a device measures for the home.
type DeviceRole string

// The device roles.
const (
	RoleGrid DeviceRole = "grid"
	RolePV   DeviceRole = "pv"
)

// Market is the community's market. Every gateway of a community must have
// the same market section: each one recomputes the clearing and checks it.
type Market struct {
	// Interval is the delivery interval, at least 1m and dividing a day
	// evenly. Default 15m.
	Interval time.Duration `yaml:"interval"`
	// GateClosure is how long before an interval's delivery starts its
	// order book closes, and how long after an interval's end its
	// settlement waits for the metered figures: at least MinGateClosure,
	// shorter than Interval. Default 2m.
	GateClosure time.Duration `yaml:"gate_closure"`
	// PriceFloor and PriceCap bound every order's price per kWh, typically
	// the feed-in and the retail tariff. nil: no bound.
	PriceFloor *decimal.Decimal `yaml:"price_floor"`
	PriceCap   *decimal.Decimal `yaml:"price_cap"`
	// K places the clearing price between the prices where supply and
	// demand meet: 0 favours buyers, 1 sellers. Default 0.5.
	K decimal.Decimal `yaml:"k"`
	// Fee is the network fee per kWh, paid by buyers. Default 0.
	Fee decimal.Decimal `yaml:"fee"`
	// QtyDecimals and PriceDecimals are the market's resolutions: decimals
	// of a kWh and of a price per kWh. Default 3 (1 Wh) and 6.
	QtyDecimals   int `yaml:"qty_decimals"`
	PriceDecimals int `yaml:"price_decimals"`
	// MinTradeKWh is the smallest order the gateway places, in kWh.
	// Default 0.1.
	MinTradeKWh decimal.Decimal `yaml:"min_trade_kwh"`
	// Grace is how long a standby clearer waits after gate closure for the
	// primary's result before it clears itself; shorter than Interval.
	// Default 30s.
	Grace time.Duration `yaml:"grace"`
	// MaxConnectionKW bounds the power of one home's grid connection, in
	// kW: metered figures beyond what it can carry in an interval are
	// refused, and the interval is settled without them. Default 100.
	MaxConnectionKW decimal.Decimal `yaml:"max_connection_kw"`
	// Currency is the ISO 4217 code of the currency prices are in (three
	// capital letters), shown in logs and statements. Default EUR.
	Currency string `yaml:"currency"`
	// PostDelivery is whether a clearer settles through the post-delivery
	// market (docs/settlement.md): after each interval the metered surplus
	// and deficit the auction did not cover are traded among the homes.
	// Default true. Every gateway verifies a settlement the way its policy
	// names, whatever this says; false holds the clearer back while the
	// community still has gateways older than the post-delivery market,
	// which cannot verify it.
	PostDelivery bool `yaml:"post_delivery"`
}

// Calendar is the market's timetable: interval ids, gate closure, grace
// and what follows from them.
func (m Market) Calendar() market.Calendar {
	return market.Calendar{Interval: m.Interval, GateClosure: m.GateClosure, Grace: m.Grace}
}

// Policy is the home's own trading policy.
type Policy struct {
	// MinSellPrice is the lowest price per kWh the home sells at, and
	// MaxBuyPrice the highest it buys at. nil: the market's floor or cap,
	// or no limit when the market has none.
	MinSellPrice *decimal.Decimal `yaml:"min_sell_price"`
	MaxBuyPrice  *decimal.Decimal `yaml:"max_buy_price"`
	// SafetyFactor is the fraction of the forecast surplus offered for
	// sale, 0 to 1. Default 0.8.
	SafetyFactor decimal.Decimal `yaml:"safety_factor"`
	// MaxOrderKWh caps the kWh of one order. nil: no cap of the home's own.
	MaxOrderKWh *decimal.Decimal `yaml:"max_order_kwh"`
	// BuySteps and SellSteps make the order a bid curve (a v2 order of
	// several steps, docs/mqtt.md) for a flexible load or a battery: the
	// forecast's kWh split into steps, each a share of it at its own limit
	// price. Buy steps by price falling, sell steps by price rising; shares
	// positive, adding up to 1; at most 8 steps. Empty (the default): one
	// order at MinSellPrice or MaxBuyPrice, a v1 order as before.
	BuySteps  []CurveStep `yaml:"buy_steps"`
	SellSteps []CurveStep `yaml:"sell_steps"`
}

// CurveStep is one step of a bid curve: Share of the forecast's kWh at
// limit Price per kWh.
type CurveStep struct {
	Share decimal.Decimal `yaml:"share"`
	Price decimal.Decimal `yaml:"price"`
}

// Influx is the InfluxDB time-series sink of clearings, trades,
// settlements and readings. The local ledger is kept either way and is the
// source of truth; the sink catches up from it after an outage.
type Influx struct {
	// URL of InfluxDB, http:// or https://; "" (the default): no sink.
	URL string `yaml:"url"`
	// Org is the InfluxDB 2.x organisation; empty for 1.8.
	Org string `yaml:"org"`
	// Bucket is the 2.x bucket, or for InfluxDB 1.8 "database/retention-policy"
	// ("database/" for the default policy). Required with a URL.
	Bucket string `yaml:"bucket"`
	// Token is the 2.x API token, or for 1.8 "user:password" (or empty).
	Token Secret `yaml:"token"`
}

// Telemetry is the gateway's publishing of live readings.
type Telemetry struct {
	// Enabled publishes live readings. Default true.
	Enabled bool `yaml:"enabled"`
	// Every is the shortest time between two telemetry messages of one
	// device (a rate limit). Default 10s.
	Every time.Duration `yaml:"every"`
}

// Apps is what the gateway publishes for the home's own phone app and
// Home Assistant (docs/mqtt.md, "Apps"): a retained summary of its trading
// and the same values one per topic, and Home Assistant's MQTT discovery
// configs for them. A gateway with a grid meter that settles publishes
// them; others have nothing to show.
type Apps struct {
	// Enabled publishes the app topics. Default true.
	Enabled bool `yaml:"enabled"`
	// TimeZone is the zone of "today" and "this month": an IANA name such
	// as Europe/Berlin, or Local (the default) for the system's zone.
	TimeZone string `yaml:"time_zone"`
	// HomeAssistant publishes Home Assistant's MQTT discovery configs for
	// the values (with Enabled). Default true; false deletes configs
	// published before.
	HomeAssistant bool `yaml:"home_assistant"`
	// DiscoveryPrefix is Home Assistant's discovery prefix. Default
	// homeassistant; another needs its own line in the broker's ACL.
	DiscoveryPrefix string `yaml:"discovery_prefix"`
}

// Defaults of the apps section.
const (
	DefaultTimeZone        = "Local"
	DefaultDiscoveryPrefix = "homeassistant"
)

// Default returns a configuration with every default filled in and the
// required settings (gateway, community, roster) empty.
func Default() *Config {
	r := auction.DefaultRules()
	return &Config{
		DataDir: DefaultDataDir,
		HTTP:    DefaultHTTP,
		MQTT:    MQTT{KeepAlive: DefaultKeepAlive},
		Market: Market{
			Interval:        DefaultInterval,
			GateClosure:     DefaultGateClosure,
			K:               r.K,
			Fee:             r.Fee,
			QtyDecimals:     r.QtyDecimals,
			PriceDecimals:   r.PriceDecimals,
			MinTradeKWh:     decimal.New(1, -1),
			Grace:           DefaultGrace,
			Currency:        DefaultCurrency,
			MaxConnectionKW: decimal.New(DefaultMaxConnectionKW, 0),
			PostDelivery:    true,
		},
		Policy:    Policy{SafetyFactor: decimal.New(8, -1)},
		Telemetry: Telemetry{Enabled: true, Every: DefaultTelemetryRate},
		Log:       DefaultLog(),
		Apps:      Apps{Enabled: true, TimeZone: DefaultTimeZone, HomeAssistant: true, DiscoveryPrefix: DefaultDiscoveryPrefix},
	}
}

// defaultDevice is a device entry before the file fills it in.
func defaultDevice() Device { return Device{Poll: DefaultPoll} }

// Load reads the configuration file at path and returns it as Parse does;
// errors name the file.
//
// env is the environment, as os.Environ returns it; only P2PGRID_ variables
// are looked at. Pass nil for no overrides.
func Load(path string, env []string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, env)
}

// readFile reads the configuration file, at most MaxFileSize+1 bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return data, nil
}

// LoadForCheck is Load for a caller that checks the configuration further
// and wants every problem at once (p2pgrid config check, which runs
// daemon.Check, Validate included): a file that decodes but does not
// validate is returned with Validate's errors, not nil. A file that cannot
// be read or decoded returns nil and the error, as Load does. Use Load to
// run a gateway.
func LoadForCheck(path string, env []string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, err := decode(path, data, env)
	if err != nil {
		return nil, err
	}
	return c, c.Validate()
}

// Parse builds the configuration from the YAML document data: the defaults,
// overlaid with data, overlaid with the P2PGRID_ variables of env (as
// os.Environ returns it; nil for none); then mqtt.password_file is read and
// the result validated. All the errors found are returned together
// (errors.Join), each an *Error naming the key and its line, or the
// environment variable.
func Parse(data []byte, env []string) (*Config, error) {
	return parse("", data, env)
}

func parse(file string, data []byte, env []string) (*Config, error) {
	c, err := decode(file, data, env)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode is parse without Validate.
func decode(file string, data []byte, env []string) (*Config, error) {
	c := Default()
	c.src = &source{file: file, origins: map[string]origin{}}
	if len(data) > MaxFileSize {
		return nil, c.src.errorf("", "the file is larger than %d bytes", MaxFileSize)
	}
	if err := decodeYAML(c, data); err != nil {
		return nil, err
	}
	if err := applyEnv(c, env); err != nil {
		return nil, err
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = c.Gateway
	}
	if err := c.readPasswordFile(); err != nil {
		return nil, err
	}
	return c, nil
}

// maxPasswordSize bounds the password file.
const maxPasswordSize = 4096

func (c *Config) readPasswordFile() error {
	name := c.MQTT.PasswordFile
	if name == "" {
		return nil
	}
	const key = "mqtt.password_file"
	if c.MQTT.Password != "" {
		return c.src.errorf(key, "set together with mqtt.password; give the password one way only")
	}
	// A FIFO or a device would block or never end: only a regular file.
	fi, err := os.Stat(name)
	if err != nil {
		return c.src.errorf(key, "%w", err)
	}
	if !fi.Mode().IsRegular() {
		return c.src.errorf(key, "%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return c.src.errorf(key, "%w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordSize+1))
	if err != nil {
		return c.src.errorf(key, "%s: %w", name, err)
	}
	if len(b) > maxPasswordSize {
		return c.src.errorf(key, "%s is longer than %d bytes", name, maxPasswordSize)
	}
	s := string(b)
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
	}
	if s == "" {
		return c.src.errorf(key, "%s is empty", name)
	}
	c.MQTT.Password = Secret(s)
	return nil
}

// AuctionRules returns the market section as auction rules:
// auction.DefaultRules with k, fee, the resolutions and the price floor and
// cap of the market section. The floor and cap are copies.
func (c *Config) AuctionRules() auction.Rules {
	r := auction.DefaultRules()
	m := c.Market
	r.QtyDecimals = m.QtyDecimals
	r.PriceDecimals = m.PriceDecimals
	r.K = m.K
	r.Fee = m.Fee
	r.PriceFloor = copyDecimal(m.PriceFloor)
	r.PriceCap = copyDecimal(m.PriceCap)
	return r
}

func copyDecimal(d *decimal.Decimal) *decimal.Decimal {
	if d == nil {
		return nil
	}
	v := *d
	return &v
}
