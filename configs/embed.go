// Package configs holds the files p2pgrid ships with: the commented example
// configurations (configs/examples/), the Mosquitto configuration and ACL
// of a community broker (configs/mosquitto/; its tests check that the docs
// show that one ACL verbatim) and the built-in device profiles
// (configs/devices/*.yaml), the Modbus register maps of the meters and
// inverters the gateway knows without any setup.
//
// Only the device profiles are embedded; meter/profile parses and checks
// them. It knows nothing of what the files mean.
package configs

import "embed"

// Devices holds the built-in device profiles as devices/<name>.yaml. A
// profile's name is its file name without .yaml; meter/profile.Builtin
// parses every one of them.
//
//go:embed devices/*.yaml
var Devices embed.FS
