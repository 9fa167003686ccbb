package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestResultRoundTrip(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	result, data := exampleResult(t)
	msg, err := DecodeResult(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg.Result, result) {
		t.Fatalf("embedded result\n%s\nwant the MarshalJSON bytes\n%s", msg.Result, result)
	}
	if enc := msg.Encode(); !bytes.Equal(enc, data) {
		t.Fatalf("result does not round-trip byte for byte:\n%s\n%s", enc, data)
	}
	if err := msg.Verify(r); err != nil {
		t.Fatal(err)
	}
	// The envelope's book_sha256 is the auction digest of the verified book.
	b, _ := DecodeBook(exampleBook(t))
	book, _ := b.Verify(r, testMarket)
	digest, err := testMarket.Digest(book)
	if err != nil || msg.BookSHA256 != hex.EncodeToString(digest[:]) {
		t.Fatalf("book_sha256 %s, want %x (%v)", msg.BookSHA256, digest, err)
	}
	// The signature is over the documented canonical text.
	sum := sha256.Sum256(result)
	text := "p2pgrid-result/1\ncommunity c1\ninterval 2026-11-22T12:15Z\nclearer home1\nresult " + hex.EncodeToString(sum[:]) + "\n"
	if !ed25519.Verify(testPub("home1"), []byte(text), msg.Sig) {
		t.Fatalf("signature is not over %q", text)
	}
	want := `{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1","book_sha256":"` + msg.BookSHA256 + `","result":` + string(result) + `,"sig":"`
	if !strings.HasPrefix(string(data), want) {
		t.Fatalf("payload\n%s\nwant it to start\n%s", data, want)
	}
}

func TestResultRejections(t *testing.T) {
	result, good := exampleResult(t)
	c1, c2 := newTestRoster(t, "c1"), newTestRoster(t, "c2")
	signedAs := func(key, clearer string) []byte {
		data, err := EncodeResult(testKey(key), testCommunity, testInterval, clearer, result)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	msg, _ := DecodeResult(good)
	sig := func(data []byte) string {
		m, err := DecodeResult(data)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(m.Sig)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		roster *Roster
		want   RejectReason
		msg    string
	}{
		{"signed by a non-clearer", signedAs("home2", "home2"), c1, RejectForged, `"home2" is not a clearer`},
		{"signed by another key", signedAs("home2", "home1"), c1, RejectForged, "signature"},
		{"signed by an unknown clearer", signedAs("mallory", "mallory"), c1, RejectForged, `"mallory" is not in the roster`},
		{"tampered price", tamper(t, good, `"price":"0.12"`, `"price":"0.13"`), c1, RejectForged, "signature"},
		{"tampered interval", tamper(t, good, `"interval":"2026-11-22T12:15Z"`, `"interval":"2026-11-22T12:30Z"`), c1, RejectForged, "signature"},
		{"tampered community", tamper(t, good, `"community":"c1"`, `"community":"c2"`), c2, RejectForged, "signature"},
		{"tampered clearer", tamper(t, good, `"clearer":"home1"`, `"clearer":"home2"`), c1, RejectForged, "not a clearer"},
		{"verbatim into another community", good, c2, RejectWrongCommunity, `community "c1", not "c2"`},
		{"unsigned", tamper(t, good, sig(good), ""), c1, RejectUnsigned, "no signature"},
		{"book_sha256 differs", tamper(t, good, `"book_sha256":"`+msg.BookSHA256[:4], `"book_sha256":"0000`), c1, RejectMalformed, "differs"},
		{"result not compact", tamper(t, good, `"result":{"price"`, `"result":{ "price"`), c1, RejectMalformed, "compact"},
		{"result not an object", tamper(t, good, `"result":`+string(result), `"result":[]`), c1, RejectMalformed, "want a JSON object"},
		{"result without digest", tamper(t, good, `"book_sha256":"`+msg.BookSHA256+`","fills"`, `"fills"`), c1, RejectMalformed, `"book_sha256" is missing`},
		{"unknown key", tamper(t, good, `"clearer"`, `"cleared"`), c1, RejectMalformed, `"cleared": unknown key`},
		{"duplicate key", tamper(t, good, `"v":1`, `"v":1,"v":1`), c1, RejectMalformed, "twice"},
		{"oversize", append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxResultSize)...), c1, RejectOversize, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeResult(tc.data)
			if err == nil {
				err = m.Verify(tc.roster)
			}
			wantReason(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestEncodeResultRefuses(t *testing.T) {
	result, _ := exampleResult(t)
	key := testKey("home1")
	for name, tc := range map[string]struct {
		community, interval, clearer string
		result                       []byte
		key                          ed25519.PrivateKey
	}{
		"community":   {"c 1", testInterval, "home1", result, key},
		"interval":    {"c1", "x", "home1", result, key},
		"clearer":     {"c1", testInterval, "", result, key},
		"compact":     {"c1", testInterval, "home1", append([]byte(" "), result...), key},
		"book_sha256": {"c1", testInterval, "home1", []byte(`{"price":null}`), key},
		"private key": {"c1", testInterval, "home1", result, key[:32]},
	} {
		_, err := EncodeResult(tc.key, tc.community, tc.interval, tc.clearer, tc.result)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: %v", name, err)
		}
	}
}
