// Package meter reads smart meters and solar inverters over Modbus and turns
// their registers into readings: power, energy counters, per-phase values.
//
// It knows nothing of markets, orders or money. Its parts:
//
//   - meter (this package): Reading, the Device a gateway polls, staleness;
//   - meter/bus: one physical Modbus bus or connection (TCP, RTU on a serial
//     port, RTU over TCP), guarding the known faults of the client library;
//   - meter/profile: register maps as data (YAML device profiles in
//     configs/devices/), request planning and decoding;
//   - meter/sunspec: SunSpec discovery and the common, inverter and meter
//     models;
//   - meter/device: Open, the one way to build a configured device (a
//     profile, or SunSpec discovered on its first read); it cannot live in
//     this package, which profile and sunspec import;
//   - meter/sim: simulated homes (a grid meter and a SunSpec inverter each)
//     served over Modbus, for the demo and the tests.
package meter
