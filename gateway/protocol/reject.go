package protocol

import (
	"errors"
	"fmt"
)

// RejectReason says why a message was rejected, in a form fit for a metric
// label (p2pgrid_clearer_orders_rejected_total{reason="forged"}).
type RejectReason string

// The reasons. Decoders and Verify methods return the first group; the
// clearer, which knows the interval it is collecting and what it has
// received, decides the second.
const (
	// RejectMalformed: not a valid message: bad JSON, an unknown, repeated,
	// missing or mistyped key, a bad id or interval, a version other than 1.
	RejectMalformed RejectReason = "malformed"
	// RejectOversize: the payload is larger than the message's size limit.
	RejectOversize RejectReason = "oversize"
	// RejectUnsigned: the signature is missing or empty.
	RejectUnsigned RejectReason = "unsigned"
	// RejectForged: the signature does not verify with the roster key of the
	// gateway the message names, that gateway is not in the roster, or a
	// result or book names a clearer the roster does not mark as one.
	RejectForged RejectReason = "forged"
	// RejectWrongCommunity: the message is for another community.
	RejectWrongCommunity RejectReason = "wrong_community"
	// RejectDuplicate: a second, different order from the same gateway for
	// the same interval (the first one stands), or a book listing a gateway
	// twice.
	RejectDuplicate RejectReason = "duplicate"
	// RejectInvalid: well formed and authentic, but against the market rules
	// (kWh or price out of range, too many decimals, ...).
	RejectInvalid RejectReason = "invalid"

	// RejectWrongInterval: the order names an interval other than the one
	// being collected (the clearer decides; a book decides for its orders).
	RejectWrongInterval RejectReason = "wrong_interval"
	// RejectLate: the order arrived after its interval's book was sealed
	// (the clearer decides).
	RejectLate RejectReason = "late"
	// RejectReplayed: an order identical to one already received for the
	// interval, such as a QoS 1 redelivery or someone re-posting it (the
	// clearer decides).
	RejectReplayed RejectReason = "replayed"
	// RejectRateLimited: more messages on one gateway's topic in one
	// interval than a gateway ever sends; dropped before they are checked
	// (the receiver decides).
	RejectRateLimited RejectReason = "rate_limited"
)

// RejectReasons lists every reason, for initialising metric label values.
var RejectReasons = []RejectReason{
	RejectMalformed, RejectOversize, RejectUnsigned, RejectForged, RejectWrongCommunity,
	RejectDuplicate, RejectInvalid, RejectWrongInterval, RejectLate, RejectReplayed, RejectRateLimited,
}

// RejectError is the error of every decoder and Verify method of this
// package (except ParseRoster, which reads configuration): why the message
// was rejected, and what exactly was wrong.
type RejectError struct {
	Reason RejectReason
	Err    error
}

func (e *RejectError) Error() string { return fmt.Sprintf("%v (%s)", e.Err, e.Reason) }
func (e *RejectError) Unwrap() error { return e.Err }

// ReasonOf returns the reason of the first *RejectError in err's chain, or ""
// when there is none (including err == nil).
func ReasonOf(err error) RejectReason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// reject builds a *RejectError from a format; a *RejectError among the
// arguments is wrapped by its inner error, so the reason is not repeated.
func reject(reason RejectReason, format string, a ...any) *RejectError {
	for i, v := range a {
		if re, ok := v.(*RejectError); ok {
			a[i] = re.Err
		}
	}
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, a...)}
}
