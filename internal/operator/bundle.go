package operator

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/atomicfile"
)

// Bundle is what a home needs to join a community, one JSON object
// (bundles/ID.json, and the QR code `p2pgrid community add` prints):
//
//	{"v":1,"community":"lindenweg","gateway":"home-17",
//	 "broker":"mqtts://broker.lan:8883","ca":"-----BEGIN CERTIFICATE-----\n...",
//	 "username":"home-17","password":"...",
//	 "operator_key":"ed25519:...","roster":{<the signed roster>},
//	 "expires":"2026-12-06T11:00:00Z"}
//
// It holds the home's MQTT password: hand it over as you would the
// password.
type Bundle struct {
	Version     int             `json:"v"`
	Community   string          `json:"community"`
	Gateway     string          `json:"gateway"`
	Broker      string          `json:"broker"`
	CA          string          `json:"ca"` // PEM
	Username    string          `json:"username"`
	Password    string          `json:"password"`
	OperatorKey string          `json:"operator_key"`
	Roster      json.RawMessage `json:"roster"` // protocol.EncodeRoster's bytes
	Expires     time.Time       `json:"expires"`
}

// MaxBundleSize bounds a bundle file: a roster and a certificate.
const MaxBundleSize = protocol.MaxRosterSize + 64<<10

// Encode writes the bundle as one line of JSON.
func (b *Bundle) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseBundle reads a bundle strictly (unknown keys are refused) and
// checks it at now: not expired, version 1, its roster signed with its
// operator key for its community. It returns the bundle and its roster.
func ParseBundle(data []byte, now time.Time) (*Bundle, *protocol.RosterMsg, error) {
	if len(data) > MaxBundleSize {
		return nil, nil, bad("bundle: %d bytes (at most %d)", len(data), MaxBundleSize)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, nil, bad("bundle: %w", err)
	}
	if b.Version != 1 {
		return nil, nil, bad("bundle: version %d (this p2pgrid reads version 1)", b.Version)
	}
	for _, f := range []struct{ name, v string }{{"community", b.Community}, {"gateway", b.Gateway}, {"broker", b.Broker},
		{"ca", b.CA}, {"username", b.Username}, {"password", b.Password}, {"operator_key", b.OperatorKey}} {
		if f.v == "" {
			return nil, nil, bad("bundle: no %s", f.name)
		}
	}
	if b.Expires.IsZero() {
		return nil, nil, bad("bundle: no expires")
	}
	if !now.Before(b.Expires) {
		return nil, nil, bad("bundle of %s: expired at %s; ask the operator for a new one", b.Gateway, b.Expires.Format(time.RFC3339))
	}
	opKey, err := protocol.ParsePublicKey(b.OperatorKey)
	if err != nil {
		return nil, nil, bad("bundle: operator_key: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b.Roster); err != nil {
		return nil, nil, bad("bundle: roster: %w", err)
	}
	b.Roster = compact.Bytes()
	msg, err := protocol.DecodeRoster(b.Roster)
	if err != nil {
		return nil, nil, bad("bundle: %w", err)
	}
	if err := msg.Verify(opKey, b.Community); err != nil {
		return nil, nil, bad("bundle: %w", err)
	}
	return &b, msg, nil
}

// OperatorPublicKey is the bundle's operator key (ParseBundle checked it).
func (b *Bundle) OperatorPublicKey() ed25519.PublicKey {
	k, _ := protocol.ParsePublicKey(b.OperatorKey)
	return k
}

// JoinFiles are the files Join writes: the configuration and, beside it,
// the CA certificate, the password file and the roster.
type JoinFiles struct {
	Config, CA, Password, Roster string
	// ReplacedExample: Config was the package's example configuration,
	// unedited (configs.GatewayExample), and Join wrote over it.
	ReplacedExample bool
}

// JoinPaths names the files Join writes for the configuration at
// configPath: <dir>/<community>-ca.pem, <dir>/mqtt.password and
// <dir>/roster.json beside it.
func JoinPaths(configPath, community string) JoinFiles {
	dir := filepath.Dir(configPath)
	return JoinFiles{Config: configPath, CA: filepath.Join(dir, community+"-ca.pem"),
		Password: filepath.Join(dir, "mqtt.password"), Roster: filepath.Join(dir, "roster.json")}
}

// Join turns a bundle into a home's gateway configuration: it checks it
// (ParseBundle at now), checks that its roster lists the home with the key
// in dataDir (which `p2pgrid key --data DIR` made), and writes the files of
// JoinPaths, none of which may exist. Check the configuration with
// gateway/daemon.Check afterwards.
func Join(data []byte, configPath, dataDir string, now time.Time) (*JoinFiles, error) {
	b, msg, err := ParseBundle(data, now)
	if err != nil {
		return nil, err
	}
	if configPath == "" || dataDir == "" {
		return nil, bad("join: no configuration path or data directory")
	}
	if configPath, err = filepath.Abs(configPath); err != nil {
		return nil, err
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dataDir, protocol.KeyFile)
	if _, err := os.Lstat(keyFile); errors.Is(err, fs.ErrNotExist) {
		return nil, bad("--data-dir %s has no %s: run `p2pgrid key --data %s` first and give the operator the key it prints", dataDir, protocol.KeyFile, dataDir)
	}
	key, _, err := protocol.LoadOrCreateKey(dataDir)
	if err != nil {
		return nil, bad("--data-dir: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	listed, ok := msg.Roster.Key(b.Gateway)
	switch {
	case !ok:
		return nil, bad("bundle: the roster (version %d) does not list %q", msg.Seq, b.Gateway)
	case !listed.Equal(pub):
		return nil, bad("bundle: the roster lists %q with key %s, not this home's key %s (from %s): a bundle for another home, or another data directory",
			b.Gateway, protocol.PublicKeyString(listed), protocol.PublicKeyString(pub), keyFile)
	}
	files := JoinPaths(configPath, b.Community)
	for _, p := range []string{files.Config, files.CA, files.Password, files.Roster} {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if old, err := os.ReadFile(p); err == nil && p == files.Config && bytes.Equal(old, configs.GatewayExample) {
			files.ReplacedExample = true // the package's example, unedited: nothing of the owner's is lost
			continue
		}
		return nil, bad("%s exists; join writes only new files (move it away first)", p)
	}
	keyInfo, err := os.Stat(keyFile)
	if err != nil {
		return nil, err
	}
	roster := append(bytes.Clone(b.Roster), '\n') // the signed version, which the gateway verifies with operator_key
	gw := gatewayFile{Gateway: b.Gateway, Community: b.Community, Clearer: config.ClearerNone, DataDir: dataDir,
		Roster: files.Roster, Broker: b.Broker, Username: b.Username, PasswordFile: files.Password,
		CAFile: files.CA, OperatorKey: b.OperatorPublicKey(), Made: "made by `p2pgrid join` from the operator's bundle"}
	if err := os.MkdirAll(filepath.Dir(files.Config), 0o755); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		data []byte
		perm fs.FileMode
	}{
		{files.CA, []byte(b.CA), 0o644},
		{files.Password, []byte(b.Password + "\n"), 0o640},
		{files.Roster, roster, 0o644},
		{files.Config, gw.yaml(), 0o644},
	} {
		write := atomicfile.WriteNew
		if f.path == files.Config && files.ReplacedExample {
			write = atomicfile.Write
		}
		if err := write(f.path, f.data, f.perm); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
	}
	// The password is readable by the group of the gateway's key, which is
	// the gateway's own (the service's user, p2pgrid, when the key was made
	// with sudo -u p2pgrid), and by nobody else.
	if err := keepGroup(files.Password, keyInfo); err != nil {
		return nil, fmt.Errorf("join: %s: %w", files.Password, err)
	}
	return &files, nil
}
