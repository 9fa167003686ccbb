package gateway

import (
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// Observer is told what a gateway has done with each interval: the demo's
// table, the soak's measurements and tests watch a community through it.
// Every call names the gateway (its id), so that one Observer can watch
// many gateways.
//
// The gateway calls it from its own goroutines (the loop and the MQTT
// handlers), perhaps from several at once, and waits for it: an Observer
// must be safe for concurrent use and must not block.
type Observer interface {
	// Verified is called after every verification of a published
	// clearing of interval (err nil: verified).
	Verified(gateway, interval string, v *clearing.Verdict, err error)
	// Sealed is called when the gateway, as clearer, has cleared and
	// published an interval.
	Sealed(gateway string, s *clearing.Sealed)
	// Settled is called after a published settlement verified (and went
	// into the ledger, if the gateway has one).
	Settled(gateway string, s *settlement.IntervalSettlement)
}

// ObserverFuncs is an Observer made of functions, for an observer that
// needs only one or two of them; a nil one is not called. The zero
// ObserverFuncs observes nothing: it is what a gateway without
// Options.Observer uses.
type ObserverFuncs struct {
	OnVerified func(gateway, interval string, v *clearing.Verdict, err error)
	OnSealed   func(gateway string, s *clearing.Sealed)
	OnSettled  func(gateway string, s *settlement.IntervalSettlement)
}

var _ Observer = ObserverFuncs{}

// Verified calls OnVerified, if set.
func (o ObserverFuncs) Verified(gw, interval string, v *clearing.Verdict, err error) {
	if o.OnVerified != nil {
		o.OnVerified(gw, interval, v, err)
	}
}

// Sealed calls OnSealed, if set.
func (o ObserverFuncs) Sealed(gw string, s *clearing.Sealed) {
	if o.OnSealed != nil {
		o.OnSealed(gw, s)
	}
}

// Settled calls OnSettled, if set.
func (o ObserverFuncs) Settled(gw string, s *settlement.IntervalSettlement) {
	if o.OnSettled != nil {
		o.OnSettled(gw, s)
	}
}
