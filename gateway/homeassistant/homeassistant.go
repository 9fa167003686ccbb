// Package homeassistant builds the Home Assistant MQTT discovery messages
// of a home's gateway: one retained config message per single value of
// package summary, on <prefix>/sensor/p2pgrid_<gateway>/<key>/config,
// so that a neighbour's Home Assistant shows the gateway's sensors with
// no configuration of its own, its energy totals usable in the energy
// dashboard, and each sensor available while the gateway's retained
// status says "online".
//
// Which device and state class each value gets follows Home Assistant's
// sensor documentation (developers.home-assistant.io, "Sensor entity":
// device classes, their units, the state classes each allows), written
// once in Sensor. The package is pure: it builds payloads, and knows
// nothing of brokers, ledgers or the gateway.
package homeassistant

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/p2pgrid/p2pgrid/gateway/summary"
)

// DefaultPrefix is Home Assistant's default discovery prefix.
const DefaultPrefix = "homeassistant"

// Component is the Home Assistant component of every message: a sensor.
const Component = "sensor"

// Home Assistant's device classes, state classes and units used here.
const (
	ClassEnergy   = "energy"
	ClassMonetary = "monetary"

	StateMeasurement     = "measurement"
	StateTotal           = "total"
	StateTotalIncreasing = "total_increasing"

	UnitKWh = "kWh"
)

// Availability is what a sensor's availability is bound to: the gateway's
// retained status message (gateway/protocol.Status), JSON whose "state"
// is "online" or "offline" (its MQTT last will).
type Availability struct {
	Topic string
}

// Gateway is the home's gateway, the device its sensors belong to.
type Gateway struct {
	Community, ID string
	Version       string // the gateway's software version
	Currency      string // ISO 4217, the unit of money values
	// StatusTopic is the gateway's status topic, which availability is
	// bound to.
	StatusTopic string
	// StateTopic returns the single-value topic of a summary key.
	StateTopic func(key string) string
}

// Message is one discovery message: retained, QoS 1.
type Message struct {
	Topic   string
	Payload []byte // nil: delete the retained config (Remove)
}

// ErrName is wrapped by the errors about ids Home Assistant cannot take.
var ErrName = errors.New("not a valid Home Assistant discovery topic level")

// checkLevel checks a node or object id: Home Assistant reads discovery
// topics with the levels of [A-Za-z0-9_-] only, and ignores others.
func checkLevel(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s %q: %w (empty)", what, s, ErrName)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%s %q: %w: Home Assistant takes only A-Z, a-z, 0-9, _ and - there, not %q", what, s, ErrName, c)
		}
	}
	return nil
}

// NodeID is the node id of gateway's discovery topics, "p2pgrid_" and its
// id; an id with '.' or ':' (valid for p2pgrid) is an error wrapping
// ErrName, since Home Assistant would ignore its messages.
func NodeID(gateway string) (string, error) {
	id := "p2pgrid_" + gateway
	if err := checkLevel("gateway id", gateway); err != nil {
		return "", err
	}
	return id, nil
}

// CheckPrefix checks a discovery prefix: one or more topic levels, none
// empty, without MQTT wildcards.
func CheckPrefix(prefix string) error {
	if prefix == "" || strings.ContainsAny(prefix, "+#\x00") {
		return fmt.Errorf("discovery prefix %q: want MQTT topic levels without + or # (Home Assistant's default is %s)", prefix, DefaultPrefix)
	}
	for _, l := range strings.Split(prefix, "/") {
		if l == "" {
			return fmt.Errorf("discovery prefix %q: an empty topic level", prefix)
		}
	}
	return nil
}

// Topic is the discovery topic of one value of gateway.
func Topic(prefix, nodeID, key string) string {
	return prefix + "/" + Component + "/" + nodeID + "/" + key + "/config"
}

// Sensor is the device class, state class and unit of a value, as Home
// Assistant's sensor documentation has them:
//   - energy totals that start again each day or month are "energy",
//     "total_increasing", kWh: a total_increasing value that decreases is
//     read as a new cycle (a reset), which is what midnight is, and the
//     energy dashboard takes energy sensors of state class total or
//     total_increasing;
//   - the last trade's energy is "energy" with no state class (it is no
//     total, and energy allows no other class);
//   - money is "monetary" in the currency, with no state class: monetary
//     allows only "total" or none, and a "total" without last_reset
//     would read each midnight's reset as money lost;
//   - prices (money per kWh) have no device class (monetary takes a bare
//     currency only) and are a "measurement", unit <currency>/kWh;
//   - text has none of the three.
func Sensor(f summary.Field, currency string) (deviceClass, stateClass, unit string) {
	switch f.Kind {
	case summary.KindEnergy:
		if f.Reset != summary.NoReset {
			return ClassEnergy, StateTotalIncreasing, UnitKWh
		}
		return ClassEnergy, "", UnitKWh
	case summary.KindMoney:
		return ClassMonetary, "", currency
	case summary.KindPrice:
		return "", StateMeasurement, currency + "/" + UnitKWh
	}
	return "", "", ""
}

// The shape of a sensor's discovery payload (Home Assistant's MQTT
// sensor, "Discovery" and "Using abbreviations" not used: full keys).
type (
	config struct {
		Name             string         `json:"name"`
		UniqueID         string         `json:"unique_id"`
		StateTopic       string         `json:"state_topic"`
		DeviceClass      string         `json:"device_class,omitempty"`
		StateClass       string         `json:"state_class,omitempty"`
		Unit             string         `json:"unit_of_measurement,omitempty"`
		EntityCategory   string         `json:"entity_category,omitempty"`
		Availability     []availability `json:"availability"`
		AvailabilityMode string         `json:"availability_mode"`
		Device           device         `json:"device"`
		Origin           origin         `json:"origin"`
	}
	availability struct {
		Topic               string `json:"topic"`
		ValueTemplate       string `json:"value_template"`
		PayloadAvailable    string `json:"payload_available"`
		PayloadNotAvailable string `json:"payload_not_available"`
	}
	device struct {
		Identifiers  []string `json:"identifiers"`
		Name         string   `json:"name"`
		Manufacturer string   `json:"manufacturer"`
		Model        string   `json:"model"`
		SWVersion    string   `json:"sw_version"`
	}
	origin struct {
		Name       string `json:"name"`
		SWVersion  string `json:"sw_version"`
		SupportURL string `json:"support_url"`
	}
)

// Manufacturer and Model are the device info's.
const (
	Manufacturer = "p2pgrid"
	Model        = "p2pgrid gateway"
	supportURL   = "https://github.com/p2pgrid/p2pgrid"
)

// diagnostic are the values Home Assistant shows under the device's
// diagnostics rather than among its sensors.
var diagnostic = map[string]bool{summary.KeyCurrency: true, summary.KeyPriceInterval: true}

// Discovery returns the discovery messages of every field of gateway g
// under prefix, in the order of fields. It fails on a prefix or a gateway
// id Home Assistant cannot take (CheckPrefix, NodeID).
func Discovery(prefix string, g Gateway, fields []summary.Field) ([]Message, error) {
	node, err := check(prefix, g)
	if err != nil {
		return nil, err
	}
	dev := device{Identifiers: []string{"p2pgrid_" + g.Community + "_" + g.ID}, Name: "p2pgrid " + g.ID,
		Manufacturer: Manufacturer, Model: Model, SWVersion: g.Version}
	out := make([]Message, 0, len(fields))
	for _, f := range fields {
		if err := checkLevel("value key", f.Key); err != nil {
			return nil, err
		}
		dc, sc, unit := Sensor(f, g.Currency)
		c := config{
			Name: f.Name, UniqueID: "p2pgrid_" + g.Community + "_" + g.ID + "_" + f.Key, StateTopic: g.StateTopic(f.Key),
			DeviceClass: dc, StateClass: sc, Unit: unit,
			Availability: []availability{{Topic: g.StatusTopic, ValueTemplate: "{{ value_json.state }}",
				PayloadAvailable: "online", PayloadNotAvailable: "offline"}},
			AvailabilityMode: "latest",
			Device:           dev,
			Origin:           origin{Name: "p2pgrid", SWVersion: g.Version, SupportURL: supportURL},
		}
		if diagnostic[f.Key] {
			c.EntityCategory = "diagnostic"
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("discovery of %s: %w", f.Key, err)
		}
		out = append(out, Message{Topic: Topic(prefix, node, f.Key), Payload: b})
	}
	return out, nil
}

// Remove returns the messages that delete gateway g's discovery configs
// under prefix (empty retained payloads): Home Assistant then removes the
// sensors. The gateway sends them when discovery is turned off.
func Remove(prefix string, g Gateway, fields []summary.Field) ([]Message, error) {
	node, err := check(prefix, g)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(fields))
	for _, f := range fields {
		out = append(out, Message{Topic: Topic(prefix, node, f.Key)})
	}
	return out, nil
}

func check(prefix string, g Gateway) (string, error) {
	if err := CheckPrefix(prefix); err != nil {
		return "", err
	}
	if g.StateTopic == nil || g.StatusTopic == "" {
		return "", errors.New("homeassistant: the gateway's state and status topics are not set")
	}
	return NodeID(g.ID)
}
