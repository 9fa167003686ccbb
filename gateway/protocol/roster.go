package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Roster is a community's member list: every gateway's id and public key, and
// which gateways may clear, in this JSON form:
//
//	{"community":"c1","gateways":[{"id":"home1","public_key":"ed25519:...","clearer":true}, ...]}
//
// It is the trust anchor of the protocol. With an operator key, a roster
// comes inside a RosterMsg, a version the operator signed, and changes live
// (Rosters); without, the operator distributes it as a plain file that
// every gateway takes from its configuration, fixed until a restart
// (FixedRosters), and the primary clearer's copy on the roster topic is
// information for apps and tools.
//
// A Roster is read-only once built by ParseRoster or NewRoster, and safe for
// concurrent use.
type Roster struct {
	Community string
	Gateways  []Member // sorted by id

	byID map[string]int // index into Gateways
}

// Member is one gateway of a roster.
type Member struct {
	ID        string
	PublicKey ed25519.PublicKey
	Clearer   bool // may publish books and results
}

// MaxRosterSize bounds a roster's JSON: about 6000 gateways.
const MaxRosterSize = 1 << 20

// NewRoster checks a member list and builds a roster from it: valid ids and
// keys, no id or key twice, at least one clearer. The members are copied and
// sorted by id.
func NewRoster(community string, members []Member) (*Roster, error) {
	if err := CheckID(community); err != nil {
		return nil, fmt.Errorf("roster: community %q: %w", community, err)
	}
	if len(members) == 0 {
		return nil, errors.New("roster: no gateways")
	}
	r := &Roster{Community: community, Gateways: slices.Clone(members), byID: make(map[string]int, len(members))}
	byKey := make(map[string]string, len(members))
	clearers := 0
	for i, m := range r.Gateways {
		if err := CheckID(m.ID); err != nil {
			return nil, fmt.Errorf("roster: gateways[%d]: id %q: %w", i, m.ID, err)
		}
		if len(m.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("roster: gateway %q: public key of %d bytes (want %d)", m.ID, len(m.PublicKey), ed25519.PublicKeySize)
		}
		if _, dup := r.byID[m.ID]; dup {
			return nil, fmt.Errorf("roster: gateway %q: listed twice", m.ID)
		}
		if other, dup := byKey[string(m.PublicKey)]; dup {
			return nil, fmt.Errorf("roster: gateway %q: same public key as gateway %q (each gateway has its own key)", m.ID, other)
		}
		r.byID[m.ID], byKey[string(m.PublicKey)] = i, m.ID
		if m.Clearer {
			clearers++
		}
	}
	if clearers == 0 {
		return nil, errors.New(`roster: no gateway is marked "clearer": true`)
	}
	slices.SortFunc(r.Gateways, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	for i, m := range r.Gateways {
		r.byID[m.ID] = i
	}
	return r, nil
}

// ParseRoster reads a roster in its JSON form, strictly: unknown or repeated
// keys, a missing id or key, an id or key listed twice and a malformed key
// are rejected with an error naming the entry.
func ParseRoster(data []byte) (*Roster, error) {
	if len(data) > MaxRosterSize {
		return nil, fmt.Errorf("roster: %d bytes (at most %d)", len(data), MaxRosterSize)
	}
	var community string
	var members []Member
	err := decodeObject(data,
		field{"community", true, str(&community)},
		field{"gateways", true, func(raw []byte) error {
			return walkArray(raw, func(i int, raw []byte) error {
				var m Member
				var key string
				err := decodeObject(raw,
					field{"id", true, str(&m.ID)},
					field{"public_key", true, str(&key)},
					field{"clearer", false, boolean(&m.Clearer)},
				)
				who := fmt.Sprintf("gateways[%d]", i)
				if CheckID(m.ID) == nil {
					who = fmt.Sprintf("gateway %q", m.ID)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", who, err)
				}
				if m.PublicKey, err = ParsePublicKey(key); err != nil {
					return fmt.Errorf("%s: %w", who, err)
				}
				members = append(members, m)
				return nil
			})
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("roster: %w", err)
	}
	return NewRoster(community, members)
}

// Encode writes the roster in its JSON form, gateways sorted by id,
// "clearer" only when true. The encoding is canonical: two rosters with the
// same members encode to the same bytes.
func (r *Roster) Encode() []byte {
	b := append([]byte(`{"community":`), appendString(nil, r.Community)...)
	b = append(b, `,"gateways":[`...)
	for i, m := range r.Gateways {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, m.ID)
		b = appendField(b, "public_key", PublicKeyString(m.PublicKey))
		if m.Clearer {
			b = append(b, `,"clearer":true`...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// member finds a gateway by id.
func (r *Roster) member(id string) (Member, bool) {
	if r.byID == nil { // a Roster literal: search
		for _, m := range r.Gateways {
			if m.ID == id {
				return m, true
			}
		}
		return Member{}, false
	}
	i, ok := r.byID[id]
	if !ok {
		return Member{}, false
	}
	return r.Gateways[i], true
}

// Key returns the public key of gateway id, if it is a member.
func (r *Roster) Key(id string) (ed25519.PublicKey, bool) {
	m, ok := r.member(id)
	return m.PublicKey, ok
}

// IsClearer reports whether gateway id is a member marked as a clearer.
func (r *Roster) IsClearer(id string) bool {
	m, ok := r.member(id)
	return ok && m.Clearer
}
