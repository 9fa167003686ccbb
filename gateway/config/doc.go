// Package config is the gateway's one configuration file: a YAML document
// that says which gateway this is, which community it trades in, where its
// MQTT broker, meters and inverters are, the community's market rules,
// the home's own price policy, and what its phone app and Home Assistant
// are shown (the apps section: the time zone of "today", discovery). configs/gateway.example.yaml is a complete,
// commented example.
//
// Load reads the file; Parse takes its bytes. Both apply the defaults, then
// the file, then environment overrides, then check the result once, at the
// door, so the rest of the gateway can trust every value it is handed:
//
//   - Every key is known. An unknown or repeated key, or a value of the
//     wrong kind, is an error naming the key's full path and its line:
//     `config gateway.yaml: line 12: market.interval: "15x" is not a duration`.
//   - Decimals (prices, kWh, k, fee) are read from the YAML text exactly,
//     never through float64: 0.1 is 0.1.
//   - Every scalar setting can be overridden by an environment variable
//     P2PGRID_<PATH>, the key's path upper-cased with '_' between segments:
//     P2PGRID_MQTT_PASSWORD, P2PGRID_MARKET_INTERVAL, P2PGRID_DEVICES_0_URL.
//     An unknown P2PGRID_ variable is an error, so a typo is never ignored
//     (P2PGRID_CONFIG, the file's path for cmd/p2pgrid, is the one exception).
//   - Cross-field rules (the interval divides a day, gate closure falls
//     inside it and leaves the metered figures time to arrive, the floor
//     is below the cap, one grid meter at most, mqtt.broker or
//     mqtt.brokers, ...)
//     are checked by Validate, and the market section must make a valid
//     auction.Market.
//
// Validate checks a setting with the check of the component that uses it:
// device URLs with meter/bus.CheckURL, profile names with
// meter/profile.ValidName, each broker URL with gateway/mqtt.CheckBroker
// (and a list of them with mqtt.SameFamily). So
// a value the file passes with is one the component takes. CheckRoster
// checks the configuration against a roster the caller has read. Errors are
// *Error, joined in file order (Join); KeyError places an error found
// elsewhere at its key's line.
//
// The package reads the configuration file and, when mqtt.password_file is
// set, the password file; nothing else. It does not open devices, brokers,
// profiles or the roster: gateway/daemon.Check does, the one check of
// everything the gateway refuses at start, which p2pgrid config check runs.
package config
