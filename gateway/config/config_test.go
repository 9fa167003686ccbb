package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/internal/golden"
)

const examplePath = "../../configs/gateway.example.yaml"

// minimal is the smallest valid configuration: the required keys only.
const minimal = "gateway: g1\ncommunity: c1\nroster: /etc/p2pgrid/roster.json\n"

// dump flattens c into key = value, with decimals and durations in their
// String form, optional values that are not set as "<nil>", and the
// password in clear.
func dump(c *Config) map[string]string {
	m := map[string]string{}
	walkScalars(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		switch {
		case v.Kind() == reflect.String:
			m[key] = v.String()
		case v.Type() == decimalPtrType && v.IsNil():
			m[key] = "<nil>"
		default:
			m[key] = fmt.Sprint(v.Interface())
		}
	})
	return m
}

// diffDump reports every key whose value in got differs from want, and
// every key one has and the other lacks.
func diffDump(t *testing.T, got, want map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing, want %q", k, want[k])
		} else if g != want[k] {
			t.Errorf("%s = %q, want %q", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %q: not expected", k, got[k])
		}
	}
}

func loadExample(t *testing.T) *Config {
	t.Helper()
	c, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	return c
}

func TestExample(t *testing.T) {
	c := loadExample(t)
	diffDump(t, dump(c), map[string]string{
		"gateway":                  "home-17",
		"community":                "lindenweg",
		"clearer":                  "",
		"data_dir":                 "/var/lib/p2pgrid",
		"http":                     "127.0.0.1:9410",
		"roster":                   "/etc/p2pgrid/roster.json",
		"operator_key":             "",
		"profile_dir":              "/etc/p2pgrid/devices",
		"mqtt.broker":              "mqtts://broker.lindenweg.example:8883",
		"mqtt.username":            "home-17",
		"mqtt.password":            "",
		"mqtt.password_file":       "",
		"mqtt.ca_file":             "/etc/p2pgrid/lindenweg-ca.pem",
		"mqtt.cert_file":           "",
		"mqtt.key_file":            "",
		"mqtt.client_id":           "home-17",
		"mqtt.keepalive":           "30s",
		"devices[0].name":          "grid",
		"devices[0].url":           "rtu:///dev/ttyUSB0?baud=9600&parity=N",
		"devices[0].unit":          "1",
		"devices[0].profile":       "sdm630",
		"devices[0].role":          "grid",
		"devices[0].poll":          "5s",
		"devices[1].name":          "roof",
		"devices[1].url":           "tcp://192.168.1.50:502",
		"devices[1].unit":          "126",
		"devices[1].profile":       "sunspec",
		"devices[1].role":          "pv",
		"devices[1].poll":          "10s",
		"market.interval":          "15m0s",
		"market.gate_closure":      "2m0s",
		"market.price_floor":       "0.08",
		"market.price_cap":         "0.32",
		"market.k":                 "0.5",
		"market.fee":               "0",
		"market.qty_decimals":      "3",
		"market.price_decimals":    "6",
		"market.min_trade_kwh":     "0.1",
		"market.grace":             "30s",
		"market.currency":          "EUR",
		"market.post_delivery":     "true",
		"market.max_connection_kw": "100",
		"policy.min_sell_price":    "0.1",
		"policy.max_buy_price":     "0.28",
		"policy.safety_factor":     "0.8",
		"policy.max_order_kwh":     "5",
		"telemetry.enabled":        "true",
		"telemetry.every":          "10s",
		"influx.url":               "",
		"influx.org":               "",
		"influx.bucket":            "",
		"influx.token":             "",
		"log.level":                "info",
		"log.format":               "text",
		"apps.enabled":             "true",
		"apps.time_zone":           "Local",
		"apps.home_assistant":      "true",
		"apps.discovery_prefix":    "homeassistant",
	})
}

// TestExampleIsComplete checks that the example sets every key there is,
// so that it documents every key.
func TestExampleIsComplete(t *testing.T) {
	c := loadExample(t)
	n := 0
	walkScalars(reflect.ValueOf(c).Elem(), "", func(key string, _ reflect.Value) {
		n++
		if c.src.origins[key].line == 0 {
			t.Errorf("the example config does not set %s", key)
		}
	})
	if n < 40 {
		t.Errorf("only %d keys walked; the walk is broken", n)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal+"devices:\n  - {name: m, url: tcp://m, unit: 1, profile: sdm630, role: grid}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	diffDump(t, dump(c), map[string]string{
		"gateway":                  "g1",
		"community":                "c1",
		"clearer":                  "",
		"data_dir":                 "/var/lib/p2pgrid",
		"http":                     "127.0.0.1:9410",
		"roster":                   "/etc/p2pgrid/roster.json",
		"operator_key":             "",
		"profile_dir":              "",
		"mqtt.broker":              "",
		"mqtt.username":            "",
		"mqtt.password":            "",
		"mqtt.password_file":       "",
		"mqtt.ca_file":             "",
		"mqtt.cert_file":           "",
		"mqtt.key_file":            "",
		"mqtt.client_id":           "g1",
		"mqtt.keepalive":           "30s",
		"devices[0].name":          "m",
		"devices[0].url":           "tcp://m",
		"devices[0].unit":          "1",
		"devices[0].profile":       "sdm630",
		"devices[0].role":          "grid",
		"devices[0].poll":          "5s",
		"market.interval":          "15m0s",
		"market.gate_closure":      "2m0s",
		"market.price_floor":       "<nil>",
		"market.price_cap":         "<nil>",
		"market.k":                 "0.5",
		"market.fee":               "0",
		"market.qty_decimals":      "3",
		"market.price_decimals":    "6",
		"market.min_trade_kwh":     "0.1",
		"market.grace":             "30s",
		"market.currency":          "EUR",
		"market.post_delivery":     "true",
		"market.max_connection_kw": "100",
		"policy.min_sell_price":    "<nil>",
		"policy.max_buy_price":     "<nil>",
		"policy.safety_factor":     "0.8",
		"policy.max_order_kwh":     "<nil>",
		"telemetry.enabled":        "true",
		"telemetry.every":          "10s",
		"influx.url":               "",
		"influx.org":               "",
		"influx.bucket":            "",
		"influx.token":             "",
		"log.level":                "info",
		"log.format":               "text",
		"apps.enabled":             "true",
		"apps.time_zone":           "Local",
		"apps.home_assistant":      "true",
		"apps.discovery_prefix":    "homeassistant",
	})
	// Default() is what Parse starts from, and Validate wants the required
	// keys of it.
	if err := Default().Validate(); err == nil {
		t.Error("Default().Validate() = nil, want errors for the required keys")
	} else {
		for _, key := range []string{"gateway", "community", "roster", "mqtt.client_id"} {
			if !strings.Contains(err.Error(), "config: "+key+": ") {
				t.Errorf("Default().Validate() does not name %s: %v", key, err)
			}
		}
	}
}

// TestNullKeepsDefault checks that an empty value keeps the default and
// that "" clears a string or an optional decimal.
func TestNullKeepsDefault(t *testing.T) {
	c, err := Parse([]byte(minimal+"http:\ndata_dir: ~\nmarket:\n  interval:\n  price_cap: \"\"\ntelemetry:\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != DefaultHTTP || c.DataDir != DefaultDataDir || c.Market.Interval != DefaultInterval || c.Market.PriceCap != nil {
		t.Errorf("got http %q, data_dir %q, interval %s, price_cap %v; want the defaults", c.HTTP, c.DataDir, c.Market.Interval, c.Market.PriceCap)
	}
	c, err = Parse([]byte(minimal+"http: \"\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != "" {
		t.Errorf(`http: "" gave %q, want "" (listener off)`, c.HTTP)
	}
}

func TestExactDecimals(t *testing.T) {
	tests := []struct {
		key, text string
		want      string // the exact value, as decimal text
		get       func(*Config) decimal.Decimal
	}{
		{"k", "0.1", "0.1", func(c *Config) decimal.Decimal { return c.Market.K }},
		{"k", `"0.1"`, "0.1", func(c *Config) decimal.Decimal { return c.Market.K }},
		{"k", "'0.1'", "0.1", func(c *Config) decimal.Decimal { return c.Market.K }},
		// 30 significant digits: float64 keeps 17 of them.
		{"k", "0.123456789012345678901234567891", "0.123456789012345678901234567891", func(c *Config) decimal.Decimal { return c.Market.K }},
		{"fee", "1e-3", "0.001", func(c *Config) decimal.Decimal { return c.Market.Fee }},
		{"fee", ".25", "0.25", func(c *Config) decimal.Decimal { return c.Market.Fee }},
		{"fee", "+1.", "1", func(c *Config) decimal.Decimal { return c.Market.Fee }},
		{"min_trade_kwh", "0.3", "0.3", func(c *Config) decimal.Decimal { return c.Market.MinTradeKWh }},
		{"price_cap", "999999.999999", "999999.999999", func(c *Config) decimal.Decimal { return *c.Market.PriceCap }},
		{"price_floor", "-0.05", "-0.05", func(c *Config) decimal.Decimal { return *c.Market.PriceFloor }},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.text, func(t *testing.T) {
			c, err := Parse([]byte(minimal+"market:\n  "+tt.key+": "+tt.text+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.get(c)
			want := decimal.RequireFromString(tt.want)
			if !got.Equal(want) {
				t.Errorf("%s: %s = %s, want exactly %s", tt.key, tt.text, got, want)
			}
			if got.String() != tt.want {
				t.Errorf("%s: %s prints as %s, want %s", tt.key, tt.text, got, tt.want)
			}
		})
	}
	// The 30-digit value really would lose digits through float64, so the
	// case above can fail.
	long := decimal.RequireFromString("0.123456789012345678901234567891")
	if f, _ := long.Float64(); decimal.NewFromFloat(f).Equal(long) {
		t.Fatal("float64 keeps 30 digits: the exactness case proves nothing")
	}
	c, err := Parse([]byte(minimal+"market:\n  k: 0.123456789012345678901234567891\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.AuctionRules().K.Equal(long) {
		t.Errorf("AuctionRules().K = %s, want %s", c.AuctionRules().K, long)
	}
}

func TestAuctionRulesGolden(t *testing.T) {
	c := loadExample(t)
	r := c.AuctionRules()
	m, err := auction.NewMarket(r)
	if err != nil {
		t.Fatalf("the example's market: %v", err)
	}
	got, err := json.MarshalIndent(m.Rules(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	goldenPath := filepath.Join("testdata", "example_rules.golden.json")
	golden.Check(t, goldenPath, got)
}

func TestAuctionRules(t *testing.T) {
	dec := decimal.RequireFromString
	ptr := func(s string) *decimal.Decimal { d := dec(s); return &d }
	base := auction.DefaultRules()
	tests := []struct {
		name   string
		market string
		want   auction.Rules
	}{
		{"defaults", "", base},
		{"every key", "  k: 0.25\n  fee: 0.01\n  qty_decimals: 2\n  price_decimals: 4\n  price_floor: 0.05\n  price_cap: 0.4\n",
			auction.Rules{QtyDecimals: 2, PriceDecimals: 4, K: dec("0.25"), Fee: dec("0.01"),
				PriceFloor: ptr("0.05"), PriceCap: ptr("0.4"), MaxOrderKWh: base.MaxOrderKWh, MaxAbsPrice: base.MaxAbsPrice}},
		{"negative floor", "  price_floor: -0.1\n",
			auction.Rules{QtyDecimals: 3, PriceDecimals: 6, K: base.K, Fee: base.Fee,
				PriceFloor: ptr("-0.1"), MaxOrderKWh: base.MaxOrderKWh, MaxAbsPrice: base.MaxAbsPrice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+"market:\n"+tt.market), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(c.AuctionRules())
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Errorf("AuctionRules() = %s\nwant %s", got, want)
			}
			if _, err := auction.NewMarket(c.AuctionRules()); err != nil {
				t.Errorf("NewMarket(AuctionRules()): %v", err)
			}
		})
	}
	// The floor and cap are copies: changing them leaves the config alone.
	c, err := Parse([]byte(minimal+"market:\n  price_floor: 0.05\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.AuctionRules()
	*r.PriceFloor = dec("7")
	if !c.Market.PriceFloor.Equal(dec("0.05")) {
		t.Errorf("changing AuctionRules().PriceFloor changed the config's floor to %s", c.Market.PriceFloor)
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		yaml    string
		want    string // the password, or
		wantErr string // a line of the error
	}{
		{"newline dropped", "mqtt:\n  password_file: " + write("pw", "s3cret\n"), "s3cret", ""},
		{"crlf dropped", "mqtt:\n  password_file: " + write("crlf", "s3cret\r\n"), "s3cret", ""},
		{"no newline", "mqtt:\n  password_file: " + write("bare", "two words "), "two words ", ""},
		{"empty", "mqtt:\n  password_file: " + write("empty", "\n"), "",
			"config: line 5: mqtt.password_file: " + dir + "/empty is empty"},
		{"missing", "mqtt:\n  password_file: " + dir + "/nope", "",
			"config: line 5: mqtt.password_file: stat " + dir + "/nope: no such file or directory"},
		{"directory", "mqtt:\n  password_file: " + dir, "",
			"config: line 5: mqtt.password_file: " + dir + " is not a regular file"},
		{"too long", "mqtt:\n  password_file: " + write("long", strings.Repeat("x", 5000)), "",
			"config: line 5: mqtt.password_file: " + dir + "/long is longer than 4096 bytes"},
		{"both", "mqtt:\n  password: a\n  password_file: " + write("both", "b"), "",
			"config: line 6: mqtt.password_file: set together with mqtt.password; give the password one way only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+tt.yaml+"\n"), nil)
			if tt.wantErr != "" {
				requireErrorLine(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(c.MQTT.Password) != tt.want {
				t.Errorf("password = %q, want %q", string(c.MQTT.Password), tt.want)
			}
		})
	}
}

func TestSecretIsRedacted(t *testing.T) {
	c, err := Parse([]byte(minimal+"mqtt:\n  password: hunter2\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.MQTT.Password) != "hunter2" {
		t.Fatalf("password = %q, want hunter2", string(c.MQTT.Password))
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "mqtt", c.MQTT, "password", c.MQTT.Password)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "mqtt", c.MQTT, "password", c.MQTT.Password)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v":     fmt.Sprintf("%v", *c),
		"%+v":    fmt.Sprintf("%+v", c.MQTT),
		"%#v":    fmt.Sprintf("%#v", c.MQTT),
		"Sprint": fmt.Sprint(c.MQTT.Password),
		"json":   string(js),
		"slog":   logged.String(),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s shows the password: %s", name, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not show %s: %s", name, redacted, out)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(minimal+"comunity: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	requireErrorLine(t, err, "config "+path+`: line 4: unknown key "comunity" (did you mean "community"?)`)
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 4 || e.Key != "" {
		t.Errorf("errors.As(*Error) = %+v, want File %s, Line 4, Key \"\"", e, path)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error naming it that is os.ErrNotExist", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), MaxFileSize/10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big, nil)
	requireErrorLine(t, err, fmt.Sprintf("config %s: the file is larger than %d bytes", big, MaxFileSize))
}

// requireErrorLine fails unless err, one error per line, has the line want.
func requireErrorLine(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", want)
	}
	if !slices.Contains(strings.Split(err.Error(), "\n"), want) {
		t.Fatalf("error:\n%v\nwant the line:\n%s", err, want)
	}
}

func TestIntervalWholeMinutes(t *testing.T) {
	cfg := Default()
	cfg.Gateway, cfg.Community, cfg.Roster, cfg.MQTT.ClientID = "g", "c", "r.json", "g"
	cfg.Market.Interval = 90 * time.Second
	cfg.Market.GateClosure = 30 * time.Second
	cfg.Market.Grace = 10 * time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "whole number of minutes") {
		t.Errorf("90s interval: %v", err)
	}
}

// TestGateClosureLeavesTimeForFigures: the shortest gate closure the rules
// allow is accepted, with polls that fit twice in it.
func TestGateClosureLeavesTimeForFigures(t *testing.T) {
	cfg := Default()
	cfg.Gateway, cfg.Community, cfg.Roster, cfg.MQTT.ClientID = "g", "c", "r.json", "g"
	cfg.Market.GateClosure = MinGateClosure
	cfg.Devices = []Device{{Name: "grid", URL: "tcp://10.0.0.2", Unit: 1, Profile: "sdm630", Role: RoleGrid, Poll: MinGateClosure / PollsPerGateClosure}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("gate closure %s with a %s poll: %v", cfg.Market.GateClosure, cfg.Devices[0].Poll, err)
	}
	cfg.Devices[0].Poll += time.Millisecond
	requireErrorLine(t, cfg.Validate(), "config: devices[0].poll: devices[0].poll 5.001s is more than 1/2 of market.gate_closure 10s: this gateway publishes its metered figures at its first poll after an interval ends (and retries at the next), and the interval is settled market.gate_closure after its end, so its figures could arrive too late (poll at most 5s, or a longer gate_closure on every gateway)")
}

// TestBrokers: mqtt.brokers lists the brokers in the order they are
// tried; the environment overrides one by its index; mqtt.broker alone is
// a list of one; neither is the embedded broker.
func TestBrokers(t *testing.T) {
	c, err := Parse([]byte(minimal+"mqtt:\n  brokers: [mqtts://a:8883, mqtts://b:8883]\n  ca_file: /ca.pem\n"),
		[]string{"P2PGRID_MQTT_BROKERS_1=mqtts://c:8883"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.MQTT.BrokerURLs(), []string{"mqtts://a:8883", "mqtts://c:8883"}; !slices.Equal(got, want) {
		t.Errorf("brokers %q, want %q", got, want)
	}
	c, err = Parse([]byte(minimal+"mqtt:\n  broker: tcp://a:1883\n  brokers: []\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.MQTT.BrokerURLs(), []string{"tcp://a:1883"}; !slices.Equal(got, want) {
		t.Errorf("broker alone: %q, want %q", got, want)
	}
	c, err = Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MQTT.BrokerURLs(); got != nil {
		t.Errorf("no broker: %q, want nil (the embedded broker)", got)
	}
}
