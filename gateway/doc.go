// Package gateway is the edge daemon of p2pgrid: it polls a home's meters
// (package meter), forecasts the home's surplus or deficit for the next
// delivery interval, and places one signed order per interval on MQTT. A
// gateway configured as clearer collects the community's orders, seals the
// book at gate closure, clears it (package auction) and publishes book and
// result; every gateway recomputes the published result from the published
// book and raises an alarm on any mismatch.
//
// Its parts:
//
//   - gateway (this package): the daemon loop, metrics and health;
//   - gateway/config: the YAML configuration;
//   - gateway/forecast: readings to an order's kWh;
//   - gateway/protocol: MQTT topics, payloads and signatures (docs/mqtt.md);
//   - gateway/clearing: the clearer and the verifier;
//   - gateway/mqtt: the MQTT client; gateway/broker: the embedded broker.
//
// It knows nothing of register maps: devices come in as meter.Device.
package gateway
