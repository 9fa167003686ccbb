package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// devices is a valid devices list (lines 4 to 9 after minimal) to build
// device errors on.
const devices = `devices:
  - name: grid
    url: tcp://10.0.0.2
    unit: 1
    profile: sdm630
    role: grid
`

// TestErrors checks that each kind of error names the key and its line.
// Every YAML document is minimal (lines 1-3) followed by the case's lines,
// so the case's first line is line 4.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // one line of the error
		key  string // the *Error's key
		line int    // and line
	}{
		// The file's shape.
		{"unknown key", "comunity: x\n",
			`config: line 4: unknown key "comunity" (did you mean "community"?)`, "", 4},
		{"unknown key, no suggestion", "colour: blue\n",
			`config: line 4: unknown key "colour"`, "", 4},
		{"unknown nested key", "market:\n  interval: 15m\n  intervall: 5m\n",
			`config: line 6: market: unknown key "intervall" (did you mean "interval"?)`, "market", 6},
		{"unknown device key", devices + "    adress: x\n",
			`config: line 10: devices[0]: unknown key "adress"`, "devices[0]", 10},
		{"repeated key", "market:\n  k: 0.5\n  k: 0.6\n",
			`config: line 6: market: key "k" given twice (first at line 5)`, "market", 6},
		{"merge", "market:\n  <<: {k: 0.3}\n",
			`config: line 5: market: merge keys (<<) are not supported`, "market", 5},
		{"syntax", "market:\n\tk: 0.5\n",
			`config: line 5: found character that cannot start any token`, "", 5},
		{"two documents", "---\ngateway: x\n",
			`config: line 4: a second YAML document: the file must hold one`, "", 4},
		{"section not a mapping", "market: 15m\n",
			`config: line 4: market: want a mapping of settings, not "15m"`, "market", 4},
		{"devices not a list", "devices: {name: x}\n",
			`config: line 4: devices: want a list, not a mapping`, "devices", 4},
		{"scalar not a list", "mqtt:\n  broker: [a, b]\n",
			`config: line 5: mqtt.broker: want a string, not a list`, "mqtt.broker", 5},

		// Values of the wrong kind.
		{"duration", "market:\n  interval: 15x\n",
			`config: line 5: market.interval: "15x" is not a duration (write one with its unit, as in 30s, 2m or 15m)`, "market.interval", 5},
		{"duration without unit", "market:\n  grace: 30\n",
			`config: line 5: market.grace: "30" is not a duration (write one with its unit, as in 30s, 2m or 15m)`, "market.grace", 5},
		{"decimal", "market:\n  k: 0.5.1\n",
			`config: line 5: market.k: "0.5.1" is not a decimal number`, "market.k", 5},
		{"decimal infinity", "market:\n  price_cap: .inf\n",
			`config: line 5: market.price_cap: ".inf" is not a decimal number`, "market.price_cap", 5},
		{"decimal huge exponent", "market:\n  fee: 1e999999999\n",
			`config: line 5: market.fee: "1e999999999" is not a decimal number`, "market.fee", 5},
		{"decimal too long", "market:\n  k: 0." + strings.Repeat("1", 70) + "\n",
			`config: line 5: market.k: a number of 72 characters is too long (at most 64)`, "market.k", 5},
		{"whole number", "market:\n  qty_decimals: 3.0\n",
			`config: line 5: market.qty_decimals: "3.0" is not a whole number`, "market.qty_decimals", 5},
		{"hex unit", devices + "    poll: 1s\n  - {name: pv, url: tcp://10.0.0.3, unit: 0x10, profile: sunspec, role: pv}\n",
			`config: line 11: devices[1].unit: "0x10" is not a whole number`, "devices[1].unit", 11},
		{"bool", "telemetry:\n  enabled: yes\n",
			`config: line 5: telemetry.enabled: "yes" is not true or false`, "telemetry.enabled", 5},

		// One setting out of range.
		{"clearer", "clearer: maybe\n",
			`config: line 4: clearer: "maybe" is not a clearer role (want "", primary or standby)`, "clearer", 4},
		{"log.level", "log: {level: verbose}\n",
			`config: line 4: log.level: "verbose" is not a log level (want info, debug, warn or error)`, "log.level", 4},
		{"log.format", "log:\n  level: debug\n  format: logfmt\n",
			`config: line 6: log.format: "logfmt" is not a log format (want text or json)`, "log.format", 6},
		{"data_dir", "data_dir: \"\"\n",
			`config: line 4: data_dir: empty (the default is /var/lib/p2pgrid)`, "data_dir", 4},
		{"http", "http: localhost\n",
			`config: line 4: http: "localhost" is not host:port (as in 127.0.0.1:9410; "" switches the listener off)`, "http", 4},
		{"http port", "http: \":http\"\n",
			`config: line 4: http: ":http": port "http" is not a number from 0 to 65535`, "http", 4},
		{"interval too short", "market:\n  interval: 30s\n  gate_closure: 10s\n",
			`config: line 5: market.interval: 30s is shorter than 1m0s`, "market.interval", 5},
		{"interval does not divide a day", "market:\n  interval: 7m\n",
			`config: line 5: market.interval: 7m0s does not divide a day evenly (as 5m, 15m, 30m and 1h do)`, "market.interval", 5},
		{"gate closure", "market:\n  gate_closure: 15m\n",
			`config: line 5: market.gate_closure: market.gate_closure 15m0s is not shorter than market.interval 15m0s`, "market.gate_closure", 5},
		{"gate closure blames the interval when only it is set", "market:\n  interval: 2m\n",
			`config: line 5: market.interval: market.gate_closure 2m0s is not shorter than market.interval 2m0s`, "market.interval", 5},
		{"gate closure negative", "market:\n  gate_closure: -1m\n",
			`config: line 5: market.gate_closure: -1m0s is negative`, "market.gate_closure", 5},
		{"gate closure zero", "market:\n  gate_closure: 0s\n",
			`config: line 5: market.gate_closure: 0s is shorter than 10s: an interval is settled gate_closure after it ends, and the gateways' metered figures, sent at their first poll after the end, must have arrived by then`, "market.gate_closure", 5},
		{"gate closure just too short", "market:\n  gate_closure: 9s\n",
			`config: line 5: market.gate_closure: 9s is shorter than 10s: an interval is settled gate_closure after it ends, and the gateways' metered figures, sent at their first poll after the end, must have arrived by then`, "market.gate_closure", 5},
		{"grace", "market:\n  grace: 0s\n",
			`config: line 5: market.grace: 0s is not positive`, "market.grace", 5},
		{"grace too long", "market:\n  grace: 1h\n",
			`config: line 5: market.grace: market.grace 1h0m0s is not shorter than market.interval 15m0s`, "market.grace", 5},
		{"k", "market:\n  k: 1.5\n",
			`config: line 5: market.k: 1.5 is outside [0, 1]`, "market.k", 5},
		{"fee negative", "market:\n  fee: -0.01\n",
			`config: line 5: market.fee: -0.01 is negative`, "market.fee", 5},
		{"qty_decimals", "market:\n  qty_decimals: 12\n",
			`config: line 5: market.qty_decimals: 12 is outside [0, 9]`, "market.qty_decimals", 5},
		{"price_decimals", "market:\n  price_decimals: -1\n",
			`config: line 5: market.price_decimals: -1 is outside [0, 9]`, "market.price_decimals", 5},
		{"floor precision", "market:\n  price_floor: 0.0812345\n",
			`config: line 5: market.price_floor: too many decimals: 0.0812345 has more than 6 (price_decimals)`, "market.price_floor", 5},
		{"cap 30 digits", "market:\n  price_cap: 123456789012345678901234567890\n",
			`config: line 5: market.price_cap: 123456789012345678901234567890 is beyond the largest price, 1000000`, "market.price_cap", 5},
		{"unknown time zone", "apps:\n  time_zone: Mars/Olympus\n",
			`config: line 5: apps.time_zone: unknown time zone "Mars/Olympus" (want an IANA name such as Europe/Berlin, or Local): unknown time zone Mars/Olympus`, "apps.time_zone", 5},
		{"discovery prefix with a wildcard", "apps:\n  discovery_prefix: ha/#\n",
			`config: line 5: apps.discovery_prefix: discovery prefix "ha/#": want MQTT topic levels without + or # (Home Assistant's default is homeassistant)`, "apps.discovery_prefix", 5},
		{"currency not a code", "market:\n  currency: euro\n",
			`config: line 5: market.currency: "euro" is not an ISO 4217 currency code (three capital letters, as EUR, GBP or CHF)`, "market.currency", 5},
		{"floor above cap", "market:\n  price_floor: 0.3\n  price_cap: 0.2\n",
			`config: line 5: market.price_floor: market.price_floor 0.3 is above market.price_cap 0.2`, "market.price_floor", 5},
		{"min_trade_kwh negative", "market:\n  min_trade_kwh: -1\n",
			`config: line 5: market.min_trade_kwh: -1 is negative`, "market.min_trade_kwh", 5},
		{"min_trade_kwh precision", "market:\n  min_trade_kwh: 0.0001\n",
			`config: line 5: market.min_trade_kwh: 0.0001 has more decimals than market.qty_decimals (3)`, "market.min_trade_kwh", 5},

		// Policy.
		{"min sell below floor", "market:\n  price_floor: 0.08\npolicy:\n  min_sell_price: 0.05\n",
			`config: line 7: policy.min_sell_price: policy.min_sell_price 0.05 is below market.price_floor 0.08`, "policy.min_sell_price", 7},
		{"max buy above cap", "market:\n  price_cap: 0.3\npolicy:\n  max_buy_price: 0.31\n",
			`config: line 7: policy.max_buy_price: policy.max_buy_price 0.31 is above market.price_cap 0.3`, "policy.max_buy_price", 7},
		{"policy price precision", "policy:\n  max_buy_price: 0.1234567\n",
			`config: line 5: policy.max_buy_price: 0.1234567 has more decimals than market.price_decimals (6)`, "policy.max_buy_price", 5},
		{"policy price beyond max", "policy:\n  min_sell_price: -2000000\n",
			`config: line 5: policy.min_sell_price: -2000000 is beyond the largest price, 1000000`, "policy.min_sell_price", 5},
		{"safety factor", "policy:\n  safety_factor: 1.2\n",
			`config: line 5: policy.safety_factor: 1.2 is outside [0, 1]`, "policy.safety_factor", 5},
		{"max order zero", "policy:\n  max_order_kwh: 0\n",
			`config: line 5: policy.max_order_kwh: 0 is not positive`, "policy.max_order_kwh", 5},
		{"max order below min trade", "policy:\n  max_order_kwh: 0.05\n",
			`config: line 5: policy.max_order_kwh: policy.max_order_kwh 0.05 is below market.min_trade_kwh 0.1`, "policy.max_order_kwh", 5},
		{"buy steps rising", "policy:\n  buy_steps:\n    - {share: 0.5, price: 0.1}\n    - {share: 0.5, price: 0.2}\n",
			`config: line 7: policy.buy_steps[1].price: 0.2 after 0.1: the prices of policy.buy_steps must fall strictly`, "policy.buy_steps[1].price", 7},
		{"sell steps equal", "policy:\n  min_sell_price: null\n  sell_steps:\n    - {share: 0.5, price: 0.2}\n    - {share: 0.5, price: 0.2}\n",
			`config: line 8: policy.sell_steps[1].price: 0.2 after 0.2: the prices of policy.sell_steps must rise strictly`, "policy.sell_steps[1].price", 8},
		{"steps shares", "policy:\n  buy_steps:\n    - {share: 0.5, price: 0.2}\n    - {share: 0.4, price: 0.1}\n",
			`config: line 6: policy.buy_steps: the shares add up to 0.9, not 1`, "policy.buy_steps", 6},
		{"steps share zero", "policy:\n  buy_steps:\n    - {share: 0, price: 0.2}\n    - {share: 1, price: 0.1}\n",
			`config: line 6: policy.buy_steps[0].share: 0 is not positive`, "policy.buy_steps[0].share", 6},
		{"buy step above max_buy_price", "policy:\n  max_buy_price: 0.2\n  buy_steps:\n    - {share: 1, price: 0.25}\n",
			`config: line 7: policy.buy_steps[0].price: 0.25 is beyond policy.max_buy_price 0.2`, "policy.buy_steps[0].price", 7},
		{"step above the cap", "market:\n  price_cap: 0.3\npolicy:\n  max_buy_price: null\n  buy_steps:\n    - {share: 1, price: 0.31}\n",
			`config: line 9: policy.buy_steps[0].price: policy.buy_steps[0].price 0.31 is above market.price_cap 0.3`, "policy.buy_steps[0].price", 9},
		{"step price precision", "policy:\n  buy_steps:\n    - {share: 1, price: 0.1234567}\n",
			`config: line 6: policy.buy_steps[0].price: 0.1234567 has more decimals than market.price_decimals (6)`, "policy.buy_steps[0].price", 6},
		{"nine steps", "policy:\n  sell_steps: [{share: 0.2, price: 1}, {share: 0.1, price: 2}, {share: 0.1, price: 3}, {share: 0.1, price: 4}, {share: 0.1, price: 5}, {share: 0.1, price: 6}, {share: 0.1, price: 7}, {share: 0.1, price: 8}, {share: 0.1, price: 9}]\n",
			`config: line 5: policy.sell_steps: 9 steps (at most 8)`, "policy.sell_steps", 5},
		{"telemetry", "telemetry:\n  every: 0s\n",
			`config: line 5: telemetry.every: 0s is shorter than 5s, the protocol's limit`, "telemetry.every", 5},
		{"telemetry faster than the protocol allows", "telemetry:\n  every: 1s\n",
			`config: line 5: telemetry.every: 1s is shorter than 5s, the protocol's limit`, "telemetry.every", 5},

		// MQTT.
		{"broker scheme", "mqtt:\n  broker: http://broker:1883\n",
			`config: line 5: mqtt.broker: "http://broker:1883": want a tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss:// URL`, "mqtt.broker", 5},
		{"broker without host", "mqtt:\n  broker: tcp://:1883\n",
			`config: line 5: mqtt.broker: "tcp://:1883" has no host`, "mqtt.broker", 5},
		{"broker without port", "mqtt:\n  broker: mqtts://broker\n",
			`config: line 5: mqtt.broker: "mqtts://broker" has no port (1883 for tcp://, 8883 for TLS)`, "mqtt.broker", 5},
		{"broker credentials are not echoed", "mqtt:\n  broker: tcp://u:hunter2@broker\n",
			`config: line 5: mqtt.broker: credentials in the URL: give the username and password separately`, "mqtt.broker", 5},
		{"tls file without tls", "mqtt:\n  broker: tcp://broker:1883\n  ca_file: /ca.pem\n",
			`config: line 6: mqtt.ca_file: set, but mqtt.broker "tcp://broker:1883" is not a TLS URL (ssl://, tls://, mqtts:// or wss://)`, "mqtt.ca_file", 6},
		{"tls file with embedded broker", "mqtt:\n  ca_file: /ca.pem\n",
			`config: line 5: mqtt.ca_file: set, but mqtt.broker is empty (the embedded broker, which has no TLS)`, "mqtt.ca_file", 5},
		{"cert without key", "mqtt:\n  broker: mqtts://broker:8883\n  cert_file: /c.pem\n",
			`config: line 6: mqtt.cert_file: set without mqtt.key_file: a client certificate needs both`, "mqtt.cert_file", 6},
		{"broker and brokers", "mqtt:\n  broker: tcp://a:1883\n  brokers: [tcp://b:1883]\n",
			`config: line 6: mqtt.brokers: mqtt.broker and mqtt.brokers are both set: give mqtt.broker for one broker or mqtt.brokers for several, not both`, "mqtt.brokers", 6},
		{"brokers, one bad", "mqtt:\n  brokers:\n    - tcp://a:1883\n    - tcp://b\n",
			`config: line 7: mqtt.brokers[1]: "tcp://b" has no port (1883 for tcp://, 8883 for TLS)`, "mqtt.brokers[1]", 7},
		{"brokers, TLS and not", "mqtt:\n  brokers:\n    - mqtts://a:8883\n    - tcp://b:1883\n",
			`config: line 7: mqtt.brokers[1]: "tcp://b:1883" is not a TLS URL but "mqtts://a:8883" is a TLS URL: the brokers of one gateway are all TLS or none`, "mqtt.brokers[1]", 7},
		{"brokers, twice the same", "mqtt:\n  brokers: [tcp://a:1883, tcp://a:1883]\n",
			`config: line 5: mqtt.brokers[1]: "tcp://a:1883" is also mqtt.brokers[0]`, "mqtt.brokers[1]", 5},
		{"brokers, too many", "mqtt:\n  brokers: [tcp://a:1, tcp://a:2, tcp://a:3, tcp://a:4, tcp://a:5, tcp://a:6, tcp://a:7, tcp://a:8, tcp://a:9]\n",
			`config: line 5: mqtt.brokers: 9 URLs (at most 8)`, "mqtt.brokers", 5},
		{"tls file without tls brokers", "mqtt:\n  brokers: [tcp://a:1883, tcp://b:1883]\n  ca_file: /ca.pem\n",
			`config: line 6: mqtt.ca_file: set, but mqtt.brokers[0] "tcp://a:1883" is not a TLS URL (ssl://, tls://, mqtts:// or wss://)`, "mqtt.ca_file", 6},
		{"keepalive fraction", "mqtt:\n  keepalive: 1500ms\n",
			`config: line 5: mqtt.keepalive: 1.5s is not a whole number of seconds`, "mqtt.keepalive", 5},
		{"keepalive too long", "mqtt:\n  keepalive: 24h\n",
			`config: line 5: mqtt.keepalive: 24h0m0s is outside 1s..18h12m15s`, "mqtt.keepalive", 5},

		// Devices.
		{"two grid meters", devices + "  - {name: grid2, url: tcp://10.0.0.3, unit: 1, profile: sdm630, role: grid}\n",
			`config: line 10: devices[1].role: devices[0] is already the grid meter; a home has one`, "devices[1].role", 10},
		{"duplicate device name", devices + "  - {name: grid, url: tcp://10.0.0.3, unit: 1, profile: sunspec, role: pv}\n",
			`config: line 10: devices[1].name: "grid" is also the name of devices[0]`, "devices[1].name", 10},
		{"same bus and unit", devices + "  - {name: pv, url: tcp://10.0.0.2, unit: 1, profile: sunspec, role: pv}\n",
			`config: line 10: devices[1].unit: devices[0] has the same url and unit`, "devices[1].unit", 10},
		{"unit missing", "devices:\n  - name: m\n    url: tcp://m\n    profile: sdm630\n    role: grid\n",
			`config: line 5: devices[0].unit: missing: the Modbus unit id, 1 to 247`, "devices[0].unit", 5},
		{"unit range", strings.Replace(devices, "unit: 1", "unit: 248", 1),
			`config: line 7: devices[0].unit: 248 is outside 1..247`, "devices[0].unit", 7},
		{"url scheme", strings.Replace(devices, "tcp://10.0.0.2", "modbus://10.0.0.2", 1),
			`config: line 6: devices[0].url: modbus url "modbus://10.0.0.2": unknown scheme "modbus" (want tcp, rtu or rtutcp)`, "devices[0].url", 6},
		{"url without scheme", strings.Replace(devices, "tcp://10.0.0.2", "10.0.0.2:502", 1),
			`config: line 6: devices[0].url: modbus url "10.0.0.2:502": first path segment in URL cannot contain colon`, "devices[0].url", 6},
		{"rtu url with host", strings.Replace(devices, "tcp://10.0.0.2", "rtu://dev/ttyUSB0", 1),
			`config: line 6: devices[0].url: modbus url "rtu://dev/ttyUSB0": host "dev" in an rtu url: the device path goes after three slashes, as in rtu:///dev/ttyUSB0`, "devices[0].url", 6},
		// The bus's own check: what config check passes, Open accepts.
		{"rtu baud", strings.Replace(devices, "tcp://10.0.0.2", "rtu:///dev/ttyUSB0?baud=9601", 1),
			`config: line 6: devices[0].url: modbus url "rtu:///dev/ttyUSB0?baud=9601": baud "9601": want a standard rate such as 9600 or 19200`, "devices[0].url", 6},
		{"tcp port", strings.Replace(devices, "tcp://10.0.0.2", "tcp://10.0.0.2:70000", 1),
			`config: line 6: devices[0].url: modbus url "tcp://10.0.0.2:70000": port "70000" out of range 1..65535`, "devices[0].url", 6},
		{"role", strings.Replace(devices, "role: grid", "role: battery", 1),
			`config: line 9: devices[0].role: "battery" is not a device role (want grid or pv)`, "devices[0].role", 9},
		{"profile", strings.Replace(devices, "profile: sdm630", "profile: ../sdm630", 1),
			`config: line 8: devices[0].profile: "../sdm630" is not a profile name (lower-case letters, digits, - and _, as in sdm630)`, "devices[0].profile", 8},
		{"profile in capitals", strings.Replace(devices, "profile: sdm630", "profile: SDM630", 1),
			`config: line 8: devices[0].profile: "SDM630" is not a profile name (lower-case letters, digits, - and _, as in sdm630)`, "devices[0].profile", 8},
		{"poll too short", devices + "    poll: 50ms\n",
			`config: line 10: devices[0].poll: 50ms is shorter than 100ms`, "devices[0].poll", 10},
		{"poll longer than the interval", devices + "    poll: 20m\n",
			`config: line 10: devices[0].poll: 20m0s is longer than market.interval 15m0s`, "devices[0].poll", 10},
		{"poll too slow for the gate closure", devices + "    poll: 61s\n",
			`config: line 10: devices[0].poll: devices[0].poll 1m1s is more than 1/2 of market.gate_closure 2m0s: this gateway publishes its metered figures at its first poll after an interval ends (and retries at the next), and the interval is settled market.gate_closure after its end, so its figures could arrive too late (poll at most 1m0s, or a longer gate_closure on every gateway)`, "devices[0].poll", 10},
		{"device name", strings.Replace(devices, "name: grid", "name: \"grid meter\"", 1),
			`config: line 5: devices[0].name: "grid meter": character ' ' at 4 is not one of [A-Za-z0-9._:-]`, "devices[0].name", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tt.yaml), nil)
			requireErrorLine(t, err, tt.want)
			requireError(t, err, tt.key, tt.line)
		})
	}
}

// TestErrorsWholeFile covers files that are wrong as a whole, and the
// required keys.
func TestErrorsWholeFile(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"config: the file is empty"}},
		{"comments only", "# nothing\n", []string{"config: the file is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"config: line 1: want a mapping of settings, not a list"}},
		{"required keys", "data_dir: /d\n", []string{
			"config: gateway: missing: this gateway's id, 1 to 64 of [A-Za-z0-9._:-]",
			"config: community: missing: the community's id, 1 to 64 of [A-Za-z0-9._:-]",
			"config: roster: missing: the path of the community roster file (JSON)",
		}},
		{"bad ids", "gateway: home 17\ncommunity: " + strings.Repeat("c", 65) + "\nroster: r\n", []string{
			`config: line 1: gateway: "home 17": character ' ' at 4 is not one of [A-Za-z0-9._:-]`,
			`config: line 2: community: "` + strings.Repeat("c", 65) + `": 65 characters (at most 64)`,
		}},
		{"operator key not a key", minimal + "operator_key: ed25519:AAAA\n", []string{
			`config: line 4: operator_key: public key "ed25519:AAAA": want "ed25519:" and 32 bytes in standard base64`,
		}},
		{"too many devices", minimal + "devices:\n" + strings.Repeat("  - {}\n", MaxDevices+1), []string{
			"config: line 5: devices: 65 entries (at most 64)",
		}},
		{"validation errors are bounded too", minimal + "devices:\n" + strings.Repeat("  - {}\n", 30), []string{
			"config: line 5: devices[0].name: missing: the device's name, 1 to 64 of [A-Za-z0-9._:-]",
			"config: further errors not shown",
		}},
		{"several errors at once", minimal + "colour: x\nmarket:\n  interval: 15x\n  k: nope\n", []string{
			`config: line 4: unknown key "colour"`,
			`config: line 6: market.interval: "15x" is not a duration (write one with its unit, as in 30s, 2m or 15m)`,
			`config: line 7: market.k: "nope" is not a decimal number`,
		}},
		{"error count is bounded", minimal + strings.Repeat("x: 1\n", 30), []string{
			`config: line 4: unknown key "x"`,
			"config: line 23: key \"x\" given twice (first at line 4)",
			"config: further errors not shown",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			for _, w := range tt.want {
				requireErrorLine(t, err, w)
			}
		})
	}
}

// Errors are listed one per line in the order of the file's lines, not in
// the order the checks run (the market is checked before the devices).
func TestErrorsInFileOrder(t *testing.T) {
	yaml := minimal + devices + "    poll: 50ms\nmarket:\n  grace: 0s\ntelemetry:\n  every: 1s\n"
	_, err := Parse([]byte(yaml), []string{"P2PGRID_MARKET_K=2"})
	want := "config: line 10: devices[0].poll: 50ms is shorter than 100ms\n" +
		"config: line 12: market.grace: 0s is not positive\n" +
		"config: line 14: telemetry.every: 1s is shorter than 5s, the protocol's limit\n" +
		"config: environment P2PGRID_MARKET_K: market.k: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error:\n%v\nwant it to start:\n%s", err, want)
	}
}

// LoadForCheck returns a file that decodes but does not validate, with
// Validate's errors, so that config check can check it further; one that
// does not decode, not at all.
func TestLoadForCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(minimal+"telemetry:\n  every: 1s\n"), 0o644)
	c, err := LoadForCheck(bad, nil)
	if c == nil || c.Gateway != "g1" || err == nil || !strings.Contains(err.Error(), "line 5: telemetry.every") {
		t.Errorf("LoadForCheck of an invalid file: %v, %v", c, err)
	}
	if c, err := Load(bad, nil); c != nil || err == nil {
		t.Errorf("Load of an invalid file: %v, %v", c, err)
	}
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte(minimal+"market: [\n"), 0o644)
	if c, err := LoadForCheck(broken, nil); c != nil || err == nil {
		t.Errorf("LoadForCheck of a file that does not decode: %v, %v", c, err)
	}
	if c, err := LoadForCheck(filepath.Join(dir, "nope.yaml"), nil); c != nil || err == nil {
		t.Errorf("LoadForCheck of no file: %v, %v", c, err)
	}
}

// requireError fails unless err holds an *Error with key and line.
func requireError(t *testing.T, err error, key string, line int) {
	t.Helper()
	var all []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			all = append(all, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	for _, e := range all {
		if e.Key == key && e.Line == line {
			return
		}
	}
	var e *Error
	errors.As(err, &e)
	t.Errorf("no *Error with key %q and line %d in %v (first: %+v)", key, line, err, e)
}
