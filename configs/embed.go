// Package configs holds the files p2pgrid ships with: the commented example
// configurations (configs/examples/), the Mosquitto configuration and ACL
// of a community broker (configs/mosquitto/; its tests check that the docs
// show that one ACL verbatim) and the built-in device profiles
// (configs/devices/*.yaml), the Modbus register maps of the meters and
// inverters the gateway knows without any setup; and, not embedded, the
// example evcc configuration (configs/evcc/, docs/evcc.md) and the Grafana
// dashboard with its provisioning (configs/grafana/, docs/grafana.md).
//
// The device profiles are embedded, and meter/profile parses and checks
// them; so are the Mosquitto configuration and ACL, from which
// `p2pgrid community init` writes a community's (internal/operator). It
// knows nothing of what the files mean.
package configs

import "embed"

// Devices holds the built-in device profiles as devices/<name>.yaml. A
// profile's name is its file name without .yaml; meter/profile.Builtin
// parses every one of them.
//
//go:embed devices/*.yaml
var Devices embed.FS

// GatewayExample is the commented example configuration,
// gateway.example.yaml: the Debian package installs it as
// /etc/p2pgrid/gateway.yaml, and `p2pgrid join` replaces a configuration
// that is still exactly this example.
//
//go:embed gateway.example.yaml
var GatewayExample []byte

// Mosquitto holds the community broker's shipped configuration and ACL as
// mosquitto/mosquitto.conf and mosquitto/acl: internal/operator fills in
// a community's paths and users.
//
//go:embed mosquitto/mosquitto.conf mosquitto/acl
var Mosquitto embed.FS
