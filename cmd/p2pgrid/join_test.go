//go:build unix

package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/operator"
)

// addHome makes a home's key in its data directory, admits it and returns
// the data directory and the bundle's path.
func addHome(t *testing.T, dir, home, root string) (dataDir, bundle string) {
	t.Helper()
	dataDir = filepath.Join(root, home, "data")
	code, _, errOut := runCLI(t, "", "community", "add", dir, "--home", home, "--public-key", homeKey(t, dataDir))
	if code != 0 {
		t.Fatalf("add %s: exit %d %q", home, code, errOut)
	}
	return dataDir, filepath.Join(dir, "bundles", home+".json")
}

// editBundle writes a copy of a bundle with one field changed.
func editBundle(t *testing.T, path, key string, value any) string {
	t.Helper()
	var m map[string]json.RawMessage // the roster's bytes as they are
	if err := json.Unmarshal([]byte(readFile(t, path)), &m); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(m, key)
	} else {
		v, _ := json.Marshal(value)
		m[key] = v
	}
	b, _ := json.Marshal(m)
	out := filepath.Join(t.TempDir(), "edited.json")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// join writes the configuration, CA, password and roster, and the result
// passes config check; what it refuses it names.
func TestJoin(t *testing.T) {
	dir := initCommunity(t, "broker.lan")
	root := t.TempDir()
	dataDir, bundle := addHome(t, dir, "home-1", root)
	otherData, _ := addHome(t, dir, "home-2", root)
	cfgPath := filepath.Join(root, "home-1", "etc", "gateway.yaml")

	// The gateway's key belongs to the service's group (sudo -u p2pgrid
	// p2pgrid key): the password join writes must be readable by it.
	keyFile := filepath.Join(dataDir, "gateway.key")
	if os.Geteuid() == 0 {
		if err := os.Chown(keyFile, -1, 4242); err != nil {
			t.Fatal(err)
		}
	}
	keyGroup := fileGroup(t, keyFile)
	code, out, errOut := runCLI(t, "", "join", bundle, "--config", cfgPath, "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, cfgPath+": ok: gateway home-1 in community lindenweg, broker mqtts://broker.lan:8883") {
		t.Fatalf("join: exit %d, %q, stderr %q", code, out, errOut)
	}
	etc := filepath.Dir(cfgPath)
	if fi, err := os.Stat(filepath.Join(etc, "mqtt.password")); err != nil || fi.Mode().Perm() != 0o640 || fileGroup(t, filepath.Join(etc, "mqtt.password")) != keyGroup {
		t.Errorf("mqtt.password: %v, want mode 0640 and the group of the gateway's key (%d)", err, keyGroup)
	}
	var b operator.Bundle
	_ = json.Unmarshal([]byte(readFile(t, bundle)), &b)
	if got := strings.TrimSpace(readFile(t, filepath.Join(etc, "mqtt.password"))); got != b.Password {
		t.Error("mqtt.password is not the bundle's password")
	}
	if readFile(t, filepath.Join(etc, "lindenweg-ca.pem")) != b.CA {
		t.Error("lindenweg-ca.pem is not the bundle's CA")
	}
	yaml := readFile(t, cfgPath)
	for _, want := range []string{`gateway: "home-1"`, `username: "home-1"`, `ca_file: "` + filepath.Join(etc, "lindenweg-ca.pem") + `"`,
		"operator_key: \"" + b.OperatorKey + `"`} {
		if !strings.Contains(yaml, want) {
			t.Errorf("configuration lacks %q:\n%s", want, yaml)
		}
	}
	// The key is a setting, and the roster file the signed version.
	roster := readFile(t, filepath.Join(etc, "roster.json"))
	if !strings.Contains(yaml, "\noperator_key: ") || !strings.HasPrefix(roster, `{"v":1,`) {
		t.Errorf("want the operator_key setting and the signed roster file, got roster %.60q", roster)
	}
	if code, out, errOut := runCLI(t, "", "config", "check", cfgPath); code != 0 {
		t.Errorf("config check: exit %d %q %q", code, out, errOut)
	}

	fresh := func() string { return filepath.Join(t.TempDir(), "gateway.yaml") }
	refused(t, "exists; join writes only new files", "join", bundle, "--config", cfgPath, "--data-dir", dataDir)
	refused(t, "expired at 2020-01-01T00:00:00Z", "join", editBundle(t, bundle, "expires", "2020-01-01T00:00:00Z"), "--config", fresh(), "--data-dir", dataDir)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	refused(t, "the signature does not verify with the operator key", "join", editBundle(t, bundle, "operator_key", protocol.PublicKeyString(pub)), "--config", fresh(), "--data-dir", dataDir)
	refused(t, `the roster (version 2) does not list "home-9"`, "join", editBundle(t, bundle, "gateway", "home-9"), "--config", fresh(), "--data-dir", dataDir)
	refused(t, `the roster lists "home-1" with key`, "join", bundle, "--config", fresh(), "--data-dir", otherData)
	refused(t, "has no gateway.key: run `p2pgrid key --data", "join", bundle, "--config", fresh(), "--data-dir", t.TempDir())
	refused(t, `unknown field "extra"`, "join", editBundle(t, bundle, "extra", 1), "--config", fresh(), "--data-dir", dataDir)
	refused(t, "bundle: no password", "join", editBundle(t, bundle, "password", ""), "--config", fresh(), "--data-dir", dataDir)
	refused(t, "no such file", "join", filepath.Join(root, "nope.json"), "--config", fresh(), "--data-dir", dataDir)
	refused(t, "bundle: invalid character", "join", editFile(t, "not json"), "--config", fresh(), "--data-dir", dataDir)
}

func editFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A home may send a join request in place of its key: join --request
// prints its id and key (making the key), community add --request admits
// it, and the bundle then joins.
func TestJoinRequest(t *testing.T) {
	dir := initCommunity(t, "broker.lan")
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	code, out, errOut := runCLI(t, "", "join", "--request", "--home", "home-9", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("join --request: exit %d %q", code, errOut)
	}
	if want := `{"v":1,"gateway":"home-9","public_key":"` + homeKey(t, dataDir) + `"}` + "\n"; out != want {
		t.Errorf("request %q, want %q", out, want)
	}
	req := editFile(t, out)
	if code, _, errOut := runCLI(t, "", "community", "add", dir, "--request", req); code != 0 {
		t.Fatalf("add --request: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "join", filepath.Join(dir, "bundles", "home-9.json"), "--config", filepath.Join(root, "etc", "gateway.yaml"), "--data-dir", dataDir); code != 0 {
		t.Errorf("join: exit %d %q", code, errOut)
	}

	refused(t, "give --home ID and no bundle", "join", "--request", "--data-dir", dataDir)
	refused(t, "give --home ID and no bundle", "join", "--request", "--home", "h", "x.json")
	refused(t, "give the bundle file", "join")
	refused(t, `--home "a b"`, "join", "--request", "--home", "a b", "--data-dir", dataDir)
	refused(t, "--request, or --home and --public-key, not both", "community", "add", dir, "--request", req, "--home", "home-9")
	refused(t, `join request: json: unknown field "x"`, "community", "add", dir, "--request", editFile(t, `{"v":1,"gateway":"h","public_key":"k","x":1}`))
	refused(t, "join request: version 2", "community", "add", dir, "--request", editFile(t, `{"v":2,"gateway":"h","public_key":"k"}`))
	refused(t, "join request: public_key", "community", "add", dir, "--request", editFile(t, `{"v":1,"gateway":"h","public_key":"k"}`))
}

// fileGroup is the group id of path.
func fileGroup(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Gid)
}

// The Debian package installs the example configuration at the path join
// writes to: join replaces it while it is unedited, and refuses once the
// owner changed it.
func TestJoinOverThePackagesExample(t *testing.T) {
	dir := initCommunity(t, "broker.lan")
	root := t.TempDir()
	dataDir, bundle := addHome(t, dir, "home-1", root)
	cfgPath := filepath.Join(root, "etc", "p2pgrid", "gateway.yaml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, configs.GatewayExample, 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "join", bundle, "--config", cfgPath, "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "was the package's example configuration, unedited: replaced") {
		t.Fatalf("join over the example: exit %d %q %q", code, out, errOut)
	}
	if !strings.Contains(readFile(t, cfgPath), `gateway: "home-1"`) {
		t.Errorf("the configuration is not join's:\n%s", readFile(t, cfgPath))
	}
	edited := filepath.Join(root, "edited", "gateway.yaml")
	if err := os.MkdirAll(filepath.Dir(edited), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(edited, append(bytes.Clone(configs.GatewayExample), "# mine\n"...), 0o640); err != nil {
		t.Fatal(err)
	}
	refused(t, "exists; join writes only new files", "join", bundle, "--config", edited, "--data-dir", dataDir)
}
