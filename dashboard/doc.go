// Package dashboard is the operator's web dashboard, the last stage of the
// data flow meter -> gateway -> MQTT -> auction -> gateway -> settlement
// -> operator view: a read-only web server over a gateway's ledger (usually
// the operator's clearer's) that shows, per interval and over the period,
// what the community traded, what it kept locally and what each home saved
// against the grid, and pushes each newly settled interval to open pages
// with server-sent events.
//
// It reads the ledger as `p2pgrid settlements` does (ledger.Scan: without
// the gateway's write lock, safe next to a running gateway) and polls it
// for new records. Its model keeps an aggregate per interval for the whole
// ledger and the full detail of recent intervals only; older detail, and
// statements for a chosen period, are read from the ledger on demand.
// Gateways' status and their verification of each interval come from a
// Live feed, when there is one (p2pgrid demo's in-process gateways); a
// ledger alone does not tell them.
//
// Pages are server-rendered HTML (html/template) with charts drawn in Go
// as inline SVG; every asset is embedded in the binary. The package knows
// nothing of MQTT, Modbus or InfluxDB.
package dashboard
