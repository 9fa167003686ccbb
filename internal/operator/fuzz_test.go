package operator

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"
)

// ParsePasswordFile never panics, and what it takes encodes to a file it
// reads back the same.
func FuzzParsePasswordFile(f *testing.F) {
	f.Add([]byte("home-1:$7$101$Gp/BaH/5UrWYAbAf$ZcsjEgKmO2SiEt9mjL9ByPrLssQCVlRWO3UhfDH1FUHRKGrbOy/8pjAwxrj9o8s3AHNY4Q2F7Nb3+Y6G27UEHA==\n"))
	f.Add([]byte("# c\n\na:b\r\nc:d"))
	f.Add([]byte("a:b\na:c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePasswordFile(data)
		if err != nil {
			return
		}
		again, err := ParsePasswordFile(p.Encode())
		if err != nil || !bytes.Equal(again.Encode(), p.Encode()) {
			t.Fatalf("%q: encoded %q reads back as %v", data, p.Encode(), err)
		}
	})
}

// ParseBundle and ParseJoinRequest never panic, and a bundle they take
// encodes to one they take again.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(`{"v":1,"community":"c1","gateway":"h","broker":"mqtts://b:8883","ca":"x","username":"h","password":"p","operator_key":"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","roster":{},"expires":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":1,"gateway":"home-17","public_key":"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"v":2}`))
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	f.Add(realBundle(f, now))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = ParseJoinRequest(data)
		b, _, err := ParseBundle(data, now)
		if err != nil {
			return
		}
		enc, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ParseBundle(enc, now); err != nil {
			t.Fatalf("%q took, its encoding %q not: %v", data, enc, err)
		}
	})
}

// realBundle is the bundle of a home added at now to a new community.
func realBundle(f *testing.F, now time.Time) []byte {
	dir := filepath.Join(f.TempDir(), "c")
	if _, err := Init(dir, "c1", "broker.lan", now); err != nil {
		f.Fatal(err)
	}
	c, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	res, err := c.AddHome("home-1", pub, now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	data, err := res.Bundle.Encode()
	if err != nil {
		f.Fatal(err)
	}
	if _, _, err := ParseBundle(data, now); err != nil {
		f.Fatalf("a bundle AddHome made does not parse: %v", err)
	}
	return data
}
