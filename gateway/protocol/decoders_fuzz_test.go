package protocol

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for the decoders fuzz_test.go does not cover: settlement
// and roster messages, public keys, interval ids and the key file.

func FuzzDecodeRoster(f *testing.F) {
	r := newTestRoster(f, testCommunity)
	operator := testKey("community-operator")
	from := time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
	good, err := EncodeRoster(operator, r, 3, from)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"seq":3`), []byte(`"seq":4`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":3`), []byte(`"seq":03`), 1))
	f.Add(bytes.Replace(good, []byte(`"gateways":[`), []byte(`"gateways":[ `), 1))
	f.Add(bytes.Replace(good, []byte(`,"sig":"`), []byte(`,"sig":"A`), 1))
	for _, s := range []string{``, `{}`, `{"v":1,"community":"c1","seq":1,"valid_from":"2026-11-22T12:15Z","roster":{},"sig":""}`} {
		f.Add([]byte(s))
	}
	pub := operator.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := DecodeRoster(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc := msg.Encode()
		again, err := DecodeRoster(enc)
		if err != nil {
			t.Fatalf("re-encoded roster rejected: %v\n%s", err, enc)
		}
		if !bytes.Equal(again.Encode(), enc) || again.Seq != msg.Seq || again.ValidFrom != msg.ValidFrom || !bytes.Equal(again.Roster.Encode(), msg.Roster.Encode()) {
			t.Fatalf("roster does not round-trip:\n%s\n%s", enc, again.Encode())
		}
		if err := msg.Verify(pub, msg.Community); err != nil {
			mustReason(t, err)
			return
		}
		// A verified version is the operator's: the same text signed by
		// the operator key, so re-signing it gives the same bytes.
		resigned, err := EncodeRoster(operator, msg.Roster, msg.Seq, msg.Start())
		if err != nil || !bytes.Equal(resigned, enc) {
			t.Fatalf("verified a roster the operator did not sign as such: %v\n%s\n%s", err, enc, resigned)
		}
	})
}

func FuzzDecodeSettlement(f *testing.F) {
	r := newTestRoster(f, testCommunity)
	clearer := ""
	for _, g := range r.Gateways {
		if g.Clearer {
			clearer = g.ID
		}
	}
	m1, _ := SignMetered(testKey("home1"), testCommunity, testInterval, "home1", 120, 845)
	m2, _ := SignMetered(testKey("home2"), testCommunity, testInterval, "home2", 600, 0)
	good, err := EncodeSettlement(testKey(clearer), testCommunity, testInterval, clearer, [][]byte{m2, m1}, []byte(`{"interval":"x"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"metered":[`), []byte(`"metered":[ `), 1))
	f.Add(bytes.Replace(good, []byte(`"settlement":{`), []byte(`"settlement":[{`), 1))
	f.Add(bytes.Replace(good, []byte(`"export_wh":845`), []byte(`"export_wh":945`), 1))
	for _, s := range []string{``, `{}`, `{"v":1,"metered":[],"settlement":{}}`, `{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"operator","metered":[],"settlement":{},"sig":"AA=="}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := DecodeSettlement(data)
		if err != nil {
			mustReason(t, err)
			return
		}
		enc := msg.Encode()
		again, err := DecodeSettlement(enc)
		if err != nil {
			t.Fatalf("re-encoded settlement rejected: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(again, msg) || !bytes.Equal(again.Encode(), enc) {
			t.Fatalf("settlement does not round-trip:\n%+v\n%+v", msg, again)
		}
		ms, err := msg.Verify(r)
		if err != nil {
			mustReason(t, err)
			return
		}
		// A verified settlement is signed by a roster clearer and holds only
		// figures of its own interval, each signed by its gateway.
		if !r.IsClearer(msg.Clearer) || len(ms) != len(msg.Metered) {
			t.Fatalf("verified a settlement by %q with %d of %d figures", msg.Clearer, len(ms), len(msg.Metered))
		}
		for _, m := range ms {
			if m.Interval != msg.Interval || m.Community != msg.Community || m.Verify(r) != nil {
				t.Fatalf("verified settlement holds figures %+v", m)
			}
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(PublicKeyString(testPub("home1")))
	f.Add(PublicKeyString(testPub("home1"))[:20])
	f.Add("ed25519:" + strings.Repeat("A", 43) + "=")
	f.Add("ed25519:" + strings.Repeat("A", 43) + "B")
	f.Add("ed25519:" + strings.Repeat("/", 44))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParsePublicKey(s)
		if err != nil {
			if !strings.Contains(err.Error(), "public key") {
				t.Fatalf("error does not say what it is about: %v", err)
			}
			return
		}
		// Only the one form PublicKeyString writes is accepted.
		if len(pub) != ed25519.PublicKeySize || PublicKeyString(pub) != s {
			t.Fatalf("accepted %q as %x, which is written %q", s, pub, PublicKeyString(pub))
		}
	})
}

// FuzzLoadKey: the gateway's key file, as loadKey reads it at start.
func FuzzLoadKey(f *testing.F) {
	dir := f.TempDir()
	if _, _, err := LoadOrCreateKey(dir); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.TrimSpace(good))
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := LoadKey(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "key file "+path+": ") {
				t.Fatalf("error does not name the key file: %v", err)
			}
			return
		}
		// A loaded key is a whole Ed25519 key whose public half matches its seed.
		if len(key) != ed25519.PrivateKeySize || !bytes.Equal(ed25519.NewKeyFromSeed(key.Seed()), key) {
			t.Fatalf("loaded an inconsistent key %x", key)
		}
	})
}
