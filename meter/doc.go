// Package meter reads smart meters and solar inverters over Modbus (TCP, RTU
// and RTU over TCP) and turns their registers into readings: power, energy
// counters, per-phase values.
//
// It knows nothing of markets, orders or money. It is built in a later issue;
// for now it holds only this description so the layout tells the
// architecture.
package meter
