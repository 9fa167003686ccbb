package gatewaytest

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// RosterVersion is version seq of r, valid from the delivery interval
// starting at from, signed with operator, as a gateway decodes it.
func RosterVersion(tb testing.TB, operator ed25519.PrivateKey, r *protocol.Roster, seq uint64, from time.Time) *protocol.RosterMsg {
	tb.Helper()
	data, err := protocol.EncodeRoster(operator, r, seq, from)
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := protocol.DecodeRoster(data)
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}
