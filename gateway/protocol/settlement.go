package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// SettlementMsg is a clearer's settlement of one delivery interval,
// published retained on settlement/<interval> once the interval is over:
//
//	{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"operator",
//	 "metered":[<signed metered messages, by gateway id>],
//	 "settlement":<the settlement JSON>,"sig":"<base64>"}
//
// The metered messages are the gateways' own signed figures, verbatim, so
// that any gateway can recompute the settlement from the interval's result
// and these figures and compare bytes, as it does for the clearing.
type SettlementMsg struct {
	Community, Interval, Clearer string
	Metered                      []json.RawMessage // compact, by gateway id
	Settlement                   json.RawMessage   // compact, as package settlement wrote it
	Sig                          []byte
}

// MaxSettlementSize bounds a settlement message.
const MaxSettlementSize = 8 << 20

func settlementText(community, interval, clearer string, metered []json.RawMessage, settlement []byte) []byte {
	h := sha256.New()
	for _, m := range metered {
		h.Write(m)
		h.Write([]byte{'\n'})
	}
	ms := h.Sum(nil)
	ss := sha256.Sum256(settlement)
	return fmt.Appendf(nil, "p2pgrid-settlement/1\ncommunity %s\ninterval %s\nclearer %s\nmetered %s\nsettlement %s\n",
		community, interval, clearer, hex.EncodeToString(ms), hex.EncodeToString(ss[:]))
}

// EncodeSettlement signs a settlement as clearer. metered are the signed
// metered messages it used (any order; they are sorted by gateway).
func EncodeSettlement(key ed25519.PrivateKey, community, interval, clearer string, metered [][]byte, settlement []byte) ([]byte, error) {
	type entry struct {
		gw  string
		raw []byte
	}
	es := make([]entry, 0, len(metered))
	for i, raw := range metered {
		m, err := DecodeMetered(raw)
		if err != nil {
			return nil, fmt.Errorf("settlement %s: metered[%d]: %w", interval, i, err)
		}
		var buf bytes.Buffer
		json.Compact(&buf, raw) // cannot fail: DecodeMetered read it
		es = append(es, entry{m.Gateway, buf.Bytes()})
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.gw, b.gw) })
	msg := &SettlementMsg{Community: community, Interval: interval, Clearer: clearer, Settlement: settlement}
	for i, e := range es {
		if i > 0 && es[i-1].gw == e.gw {
			return nil, fmt.Errorf("settlement %s: two metered messages of %q", interval, e.gw)
		}
		msg.Metered = append(msg.Metered, e.raw)
	}
	if !json.Valid(settlement) || len(settlement) == 0 || settlement[0] != '{' {
		return nil, fmt.Errorf("settlement %s: the settlement is not a JSON object", interval)
	}
	msg.Sig = ed25519.Sign(key, settlementText(community, interval, clearer, msg.Metered, settlement))
	data := msg.Encode()
	if len(data) > MaxSettlementSize {
		return nil, fmt.Errorf("settlement %s: %d bytes (at most %d)", interval, len(data), MaxSettlementSize)
	}
	return data, nil
}

// Encode writes the message in its JSON form.
func (msg *SettlementMsg) Encode() []byte {
	b := append(make([]byte, 0, 256+len(msg.Settlement)), `{"v":1`...)
	b = appendField(b, "community", msg.Community)
	b = appendField(b, "interval", msg.Interval)
	b = appendField(b, "clearer", msg.Clearer)
	b = append(b, `,"metered":[`...)
	for i, m := range msg.Metered {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	b = append(b, `],"settlement":`...)
	b = append(b, msg.Settlement...)
	b = appendField(b, "sig", base64.StdEncoding.EncodeToString(msg.Sig))
	return append(b, '}')
}

// DecodeSettlement reads a settlement message strictly.
func DecodeSettlement(data []byte) (*SettlementMsg, error) {
	if len(data) > MaxSettlementSize {
		return nil, reject(RejectOversize, "settlement: %d bytes (at most %d)", len(data), MaxSettlementSize)
	}
	msg := &SettlementMsg{}
	err := decodeObject(data,
		field{"v", true, version},
		field{"community", true, id(&msg.Community)},
		field{"interval", true, interval(&msg.Interval)},
		field{"clearer", true, id(&msg.Clearer)},
		field{"metered", true, func(raw []byte) error {
			return walkArray(raw, func(i int, raw []byte) error {
				var buf bytes.Buffer
				if err := json.Compact(&buf, raw); err != nil {
					return fmt.Errorf("metered[%d]: %w", i, err)
				}
				if _, err := DecodeMetered(buf.Bytes()); err != nil {
					return fmt.Errorf("metered[%d]: %w", i, err)
				}
				msg.Metered = append(msg.Metered, buf.Bytes())
				return nil
			})
		}},
		field{"settlement", true, func(raw []byte) error {
			if len(raw) == 0 || raw[0] != '{' {
				return fmt.Errorf("want a JSON object")
			}
			msg.Settlement = bytes.Clone(raw)
			return nil
		}},
		field{"sig", false, signature(&msg.Sig)},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "settlement: %w", err)
	}
	if len(msg.Sig) == 0 {
		return nil, reject(RejectUnsigned, "settlement %s from %q: no signature", msg.Interval, msg.Clearer)
	}
	return msg, nil
}

// Verify checks the clearer's signature (a roster clearer) and every
// metered message's signature, community and interval. It returns the
// metered messages decoded.
func (msg *SettlementMsg) Verify(r *Roster) ([]*MeteredMsg, error) {
	if msg.Community != r.Community {
		return nil, reject(RejectWrongCommunity, "settlement %s: community %q, not %q", msg.Interval, msg.Community, r.Community)
	}
	pub, ok := r.Key(msg.Clearer)
	if !ok || !r.IsClearer(msg.Clearer) {
		return nil, reject(RejectForged, "settlement %s: %q is not a clearer of the roster", msg.Interval, msg.Clearer)
	}
	if !ed25519.Verify(pub, settlementText(msg.Community, msg.Interval, msg.Clearer, msg.Metered, msg.Settlement), msg.Sig) {
		return nil, reject(RejectForged, "settlement %s: the signature does not verify with clearer %q's key", msg.Interval, msg.Clearer)
	}
	var out []*MeteredMsg
	for i, raw := range msg.Metered {
		m, err := DecodeMetered(raw)
		if err != nil {
			return nil, err
		}
		if m.Interval != msg.Interval || m.Community != msg.Community {
			return nil, reject(RejectMalformed, "settlement %s: metered[%d] is for %s/%s", msg.Interval, i, m.Community, m.Interval)
		}
		if err := m.Verify(r); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
