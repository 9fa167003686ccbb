// Package sunspec finds and reads SunSpec devices: most solar inverters and
// many meters describe their Modbus registers with the SunSpec Alliance's
// information models instead of a vendor map.
//
// Discover looks for the "SunS" marker at holding register 40000, then 0,
// then 50000, walks the chain of models that follows it, reads the common
// model (manufacturer, model, serial number) and picks the first model this
// package can turn into a meter.Reading:
//
//   - inverters: 101, 102, 103 (integers with scale factors) and 111, 112,
//     113 (float32);
//   - AC meters: 201, 202, 203, 204 (integers with scale factors) and 211,
//     212, 213, 214 (float32).
//
// (*Device).Read then reads that model's block in one request per poll
// (every supported model is at most 125 registers long, so a value and its
// scale factor always arrive together) and decodes it.
//
// Decoding is driven by data: the SunSpec JSON model definitions are
// embedded from models/ (Apache-2.0, see models/README.md) and give every
// point's offset, size, type, scale-factor point and units; Definition
// returns them. Nothing here hard-codes a register offset.
//
// Values the device reports as "not implemented" (int16 0x8000, uint16
// 0xFFFF, acc32 0, int32 0x80000000, uint32 0xFFFFFFFF, float32 NaN, or a
// scale factor of 0x8000) are missing (nil) in the reading, never zero.
// Energy counters become whole Wh in int64 with exact decimal arithmetic
// (value × 10^sf, rounded half away from zero only when there is a
// fraction); instantaneous values are computed in decimal and converted to
// float64 once.
//
// Sign conventions: an inverter's W is positive when it produces (SunSpec
// inverter models measure AC output), and becomes power_w; its lifetime WH
// becomes export_wh. A meter's W becomes power_w unchanged, and meter.Reading
// reads power_w > 0 as importing from the grid. The SunSpec JSON
// definitions do not state the sign of a meter's W (its description is only
// "Total Real Power"); import-positive is the usual metering convention, but
// some devices (for example meters read through an inverter) report
// export-positive. Device.NegatePower flips W and the per-phase W for such
// devices; import_wh and export_wh (TotWhImp, TotWhExp) are unambiguous.
//
// Image builds SunSpec register images from point values, for the
// simulator and the tests.
//
// The package knows nothing of markets, nor of how registers are
// transported: it asks for holding registers through the one-method
// Registers interface (meter/bus provides it).
package sunspec
