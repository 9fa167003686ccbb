package config

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readExample(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEnvOverrides(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "mqtt.password")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	example := readExample(t)
	base, err := Parse(example, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml []byte // default: the example
		env  []string
		want map[string]string // the keys that change
	}{
		{"string", nil, []string{"P2PGRID_GATEWAY=home-99"},
			map[string]string{"gateway": "home-99"}},
		{"string, and the client id follows the gateway id", []byte(minimal), []string{"P2PGRID_GATEWAY=home-99"},
			map[string]string{"gateway": "home-99", "mqtt.client_id": "home-99"}},
		{"string to empty", nil, []string{"P2PGRID_HTTP="},
			map[string]string{"http": ""}},
		{"clearer", nil, []string{"P2PGRID_CLEARER=standby"},
			map[string]string{"clearer": "standby"}},
		{"duration", nil, []string{"P2PGRID_MARKET_INTERVAL=30m", "P2PGRID_MQTT_KEEPALIVE=1m"},
			map[string]string{"market.interval": "30m0s", "mqtt.keepalive": "1m0s"}},
		{"decimal", nil, []string{"P2PGRID_MARKET_PRICE_CAP=0.305", "P2PGRID_POLICY_SAFETY_FACTOR=0.75"},
			map[string]string{"market.price_cap": "0.305", "policy.safety_factor": "0.75"}},
		{"decimal exactly", nil, []string{"P2PGRID_MARKET_K=0.333333333333333333333333333333"},
			map[string]string{"market.k": "0.333333333333333333333333333333"}},
		{"optional decimal unset", nil, []string{"P2PGRID_POLICY_MAX_ORDER_KWH="},
			map[string]string{"policy.max_order_kwh": "<nil>"}},
		{"bool", nil, []string{"P2PGRID_TELEMETRY_ENABLED=false"},
			map[string]string{"telemetry.enabled": "false"}},
		{"apps", nil, []string{"P2PGRID_APPS_TIME_ZONE=Europe/Berlin", "P2PGRID_APPS_HOME_ASSISTANT=false"},
			map[string]string{"apps.time_zone": "Europe/Berlin", "apps.home_assistant": "false"}},
		{"whole number", nil, []string{"P2PGRID_MARKET_QTY_DECIMALS=2"},
			map[string]string{"market.qty_decimals": "2"}},
		{"device by index", nil, []string{"P2PGRID_DEVICES_1_URL=tcp://10.0.0.9:502", "P2PGRID_DEVICES_0_POLL=2s"},
			map[string]string{"devices[1].url": "tcp://10.0.0.9:502", "devices[0].poll": "2s"}},
		{"password", nil, []string{"P2PGRID_MQTT_PASSWORD=s3cret"},
			map[string]string{"mqtt.password": "s3cret"}},
		{"password file", nil, []string{"P2PGRID_MQTT_PASSWORD_FILE=" + pwFile},
			map[string]string{"mqtt.password_file": pwFile, "mqtt.password": "from-file"}},
		{"other variables are ignored", nil, []string{"HOME=/root", "P2PGRIDX=1", "p2pgrid_gateway=x", ConfigEnv + "=/etc/p2pgrid/gateway.yaml", "NOEQUALS"},
			map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml, want := example, dump(base)
			if tt.yaml != nil {
				yaml = tt.yaml
				c, err := Parse(yaml, nil)
				if err != nil {
					t.Fatal(err)
				}
				want = dump(c)
			}
			want = maps.Clone(want)
			maps.Copy(want, tt.want)
			c, err := Parse(yaml, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			diffDump(t, dump(c), want)
			// The value's origin is the variable, for later errors.
			for _, kv := range tt.env {
				for key := range tt.want {
					name := EnvName(key)
					if strings.HasPrefix(kv, name+"=") && c.src.origins[key].env != name {
						t.Errorf("origin of %s = %+v, want %s", key, c.src.origins[key], name)
					}
				}
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string // lines of the error
	}{
		{"unknown", []string{"P2PGRID_COMUNITY=x"},
			[]string{"config: environment P2PGRID_COMUNITY: unknown variable (did you mean P2PGRID_COMMUNITY?)"}},
		{"unknown, no suggestion", []string{"P2PGRID_VERBOSITY=debug"},
			[]string{"config: environment P2PGRID_VERBOSITY: unknown variable"}},
		{"bad log level", []string{"P2PGRID_LOG_LEVEL=trace"},
			[]string{`config: environment P2PGRID_LOG_LEVEL: log.level: "trace" is not a log level (want info, debug, warn or error)`}},
		{"a section", []string{"P2PGRID_TELEMETRY=off"},
			[]string{"config: environment P2PGRID_TELEMETRY: unknown variable"}},
		{"a device not in the file", []string{"P2PGRID_DEVICES_2_URL=tcp://x"},
			[]string{"config: environment P2PGRID_DEVICES_2_URL: the config file has no devices[2]: the environment can change a device's settings, not add a device"}},
		{"a device's unknown key", []string{"P2PGRID_DEVICES_0_ADDRESS=x"},
			[]string{"config: environment P2PGRID_DEVICES_0_ADDRESS: unknown variable"}},
		{"bad duration", []string{"P2PGRID_MARKET_INTERVAL=15x"},
			[]string{`config: environment P2PGRID_MARKET_INTERVAL: market.interval: "15x" is not a duration (write one with its unit, as in 30s, 2m or 15m)`}},
		{"bad bool", []string{"P2PGRID_TELEMETRY_ENABLED=yes"},
			[]string{`config: environment P2PGRID_TELEMETRY_ENABLED: telemetry.enabled: "yes" is not true or false`}},
		{"bad decimal", []string{"P2PGRID_MARKET_K=half"},
			[]string{`config: environment P2PGRID_MARKET_K: market.k: "half" is not a decimal number`}},
		{"empty required decimal", []string{"P2PGRID_MARKET_FEE="},
			[]string{`config: environment P2PGRID_MARKET_FEE: market.fee: "" is not a decimal number`}},
		{"bad whole number", []string{"P2PGRID_DEVICES_0_UNIT=one"},
			[]string{`config: environment P2PGRID_DEVICES_0_UNIT: devices[0].unit: "one" is not a whole number`}},
		{"set twice", []string{"P2PGRID_GATEWAY=a", "P2PGRID_GATEWAY=b"},
			[]string{"config: environment P2PGRID_GATEWAY: set twice in the environment"}},
		{"several", []string{"P2PGRID_GATEWAY=a", "P2PGRID_X=1", "P2PGRID_MARKET_K=x"},
			[]string{"config: environment P2PGRID_X: unknown variable", `config: environment P2PGRID_MARKET_K: market.k: "x" is not a decimal number`}},
		// A value that parses but breaks a rule names the variable too.
		{"rule broken by a variable", []string{"P2PGRID_MARKET_GATE_CLOSURE=20m"},
			[]string{"config: environment P2PGRID_MARKET_GATE_CLOSURE: market.gate_closure: market.gate_closure 20m0s is not shorter than market.interval 15m0s"}},
		{"unit 0", []string{"P2PGRID_DEVICES_0_UNIT=0"},
			[]string{"config: environment P2PGRID_DEVICES_0_UNIT: devices[0].unit: 0 is outside 1..247"}},
		{"required emptied", []string{"P2PGRID_ROSTER="},
			[]string{"config: environment P2PGRID_ROSTER: roster: missing: the path of the community roster file (JSON)"}},
		{"bad id", []string{"P2PGRID_COMMUNITY=linden weg"},
			[]string{`config: environment P2PGRID_COMMUNITY: community: "linden weg": character ' ' at 6 is not one of [A-Za-z0-9._:-]`}},
	}
	example := readExample(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(example, tt.env)
			for _, w := range tt.want {
				requireErrorLine(t, err, w)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"gateway":              "P2PGRID_GATEWAY",
		"data_dir":             "P2PGRID_DATA_DIR",
		"mqtt.password":        "P2PGRID_MQTT_PASSWORD",
		"mqtt.password_file":   "P2PGRID_MQTT_PASSWORD_FILE",
		"market.interval":      "P2PGRID_MARKET_INTERVAL",
		"devices[0].url":       "P2PGRID_DEVICES_0_URL",
		"devices[12].poll":     "P2PGRID_DEVICES_12_POLL",
		"policy.max_order_kwh": "P2PGRID_POLICY_MAX_ORDER_KWH",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
	// Every setting has its own variable.
	c, err := Parse(readExample(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	walkScalars(reflect.ValueOf(c).Elem(), "", func(key string, _ reflect.Value) {
		name := EnvName(key)
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s are both %s", other, key, name)
		}
		if name == ConfigEnv {
			t.Errorf("%s is %s, which is reserved", key, ConfigEnv)
		}
		seen[name] = key
	})
	if len(seen) < 40 {
		t.Errorf("only %d variables", len(seen))
	}
}
