package homeassistant

import (
	"time"

	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/gateway/summary"
	"github.com/p2pgrid/p2pgrid/internal/golden"
)

// appTopic stands in for the gateway's single-value topics.
func appTopic(key string) string { return "p2pgrid/v1/c1/app/home1/" + key }

func testGateway() Gateway {
	topics, err := protocol.NewTopics("c1")
	if err != nil {
		panic(err)
	}
	return Gateway{Community: "c1", ID: "home1", Version: "v0.4.0", Currency: "EUR",
		StatusTopic: topics.Status("home1"), StateTopic: appTopic}
}

// The discovery messages of every value, one line each ("topic payload"),
// in testdata/discovery.txt.
func TestGolden(t *testing.T) {
	msgs, err := Discovery(DefaultPrefix, testGateway(), summary.Fields)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString(m.Topic + " " + string(m.Payload) + "\n")
	}
	golden.Check(t, filepath.Join("testdata", "discovery.txt"), b.Bytes())
}

// Home Assistant's units per device class, for the classes used here,
// from its sensor documentation (developers.home-assistant.io/docs/core/
// entity/sensor, "Available device classes"): energy in J, kJ, MJ, GJ,
// mWh, Wh, kWh, MWh, GWh, TWh, cal, kcal, Mcal, Gcal; monetary in an ISO
// 4217 currency code. A sensor without a device class may have any unit.
var unitsOf = map[string]func(unit string) bool{
	ClassEnergy: func(u string) bool {
		return slices.Contains([]string{"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"}, u)
	},
	ClassMonetary: func(u string) bool { return len(u) == 3 && strings.ToUpper(u) == u },
}

// The state classes each device class allows, from the same page ("state
// classes": energy takes total or total_increasing, monetary total, both
// also none); without a device class any of the three, or none.
var stateClassesOf = map[string][]string{
	ClassEnergy:   {"", StateTotal, StateTotalIncreasing},
	ClassMonetary: {"", StateTotal},
	"":            {"", StateMeasurement, StateTotal, StateTotalIncreasing},
}

// The discovery payloads against Home Assistant's schema of an MQTT
// sensor: the required keys are there and of the right type, unique_ids
// are unique, each device class's unit and state class are ones Home
// Assistant allows for it, availability is bound to the gateway's status
// topic with the values its status really carries, the state topics are
// the single-value topics, the topics are valid discovery topics, and
// the energy totals qualify for the energy dashboard.
func TestSchema(t *testing.T) {
	g := testGateway()
	msgs, err := Discovery(DefaultPrefix, g, summary.Fields)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(summary.Fields) {
		t.Fatalf("%d messages for %d fields", len(msgs), len(summary.Fields))
	}
	// What the gateway's status topic carries, online and as its will.
	var states []string
	for _, st := range []protocol.State{protocol.StateOnline, protocol.StateOffline} {
		raw, err := (&protocol.Status{Gateway: "home1", State: st, Version: "v0.4.0", Time: fixedTime}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ State string }
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		states = append(states, v.State)
	}
	uniq := map[string]bool{}
	energyTotals := 0
	for i, m := range msgs {
		f := summary.Fields[i]
		levels := strings.Split(m.Topic, "/")
		if len(levels) != 5 || levels[0] != DefaultPrefix || levels[1] != "sensor" || levels[2] != "p2pgrid_home1" ||
			levels[3] != f.Key || levels[4] != "config" || checkLevel("node", levels[2]) != nil || checkLevel("object", levels[3]) != nil {
			t.Errorf("topic %q is not homeassistant/sensor/p2pgrid_home1/%s/config", m.Topic, f.Key)
		}
		var c map[string]any
		dec := json.NewDecoder(bytes.NewReader(m.Payload))
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		for _, k := range []string{"name", "unique_id", "state_topic", "availability", "device", "origin"} {
			if _, ok := c[k]; !ok {
				t.Errorf("%s: no %q", m.Topic, k)
			}
		}
		str := func(k string) string { s, _ := c[k].(string); return s }
		if id := str("unique_id"); id == "" || uniq[id] {
			t.Errorf("%s: unique_id %q empty or repeated", m.Topic, id)
		} else {
			uniq[id] = true
		}
		if str("state_topic") != appTopic(f.Key) {
			t.Errorf("%s: state_topic %q, want the single-value topic %q", m.Topic, str("state_topic"), appTopic(f.Key))
		}
		dc, sc, unit := str("device_class"), str("state_class"), str("unit_of_measurement")
		if ok := unitsOf[dc]; dc != "" && (ok == nil || !ok(unit)) {
			t.Errorf("%s: unit %q is not one Home Assistant allows for device class %q", m.Topic, unit, dc)
		}
		if allowed, ok := stateClassesOf[dc]; !ok || !slices.Contains(allowed, sc) {
			t.Errorf("%s: state class %q is not one Home Assistant allows for device class %q", m.Topic, sc, dc)
		}
		if dc == ClassEnergy && (sc == StateTotal || sc == StateTotalIncreasing) {
			energyTotals++
			if f.Reset == summary.NoReset || sc != StateTotalIncreasing {
				t.Errorf("%s: an energy total that resets must be total_increasing (no last_reset on a plain topic)", m.Topic)
			}
		}
		if dc == ClassMonetary && unit != "EUR" {
			t.Errorf("%s: money in %q, want the currency", m.Topic, unit)
		}
		av, _ := c["availability"].([]any)
		if len(av) != 1 {
			t.Fatalf("%s: availability %v", m.Topic, c["availability"])
		}
		a, _ := av[0].(map[string]any)
		if a["topic"] != g.StatusTopic || a["value_template"] != "{{ value_json.state }}" ||
			a["payload_available"] != states[0] || a["payload_not_available"] != states[1] {
			t.Errorf("%s: availability %v, want %s's state %v", m.Topic, a, g.StatusTopic, states)
		}
		d, _ := c["device"].(map[string]any)
		ids, _ := d["identifiers"].([]any)
		if len(ids) != 1 || ids[0] != "p2pgrid_c1_home1" || d["manufacturer"] != "p2pgrid" || d["name"] == "" ||
			d["model"] == "" || d["sw_version"] != "v0.4.0" {
			t.Errorf("%s: device %v", m.Topic, d)
		}
		if o, _ := c["origin"].(map[string]any); o["name"] == "" {
			t.Errorf("%s: origin without a name", m.Topic)
		}
	}
	if energyTotals != 4 {
		t.Errorf("%d energy totals for the energy dashboard, want 4 (bought and sold, today and this month)", energyTotals)
	}
}

// Bad prefixes and gateway ids Home Assistant would not read are errors
// that say why.
func TestBadInput(t *testing.T) {
	g := testGateway()
	for _, p := range []string{"", "home/#", "a//b", "+"} {
		if _, err := Discovery(p, g, summary.Fields); err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	g.ID = "home.1"
	if _, err := Discovery(DefaultPrefix, g, summary.Fields); !errors.Is(err, ErrName) || !strings.Contains(err.Error(), `"home.1"`) {
		t.Errorf("gateway id with a dot: %v", err)
	}
	g = testGateway()
	g.StateTopic = nil
	if _, err := Discovery(DefaultPrefix, g, summary.Fields); err == nil {
		t.Error("no state topics: no error")
	}
	if msgs, err := Discovery("ha/discovery", testGateway(), summary.Fields[:1]); err != nil ||
		msgs[0].Topic != "ha/discovery/sensor/p2pgrid_home1/price/config" {
		t.Errorf("a prefix of two levels: %v %v", msgs, err)
	}
}

// Remove deletes exactly the configs Discovery publishes.
func TestRemove(t *testing.T) {
	add, err := Discovery(DefaultPrefix, testGateway(), summary.Fields)
	if err != nil {
		t.Fatal(err)
	}
	del, err := Remove(DefaultPrefix, testGateway(), summary.Fields)
	if err != nil {
		t.Fatal(err)
	}
	if len(add) != len(del) {
		t.Fatalf("%d configs, %d deletions", len(add), len(del))
	}
	for i := range add {
		if add[i].Topic != del[i].Topic || del[i].Payload != nil {
			t.Errorf("deletion %d: %q %q, want an empty payload on %q", i, del[i].Topic, del[i].Payload, add[i].Topic)
		}
	}
}

var fixedTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// docs/mqtt.md shows the config of bought_today_kwh as the code writes it.
func TestDocShowsDiscovery(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "mqtt.md"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := Discovery(DefaultPrefix, testGateway(), summary.Fields)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if strings.HasSuffix(m.Topic, "/bought_today_kwh/config") {
			if !strings.Contains(string(doc), "`"+m.Topic+"`") || !strings.Contains(string(doc), "```json\n"+string(m.Payload)+"\n```") {
				t.Errorf("docs/mqtt.md does not show %s and its payload verbatim:\n%s", m.Topic, m.Payload)
			}
			return
		}
	}
	t.Fatal("no config of bought_today_kwh")
}
