package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/p2pgrid/p2pgrid/market"
)

// RosterMsg is one version of a community's roster, signed by the
// community's operator key, published retained on the roster topic:
//
//	{"v":1,"community":"c1","seq":3,"valid_from":"2026-11-22T12:15Z",
//	 "roster":<the roster's canonical JSON>,"sig":"<base64>"}
//
// Seq numbers the versions from 1; a gateway accepts only a version newer
// than the newest it holds. ValidFrom is the first delivery interval the
// version governs: every gateway checks the orders, books, results,
// metered figures and settlements of an interval against the roster in
// effect for it (Rosters.At), so a member added or removed counts from the
// same interval everywhere, whenever each gateway received the version.
//
// The operator key is not a gateway's key: it signs rosters and nothing
// else, and every gateway is given its public key when it joins
// (config: operator_key).
type RosterMsg struct {
	Community string
	Seq       uint64
	ValidFrom string  // interval id
	Roster    *Roster // its Encode is the "roster" bytes
	Sig       []byte  // the operator's Ed25519 signature of rosterText
}

// rosterText is the canonical text the operator signs.
func rosterText(community string, seq uint64, validFrom string, roster []byte) []byte {
	sum := sha256.Sum256(roster)
	return fmt.Appendf(nil, "p2pgrid-roster/1\ncommunity %s\nseq %d\nvalid_from %s\nroster %s\n",
		community, seq, validFrom, hex.EncodeToString(sum[:]))
}

// EncodeRoster signs version seq of r, in effect from the delivery interval
// validFrom on, with the operator's key, and returns the message to
// publish retained on the roster topic (and to keep as the roster file).
func EncodeRoster(operator ed25519.PrivateKey, r *Roster, seq uint64, validFrom time.Time) ([]byte, error) {
	if len(operator) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("encode roster: operator key of %d bytes (want %d)", len(operator), ed25519.PrivateKeySize)
	}
	if seq == 0 {
		return nil, fmt.Errorf("encode roster of %q: seq 0 (versions count from 1)", r.Community)
	}
	if validFrom.IsZero() || !validFrom.Equal(validFrom.Truncate(time.Minute)) {
		return nil, fmt.Errorf("encode roster of %q: valid_from %v is not the start of an interval", r.Community, validFrom)
	}
	msg := &RosterMsg{Community: r.Community, Seq: seq, ValidFrom: market.IntervalID(validFrom), Roster: r}
	msg.Sig = ed25519.Sign(operator, rosterText(msg.Community, seq, msg.ValidFrom, r.Encode()))
	data := msg.Encode()
	if len(data) > MaxRosterSize {
		return nil, fmt.Errorf("encode roster of %q: %d bytes (at most %d)", r.Community, len(data), MaxRosterSize)
	}
	return data, nil
}

// DecodeRoster reads a roster message strictly (see DecodeOrder). The
// embedded roster must be valid (ParseRoster), in its canonical encoding,
// and of the envelope's community. A missing or empty "sig" is
// RejectUnsigned. Errors are *RejectError; Verify checks the signature.
func DecodeRoster(data []byte) (*RosterMsg, error) {
	if len(data) > MaxRosterSize {
		return nil, reject(RejectOversize, "roster: %d bytes (at most %d)", len(data), MaxRosterSize)
	}
	msg := &RosterMsg{}
	var raw []byte
	err := decodeObject(data,
		field{"v", true, version},
		field{"community", true, id(&msg.Community)},
		field{"seq", true, func(b []byte) error {
			n, err := strconv.ParseUint(string(b), 10, 64)
			if err != nil || n == 0 || b[0] == '0' {
				return fmt.Errorf("want a version number from 1, got %.20s", b)
			}
			msg.Seq = n
			return nil
		}},
		field{"valid_from", true, interval(&msg.ValidFrom)},
		field{"roster", true, func(b []byte) error { raw = bytes.Clone(b); return nil }},
		field{"sig", false, signature(&msg.Sig)},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "roster: %w", err)
	}
	if msg.Roster, err = ParseRoster(raw); err != nil {
		return nil, reject(RejectMalformed, "roster version %d: %w", msg.Seq, err)
	}
	if !bytes.Equal(msg.Roster.Encode(), raw) {
		return nil, reject(RejectMalformed, "roster version %d: not in its canonical encoding (gateways sorted by id, no spaces, \"clearer\" only when true)", msg.Seq)
	}
	if msg.Roster.Community != msg.Community {
		return nil, reject(RejectMalformed, "roster version %d: envelope of community %q holds the roster of %q", msg.Seq, msg.Community, msg.Roster.Community)
	}
	if len(msg.Sig) == 0 {
		return nil, reject(RejectUnsigned, "roster version %d of %q: no signature", msg.Seq, msg.Community)
	}
	return msg, nil
}

// Encode writes the message in its JSON form.
func (msg *RosterMsg) Encode() []byte {
	roster := msg.Roster.Encode()
	b := append(make([]byte, 0, 160+len(roster)), `{"v":1`...)
	b = appendField(b, "community", msg.Community)
	b = fmt.Appendf(b, `,"seq":%d`, msg.Seq)
	b = appendField(b, "valid_from", msg.ValidFrom)
	b = append(b, `,"roster":`...)
	b = append(b, roster...)
	b = appendField(b, "sig", base64.StdEncoding.EncodeToString(msg.Sig))
	return append(b, '}')
}

// Verify checks that the message is signed (RejectUnsigned), for community
// (RejectWrongCommunity), and that the signature verifies with the
// operator's public key (RejectForged).
func (msg *RosterMsg) Verify(operator ed25519.PublicKey, community string) error {
	if len(msg.Sig) == 0 {
		return reject(RejectUnsigned, "roster version %d of %q: no signature", msg.Seq, msg.Community)
	}
	if msg.Community != community {
		return reject(RejectWrongCommunity, "roster version %d: community %q, not %q", msg.Seq, msg.Community, community)
	}
	if len(operator) != ed25519.PublicKeySize || !ed25519.Verify(operator, rosterText(msg.Community, msg.Seq, msg.ValidFrom, msg.Roster.Encode()), msg.Sig) {
		return reject(RejectForged, "roster version %d of %q: the signature does not verify with the operator key", msg.Seq, msg.Community)
	}
	return nil
}

// Start is the first delivery interval the version governs.
func (msg *RosterMsg) Start() time.Time {
	t, _ := market.ParseInterval(msg.ValidFrom) // checked by DecodeRoster and EncodeRoster
	return t
}

// Rosters are the roster versions a gateway accepted, oldest first: which
// roster governs which interval. Safe for concurrent use.
type Rosters struct {
	operator  ed25519.PublicKey
	community string

	mu       sync.RWMutex
	versions []*RosterMsg // by Seq, increasing; ValidFrom never decreasing
}

// NewRosters starts a community's history with its first accepted version
// (the roster file a gateway was given, or the one it kept on disk), which
// must verify with the operator key.
func NewRosters(operator ed25519.PublicKey, first *RosterMsg) (*Rosters, error) {
	if err := first.Verify(operator, first.Community); err != nil {
		return nil, err
	}
	return &Rosters{operator: operator, community: first.Community, versions: []*RosterMsg{first}}, nil
}

// FixedRosters is the history of a gateway given a plain roster file and
// no operator key: r governs every interval, and no roster message can
// replace it (Accept rejects every one as RejectForged). Such a roster
// changes only with a restart on a new file.
func FixedRosters(r *Roster) *Rosters {
	return &Rosters{community: r.Community, versions: []*RosterMsg{{Community: r.Community, Roster: r}}}
}

// Fixed reports whether the history is a FixedRosters one.
func (h *Rosters) Fixed() bool { return h.operator == nil }

// maxRosterVersions bounds the versions kept: the older ones govern only
// intervals long past.
const maxRosterVersions = 16

// Accept takes a newer version: it must verify (RejectUnsigned,
// RejectWrongCommunity, RejectForged), be newer than the newest held
// (RejectReplayed), not take effect before the newest held does
// (RejectInvalid), nor before earliest (RejectLate): the caller passes the
// first delivery interval whose gate is still open, so that no interval
// whose book has closed is handed to another roster. It returns whether
// the version was new: the newest version again is not an error.
func (h *Rosters) Accept(msg *RosterMsg, earliest time.Time) (bool, error) {
	if h.Fixed() {
		return false, reject(RejectForged, "roster version %d of %q: no operator key is configured, so the roster file is the only roster", msg.Seq, msg.Community)
	}
	if err := msg.Verify(h.operator, h.community); err != nil {
		return false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	newest := h.versions[len(h.versions)-1]
	switch {
	case msg.Seq == newest.Seq && bytes.Equal(msg.Encode(), newest.Encode()):
		return false, nil
	case msg.Seq <= newest.Seq:
		return false, reject(RejectReplayed, "roster version %d of %q: not newer than version %d", msg.Seq, msg.Community, newest.Seq)
	case msg.Start().Before(newest.Start()):
		return false, reject(RejectInvalid, "roster version %d of %q: valid from %s, before version %d (valid from %s)",
			msg.Seq, msg.Community, msg.ValidFrom, newest.Seq, newest.ValidFrom)
	case msg.Start().Before(earliest):
		return false, reject(RejectLate, "roster version %d of %q: valid from %s, an interval whose gate has closed (the first open is %s)",
			msg.Seq, msg.Community, msg.ValidFrom, market.IntervalID(earliest))
	}
	h.versions = append(h.versions, msg)
	if len(h.versions) > maxRosterVersions {
		h.versions = h.versions[len(h.versions)-maxRosterVersions:]
	}
	return true, nil
}

// At returns the roster that governs the delivery interval starting at
// start: the newest version valid from start or before, or the oldest
// held if none is.
func (h *Rosters) At(start time.Time) *Roster {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for i := len(h.versions) - 1; i > 0; i-- {
		if !h.versions[i].Start().After(start) {
			return h.versions[i].Roster
		}
	}
	return h.versions[0].Roster
}

// Oldest returns the oldest version held: a gateway given a version when
// it joined knows nothing of the rosters before it.
func (h *Rosters) Oldest() *RosterMsg {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.versions[0]
}

// Newest returns the newest version held.
func (h *Rosters) Newest() *RosterMsg {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.versions[len(h.versions)-1]
}
