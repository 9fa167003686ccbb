package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/p2pgrid/p2pgrid/market"
)

// ResultMsg is the clearer's signed result of one interval, published
// retained on result/<interval> and, as the same bytes, on result/latest:
//
//	{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1",
//	 "book_sha256":"<hex>","result":<auction result JSON>,"sig":"<base64>"}
//
// Result holds the exact bytes of auction's Result.MarshalJSON, so that every
// gateway can clear the book itself and compare bytes.
type ResultMsg struct {
	Community  string
	Interval   string
	Clearer    string
	BookSHA256 string          // hex, the same as the result's book_sha256
	Result     json.RawMessage // compact, as auction's Result.MarshalJSON wrote it
	Sig        []byte          // the clearer's Ed25519 signature of the canonical result text
}

// MaxResultSize bounds a result message.
const MaxResultSize = 8 << 20

// resultText is the canonical text a clearer signs: the community, the
// interval, the clearer and the SHA-256 of the exact result bytes.
func resultText(community, interval, clearer string, result []byte) []byte {
	sum := sha256.Sum256(result)
	return fmt.Appendf(nil, "p2pgrid-result/1\ncommunity %s\ninterval %s\nclearer %s\nresult %s\n",
		community, interval, clearer, hex.EncodeToString(sum[:]))
}

// EncodeResult signs result, the bytes of auction's Result.MarshalJSON for
// the interval's book, as clearer and returns the message to publish on
// result/<interval> and result/latest. The result must be a compact JSON
// object with a "book_sha256" of 64 hex digits.
func EncodeResult(key ed25519.PrivateKey, community, interval, clearer string, result []byte) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("encode result: private key of %d bytes (want %d)", len(key), ed25519.PrivateKeySize)
	}
	msg := &ResultMsg{Community: community, Interval: interval, Clearer: clearer, Result: result}
	var err error
	if msg.BookSHA256, err = msg.check(); err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	msg.Sig = ed25519.Sign(key, resultText(community, interval, clearer, result))
	data := msg.Encode()
	if len(data) > MaxResultSize {
		return nil, fmt.Errorf("encode result %s: %d bytes (at most %d)", interval, len(data), MaxResultSize)
	}
	return data, nil
}

// DecodeResult reads a result message strictly (see DecodeOrder). The
// embedded result must be a compact JSON object whose book_sha256 is the
// envelope's; it is kept byte for byte. A missing or empty "sig" is
// RejectUnsigned. Errors are *RejectError; Verify checks the signature.
func DecodeResult(data []byte) (*ResultMsg, error) {
	if len(data) > MaxResultSize {
		return nil, reject(RejectOversize, "result: %d bytes (at most %d)", len(data), MaxResultSize)
	}
	msg := &ResultMsg{}
	err := decodeObject(data,
		field{"v", true, version},
		field{"community", true, id(&msg.Community)},
		field{"interval", true, interval(&msg.Interval)},
		field{"clearer", true, id(&msg.Clearer)},
		field{"book_sha256", true, str(&msg.BookSHA256)},
		field{"result", true, func(raw []byte) error { msg.Result = bytes.Clone(raw); return nil }},
		field{"sig", false, signature(&msg.Sig)},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "result: %w", err)
	}
	digest, err := msg.check()
	if err != nil {
		return nil, reject(RejectMalformed, "result: %w", err)
	}
	if digest != msg.BookSHA256 {
		return nil, reject(RejectMalformed, "result %s: book_sha256 %.64q differs from the result's %s", msg.Interval, msg.BookSHA256, digest)
	}
	if len(msg.Sig) == 0 { // "sig" missing or ""
		return nil, reject(RejectUnsigned, "result %s from %q: no signature", msg.Interval, msg.Clearer)
	}
	return msg, nil
}

// check checks the ids and the embedded result and returns the result's
// book_sha256.
func (msg *ResultMsg) check() (string, error) {
	if err := CheckID(msg.Community); err != nil {
		return "", fmt.Errorf("community %q: %w", msg.Community, err)
	}
	if _, err := market.ParseInterval(msg.Interval); err != nil {
		return "", err
	}
	if err := CheckID(msg.Clearer); err != nil {
		return "", fmt.Errorf("clearer %q: %w", msg.Clearer, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, msg.Result); err != nil || !bytes.Equal(compact.Bytes(), msg.Result) {
		return "", errors.New("result: want the compact JSON object of auction's Result.MarshalJSON")
	}
	var digest string
	haveDigest := false
	err := walkObject(msg.Result, func(key string, raw []byte) error {
		if key != "book_sha256" {
			return nil // the result's other keys are package auction's business
		}
		haveDigest = true
		if err := str(&digest)(raw); err != nil {
			return err
		}
		if b, err := hex.DecodeString(digest); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != digest {
			return fmt.Errorf("want 64 lowercase hex digits, got %.70q", digest)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("result: %w", err)
	}
	if !haveDigest {
		return "", errors.New(`result: key "book_sha256" is missing`)
	}
	return digest, nil
}

// Encode writes the message in its JSON form, the result as it is.
func (msg *ResultMsg) Encode() []byte {
	b := append(make([]byte, 0, 256+len(msg.Result)), `{"v":1`...)
	b = appendField(b, "community", msg.Community)
	b = appendField(b, "interval", msg.Interval)
	b = appendField(b, "clearer", msg.Clearer)
	b = appendField(b, "book_sha256", msg.BookSHA256)
	b = append(b, `,"result":`...)
	b = append(b, msg.Result...)
	b = appendField(b, "sig", base64.StdEncoding.EncodeToString(msg.Sig))
	return append(b, '}')
}

// Verify checks that the result is signed (RejectUnsigned), is for the
// roster's community (RejectWrongCommunity), names a clearer the roster
// marks as one, and that the signature verifies with that clearer's key
// (RejectForged). It does not check the clearing itself: for that, verify
// the book of the interval, clear it with auction.Market.Clear and compare
// the MarshalJSON bytes with Result.
func (msg *ResultMsg) Verify(r *Roster) error {
	if len(msg.Sig) == 0 {
		return reject(RejectUnsigned, "result %s from %q: no signature", msg.Interval, msg.Clearer)
	}
	if msg.Community != r.Community {
		return reject(RejectWrongCommunity, "result %s: community %q, not %q", msg.Interval, msg.Community, r.Community)
	}
	pub, ok := r.Key(msg.Clearer)
	if !ok {
		return reject(RejectForged, "result %s: clearer %q is not in the roster of %q", msg.Interval, msg.Clearer, r.Community)
	}
	if !r.IsClearer(msg.Clearer) {
		return reject(RejectForged, "result %s: gateway %q is not a clearer in the roster", msg.Interval, msg.Clearer)
	}
	if !ed25519.Verify(pub, resultText(msg.Community, msg.Interval, msg.Clearer, msg.Result), msg.Sig) {
		return reject(RejectForged, "result %s: the signature does not verify with clearer %q's roster key", msg.Interval, msg.Clearer)
	}
	return nil
}
