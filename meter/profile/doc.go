// Package profile turns Modbus register maps, kept as data, into meter
// readings.
//
// A device profile is a YAML file (the built-in ones are in
// configs/devices/, a user's own in a profile directory) naming, for each
// quantity the gateway needs (power, energy counters, frequency, per-phase
// voltage, current and power), the register type and address, how its
// bits are encoded, and the decimal scale that brings it to the base unit
// (W, Wh, Hz, V, A). Parse checks a profile once, strictly, and every
// error names the profile and the register.
//
// From a profile the package plans the reads (Plan: as few requests as
// possible), polls a device through anything that reads registers
// (Registers, which meter/bus.Bus satisfies) and decodes the answer into
// a meter.Reading: energy counters are rounded once, in decimal, to whole
// Wh; a NaN or a value the profile marks as missing becomes a nil field,
// never a zero. Image goes the other way, building the registers a device
// with given values would serve, for the simulator and the tests.
//
// It knows nothing of buses, serial ports or connections (Registers is
// all it asks for), nor of SunSpec (meter/sunspec), markets or money.
package profile
