package dashboard

// Live is a live feed of the community's gateways: what a ledger alone
// does not tell. p2pgrid demo implements it from its in-process gateways.
// Its methods are called from HTTP handlers, concurrently, and must not
// block.
type Live interface {
	// Gateways is every gateway's status, sorted by id.
	Gateways() []GatewayStatus
	// Verifications is each gateway's verification of the published
	// result of interval, sorted by gateway; nil if none is known.
	Verifications(interval string) []Verification
}

// GatewayStatus is one gateway's status.
type GatewayStatus struct {
	ID     string
	Online bool
	// Status is its own word for its state ("ok", "degraded", or why it
	// is not online).
	Status string
	Alarms []string // kinds of the open alarms
}

// Verification is one gateway's verification of an interval's result.
type Verification struct {
	Gateway  string
	Verified bool
	Err      string // why not, if not
}
