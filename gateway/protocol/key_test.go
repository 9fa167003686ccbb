package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "p2pgrid") // does not exist yet
	key, created, err := LoadOrCreateKey(dir)
	if err != nil || !created || len(key) != ed25519.PrivateKeySize {
		t.Fatalf("LoadOrCreateKey = %d-byte key, created %v, %v", len(key), created, err)
	}
	path := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %#o, want 0600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("created data directory mode %#o, want 0700", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("key file is not one PEM PRIVATE KEY block:\n%s", data)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil || !key.Equal(k) {
		t.Fatalf("key file holds %v, %v; want the returned key", k, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the key file (no temporary files)", len(entries))
	}

	again, created, err := LoadOrCreateKey(dir)
	if err != nil || created || !key.Equal(again) {
		t.Fatalf("reloaded: created %v, %v, same key %v", created, err, key.Equal(again))
	}
	// A key that works: what it signs, its public key verifies.
	if !ed25519.Verify(again.Public().(ed25519.PublicKey), []byte("x"), ed25519.Sign(key, []byte("x"))) {
		t.Fatal("reloaded key does not match")
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKey(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %#o: %v; want a refusal naming %s and chmod 600", mode, err, path)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if again, _, err := LoadOrCreateKey(dir); err != nil || !key.Equal(again) {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestLoadOrCreateKeyNoDir(t *testing.T) {
	if _, _, err := LoadOrCreateKey(""); err == nil || !strings.Contains(err.Error(), "no data directory") {
		t.Fatalf("%v", err)
	}
}

// An existing data directory keeps its mode; only a created one is 0700.
func TestLoadOrCreateKeyExistingDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreateKey(dir); err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o755 {
		t.Errorf("existing directory changed to %#o", di.Mode().Perm())
	}
}

// A bad key file is reported and left alone, never replaced by a new key.
func TestLoadOrCreateKeyBadFiles(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKCS8PrivateKey(testKey("home1"))
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":          {nil, "PEM"},
		"not PEM":        {[]byte("hello\n"), "PEM"},
		"wrong type":     {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: edDER}), "PEM"},
		"two blocks":     {append(bytes.Clone(good), good...), "PEM"},
		"trailing junk":  {append(bytes.Clone(good), "junk"...), "PEM"},
		"ECDSA key":      {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "not an Ed25519 key"},
		"bad DER":        {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "asn1"},
		"huge":           {bytes.Repeat([]byte("A"), maxKeyFileSize+1), "larger than"},
		"good with CRLF": {bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			key, created, err := LoadOrCreateKey(dir)
			if tc.want == "" {
				if err != nil || created || !key.Equal(testKey("home1")) {
					t.Fatalf("created %v, %v", created, err)
				}
				return
			}
			if err == nil || created || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("created %v, %v; want an error naming %s and saying %q", created, err, path, tc.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.data) {
				t.Fatal("the bad key file was changed")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, KeyFile), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("%v", err)
		}
	})
}

func TestPublicKeyString(t *testing.T) {
	pub := testPub("home1")
	s := PublicKeyString(pub)
	if s != "ed25519:"+base64.StdEncoding.EncodeToString(pub) || len(s) != len("ed25519:")+44 {
		t.Fatalf("PublicKeyString = %q", s)
	}
	got, err := ParsePublicKey(s)
	if err != nil || !pub.Equal(got) {
		t.Fatalf("ParsePublicKey(%q) = %x, %v", s, got, err)
	}
	b64 := strings.TrimPrefix(s, "ed25519:")
	for _, bad := range []string{
		"",
		b64,                                     // no prefix
		"Ed25519:" + b64,                        // prefix case
		"ed25519:" + b64[:43],                   // no padding
		"ed25519:" + b64[:40] + "\n" + b64[40:], // newline, which base64 would skip
		"ed25519:" + base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"ed25519:" + base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"ed25519:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
		"ed25519:" + strings.Repeat("A", 42) + "B=", // non-zero padding bits
	} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}
