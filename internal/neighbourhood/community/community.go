// Package community lays out who is in a community and how each of its
// gateways is configured, before anything runs: the operator (the primary
// clearer), the homes, their keys, the roster that lists them, and each
// gateway's validated configuration. internal/neighbourhood runs such a
// community on simulated homes; internal/soak builds its gateways from it.
//
// It is a leaf: it starts nothing and imports no daemon, broker or
// simulator, so that what the soak measures is its gateways' memory, not
// the package initialisation of parts it does not run.
package community

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// Operator is the gateway id of a community's operator: the primary
// clearer, with no meters of its own (the clearer of the shipped Mosquitto
// ACL, configs/mosquitto/acl).
const Operator = "operator"

// Layout is who is in a community and how each of its gateways is
// configured: the operator and the homes.
type Layout struct {
	// ID is the community id.
	ID string
	// Homes are the homes' gateway ids, in order.
	Homes []string
	// Standby, if set, is the home that stands by as clearer.
	Standby string
	// Configure, if set, adjusts a gateway's configuration after the
	// community's own settings (see Build): i is the gateway's place in
	// Build's members, 0 for the operator, 1 for Homes[0], and so on.
	Configure func(i int, cfg *config.Config)
	// Key is a gateway's key, given its configuration (where
	// cfg.DataDir is final). nil: the key in cfg.DataDir, created on
	// first use (protocol.LoadOrCreateKey), as the daemon does.
	Key func(cfg *config.Config) (ed25519.PrivateKey, error)
}

// Member is one gateway of a community: its validated configuration and
// its key.
type Member struct {
	Config *config.Config
	Key    ed25519.PrivateKey
}

// Build configures every gateway, the operator first and then the homes
// in order, and gets its key; the roster lists them all, the operator and
// the standby as clearers.
//
// A gateway's configuration is config.Default with the community id, its
// id as gateway and MQTT client id, its clearer role, the roster file
// "roster.json", and prices between a floor of 0.05 and a cap of 0.30 per
// kWh; then Configure's changes. It must then validate: an error names the
// gateway.
func (c Layout) Build() ([]Member, *protocol.Roster, error) {
	if len(c.Homes) == 0 {
		return nil, nil, fmt.Errorf("community %q: no homes", c.ID)
	}
	key := c.Key
	if key == nil {
		key = func(cfg *config.Config) (ed25519.PrivateKey, error) {
			k, _, err := protocol.LoadOrCreateKey(cfg.DataDir)
			return k, err
		}
	}
	standby := c.Standby == ""
	ids := append([]string{Operator}, c.Homes...)
	members := make([]Member, len(ids))
	entries := make([]protocol.Member, len(ids))
	for i, id := range ids {
		role := config.ClearerNone
		switch {
		case i == 0:
			role = config.ClearerPrimary
		case id == c.Standby:
			role, standby = config.ClearerStandby, true
		}
		cfg := config.Default()
		cfg.Gateway, cfg.Community, cfg.Roster, cfg.Clearer = id, c.ID, "roster.json", role
		cfg.MQTT.ClientID = id
		floor, ceil := decimal.RequireFromString("0.05"), decimal.RequireFromString("0.30")
		cfg.Market.PriceFloor, cfg.Market.PriceCap = &floor, &ceil
		if c.Configure != nil {
			c.Configure(i, cfg)
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, fmt.Errorf("community %q: configuration of %s: %w", c.ID, id, err)
		}
		k, err := key(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("community %q: key of %s: %w", c.ID, id, err)
		}
		members[i] = Member{Config: cfg, Key: k}
		entries[i] = protocol.Member{ID: id, PublicKey: k.Public().(ed25519.PublicKey), Clearer: role != config.ClearerNone}
	}
	if !standby {
		return nil, nil, fmt.Errorf("community %q: standby %q is not one of the homes", c.ID, c.Standby)
	}
	roster, err := protocol.NewRoster(c.ID, entries)
	if err != nil {
		return nil, nil, fmt.Errorf("community %q: roster: %w", c.ID, err)
	}
	return members, roster, nil
}

// SeededKeys derives each gateway's key from seed and its gateway id, so
// that processes that share seed agree on the roster without exchanging
// keys (the soak's homes and its clearer). For tests and measurements
// only: anyone who knows the seed has the keys.
func SeededKeys(seed string) func(cfg *config.Config) (ed25519.PrivateKey, error) {
	return func(cfg *config.Config) (ed25519.PrivateKey, error) {
		if cfg.Gateway == "" {
			return nil, errors.New("seeded key: no gateway id")
		}
		s := sha256.Sum256([]byte(seed + ": " + cfg.Gateway))
		return ed25519.NewKeyFromSeed(s[:]), nil
	}
}
