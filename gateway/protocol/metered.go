package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/p2pgrid/p2pgrid/market"
)

// MeteredMsg is what a gateway's grid meter counted during one delivery
// interval, published after the interval on metered/<gateway>, signed:
//
//	{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","gateway":"home1",
//	 "import_wh":120,"export_wh":845,"sig":"<base64>"}
//
// The figures are the energy-counter deltas between the interval's start
// and end. A gateway whose counters were reset or unreadable over the
// interval publishes nothing: settlement then treats it as missing.
type MeteredMsg struct {
	Community, Interval, Gateway string
	ImportWh, ExportWh           int64
	Sig                          []byte
}

// MaxMeteredSize bounds a metered message.
const MaxMeteredSize = 1 << 10

func meteredText(community, interval, gateway string, imp, exp int64) []byte {
	return fmt.Appendf(nil, "p2pgrid-metered/1\ncommunity %s\ninterval %s\ngateway %s\nimport_wh %d\nexport_wh %d\n",
		community, interval, gateway, imp, exp)
}

// SignMetered builds and signs a metered message.
func SignMetered(key ed25519.PrivateKey, community, interval, gateway string, importWh, exportWh int64) ([]byte, error) {
	m := &MeteredMsg{Community: community, Interval: interval, Gateway: gateway, ImportWh: importWh, ExportWh: exportWh}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("sign metered: %w", err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign metered: private key of %d bytes", len(key))
	}
	m.Sig = ed25519.Sign(key, meteredText(community, interval, gateway, importWh, exportWh))
	return m.Encode(), nil
}

func (m *MeteredMsg) check() error {
	if err := CheckID(m.Community); err != nil {
		return fmt.Errorf("community %q: %w", m.Community, err)
	}
	if _, err := market.ParseInterval(m.Interval); err != nil {
		return err
	}
	if err := CheckID(m.Gateway); err != nil {
		return fmt.Errorf("gateway %q: %w", m.Gateway, err)
	}
	if m.ImportWh < 0 || m.ExportWh < 0 {
		return fmt.Errorf("metered %s of %q: negative energy (import %d Wh, export %d Wh)", m.Interval, m.Gateway, m.ImportWh, m.ExportWh)
	}
	return nil
}

// Encode writes the message in its JSON form, keys in the documented order.
func (m *MeteredMsg) Encode() []byte {
	b := append([]byte(nil), `{"v":1`...)
	b = appendField(b, "community", m.Community)
	b = appendField(b, "interval", m.Interval)
	b = appendField(b, "gateway", m.Gateway)
	b = append(b, `,"import_wh":`...)
	b = strconv.AppendInt(b, m.ImportWh, 10)
	b = append(b, `,"export_wh":`...)
	b = strconv.AppendInt(b, m.ExportWh, 10)
	b = appendField(b, "sig", base64.StdEncoding.EncodeToString(m.Sig))
	return append(b, '}')
}

// DecodeMetered reads a metered message strictly (see DecodeOrder).
func DecodeMetered(data []byte) (*MeteredMsg, error) {
	if len(data) > MaxMeteredSize {
		return nil, reject(RejectOversize, "metered: %d bytes (at most %d)", len(data), MaxMeteredSize)
	}
	m := &MeteredMsg{}
	var imp, exp *int64
	err := decodeObject(data,
		field{"v", true, version},
		field{"community", true, id(&m.Community)},
		field{"interval", true, interval(&m.Interval)},
		field{"gateway", true, id(&m.Gateway)},
		field{"import_wh", true, integer(&imp)},
		field{"export_wh", true, integer(&exp)},
		field{"sig", false, signature(&m.Sig)},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "metered: %w", err)
	}
	m.ImportWh, m.ExportWh = *imp, *exp
	if err := m.check(); err != nil {
		return nil, reject(RejectMalformed, "metered: %w", err)
	}
	if len(m.Sig) == 0 {
		return nil, reject(RejectUnsigned, "metered %s from %q: no signature", m.Interval, m.Gateway)
	}
	return m, nil
}

// Verify checks the signature with the gateway's roster key.
func (m *MeteredMsg) Verify(r *Roster) error {
	if m.Community != r.Community {
		return reject(RejectWrongCommunity, "metered %s from %q: community %q, not %q", m.Interval, m.Gateway, m.Community, r.Community)
	}
	pub, ok := r.Key(m.Gateway)
	if !ok {
		return reject(RejectForged, "metered %s from %q: not in the roster", m.Interval, m.Gateway)
	}
	if !ed25519.Verify(pub, meteredText(m.Community, m.Interval, m.Gateway, m.ImportWh, m.ExportWh), m.Sig) {
		return reject(RejectForged, "metered %s from %q: the signature does not verify", m.Interval, m.Gateway)
	}
	return nil
}
