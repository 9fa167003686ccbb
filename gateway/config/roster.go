package config

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// OperatorPublicKey returns the operator's public key, nil when
// OperatorKey is "" (or, in a Config not validated, malformed).
func (c *Config) OperatorPublicKey() ed25519.PublicKey {
	if c.OperatorKey == "" {
		return nil
	}
	pub, err := protocol.ParsePublicKey(c.OperatorKey)
	if err != nil {
		return nil
	}
	return pub
}

// CheckRoster checks the configuration against the community roster r (which
// the caller has read from c.Roster): r is the roster of c.Community, it
// lists c.Gateway, and a gateway configured as a clearer is marked clearer
// in it. With key, the gateway's public key, not nil, the roster's key for
// the gateway must be key; pass nil when the gateway has no key yet (p2pgrid
// config check before the first start).
//
// Every problem found is an *Error about the key it concerns (community,
// gateway, clearer), placed at its line, as Validate's; they are joined
// with Join. These are the checks the gateway makes at start.
func (c *Config) CheckRoster(r *protocol.Roster, key ed25519.PublicKey) error {
	if r == nil {
		return c.KeyError("roster", errors.New("no roster"))
	}
	var errs []error
	if r.Community != c.Community {
		errs = append(errs, c.KeyError("community", fmt.Errorf("%q, but the roster %s is for community %q", c.Community, c.Roster, r.Community)))
		return Join(errs...) // its members are another community's
	}
	pub, ok := r.Key(c.Gateway)
	switch {
	case !ok && key != nil:
		errs = append(errs, c.KeyError("gateway", fmt.Errorf("%q is not in the roster of %q; add its public key %s", c.Gateway, c.Community, protocol.PublicKeyString(key))))
	case !ok:
		errs = append(errs, c.KeyError("gateway", fmt.Errorf("%q is not in the roster of %q; add its public key (p2pgrid key --data %s prints it)", c.Gateway, c.Community, c.DataDir)))
	case key != nil && !pub.Equal(key):
		errs = append(errs, c.KeyError("gateway", fmt.Errorf("the roster of %q has another public key for %q than its key file in %s (%s)", c.Community, c.Gateway, c.DataDir, protocol.PublicKeyString(key))))
	}
	if ok && c.Clearer != ClearerNone && !r.IsClearer(c.Gateway) {
		errs = append(errs, c.KeyError("clearer", fmt.Errorf("%s, but the roster of %q does not mark %q as a clearer", c.Clearer, c.Community, c.Gateway)))
	}
	return Join(errs...)
}
