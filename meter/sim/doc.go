// Package sim simulates homes for the demo and the tests: each home has a
// grid meter (the Eastron SDM630 register map) and a SunSpec solar inverter
// (models 1 + 103, or 1 + 113), served over Modbus TCP and Modbus RTU on a
// serial port or pty.
//
// A home's solar output follows a seeded clear-sky curve with passing clouds;
// its consumption a seeded household load profile. Homes of ModelH0
// (H0Homes) are worth measuring a market on instead: consumption shaped like
// the BDEW H0 standard load profile by season and day type, scaled to an
// annual consumption; solar from the sun's position at the community's
// latitude and longitude with a clear-sky irradiance model and seeded daily
// cloudiness; some with a self-consumption battery, some with an EV charging
// in the evening. Simulated time runs
// faster than wall-clock time by a chosen factor. Power is held constant
// over each step of simulated time, whole watts, and the energy counters
// are the exact integral of that power (kept in W·ms, reported in Wh).
//
// The register layouts come from the same data the reader uses: the SDM630
// device profile (meter/profile) and the SunSpec model definitions
// (meter/sunspec). The simulator knows nothing of markets.
package sim
