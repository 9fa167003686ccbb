package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/p2pgrid/p2pgrid/internal/atomicfile"
)

// KeyFile is the name of a gateway's private key file in its data directory.
const KeyFile = "gateway.key"

// maxKeyFileSize bounds what LoadOrCreateKey reads: an Ed25519 PKCS#8 PEM
// file is about 120 bytes.
const maxKeyFileSize = 16 << 10

// LoadOrCreateKey returns the gateway's Ed25519 private key from
// <dataDir>/gateway.key, creating the key (and dataDir, mode 0700) when the
// file does not exist; created says which happened.
//
// The file is PEM "PRIVATE KEY" (PKCS#8), mode 0600, written atomically:
// a temporary file in dataDir, fsynced, then linked (or renamed) into place,
// never over an existing key. An existing file that group or others can
// access is refused, as is one that does not hold an Ed25519 key: a bad key
// file is reported, never replaced, because the key is the gateway's
// identity in the community's roster.
func LoadOrCreateKey(dataDir string) (key ed25519.PrivateKey, created bool, err error) {
	if dataDir == "" {
		return nil, false, errors.New("key file: no data directory given")
	}
	path := filepath.Join(dataDir, KeyFile)
	key, err = LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("key directory: %w", err)
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: generating a key: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	err = atomicfile.WriteNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it first: use that
		key, err = LoadKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, true, nil
}

// LoadKey reads and checks an Ed25519 private key file (PEM "PRIVATE KEY",
// PKCS#8, that group and others cannot access): a gateway's key, or the
// community operator's roster key. The error wraps fs.ErrNotExist when
// there is none.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: mode %#o: group or others can access the private key; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file %s: larger than %d bytes: not a key", path, maxKeyFileSize)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("key file %s: want exactly one PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s: a %T, not an Ed25519 key", path, k)
	}
	return key, nil
}

// publicKeyPrefix starts the text form of a public key.
const publicKeyPrefix = "ed25519:"

// PublicKeyString returns the text form of a public key, as the roster holds
// it: "ed25519:" and the 32 bytes in standard base64.
func PublicKeyString(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form PublicKeyString writes, and only that
// form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key %.60q: want %q and 32 bytes in standard base64", s, publicKeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize || base64.StdEncoding.EncodeToString(b) != b64 {
		return nil, fmt.Errorf("public key %.60q: want %q and 32 bytes in standard base64", s, publicKeyPrefix)
	}
	return ed25519.PublicKey(b), nil
}
