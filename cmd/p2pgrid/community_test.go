package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/operator"
	"github.com/p2pgrid/p2pgrid/market"
)

// initCommunity runs `community init` in a new directory and returns it.
func initCommunity(t *testing.T, broker string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lindenweg")
	code, out, errOut := runCLI(t, "", "community", "init", dir, "--name", "lindenweg", "--broker", broker)
	if code != 0 {
		t.Fatalf("community init: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"made community lindenweg", "mosquitto -c " + filepath.Join(dir, "mosquitto", "mosquitto.conf"), "p2pgrid gateway --config " + filepath.Join(dir, "operator", "gateway.yaml")} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	return dir
}

// homeKey runs `p2pgrid key` in a home's data directory and returns the
// public key it printed.
func homeKey(t *testing.T, dataDir string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", "key", "--data", dataDir)
	if code != 0 {
		t.Fatalf("key: exit %d %q", code, errOut)
	}
	return strings.TrimSpace(out)
}

// refused checks a refusal: exit 2, one "p2pgrid:" line naming the problem.
func refused(t *testing.T, want string, args ...string) {
	t.Helper()
	code, _, errOut := runCLI(t, "", args...)
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "p2pgrid: ") || !strings.Contains(errOut, want) {
		t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", args, code, errOut, want)
	}
}

func readRosterMsg(t *testing.T, path string) *protocol.RosterMsg {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := protocol.DecodeRoster([]byte(strings.TrimSpace(string(data))))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return msg
}

// init makes the whole directory: private files 0600, the roster's
// version 1 signed by the operator key with the clearer alone, the
// shipped Mosquitto files with the directory's paths, and a clearer
// configuration that `config check` passes.
func TestCommunityInit(t *testing.T) {
	dir := initCommunity(t, "broker.lan")
	for name, mode := range map[string]os.FileMode{
		"operator.key": 0o600, "certs/ca.key": 0o600, "certs/server.key": 0o600, "mosquitto/passwd": 0o600,
		"operator/mqtt.password": 0o600, "operator/data/gateway.key": 0o600,
		"certs/ca.crt": 0o644, "roster.json": 0o644, "mosquitto/mosquitto.conf": 0o644, "mosquitto/acl": 0o644,
		"operator/gateway.yaml": 0o644, "community.json": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %#o, want %#o", name, fi.Mode().Perm(), mode)
		}
	}
	c, err := operator.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := readRosterMsg(t, filepath.Join(dir, "roster.json"))
	if err := msg.Verify(c.OperatorPublicKey(), "lindenweg"); err != nil || msg.Seq != 1 {
		t.Errorf("roster version %d: %v", msg.Seq, err)
	}
	if len(msg.Roster.Gateways) != 1 || !msg.Roster.IsClearer("operator") {
		t.Errorf("roster %s: want the clearer operator alone", msg.Roster.Encode())
	}
	conf := readFile(t, filepath.Join(dir, "mosquitto", "mosquitto.conf"))
	for _, line := range []string{"listener 8883\n", "cafile " + filepath.Join(dir, "certs", "ca.crt") + "\n",
		"password_file " + filepath.Join(dir, "mosquitto", "passwd") + "\n", "acl_file " + filepath.Join(dir, "mosquitto", "acl") + "\n",
		"allow_anonymous false\n", "use_username_as_clientid true\n"} {
		if !strings.Contains(conf, "\n"+line) {
			t.Errorf("mosquitto.conf lacks the line %q", line)
		}
	}
	if acl := readFile(t, filepath.Join(dir, "mosquitto", "acl")); !strings.Contains(acl, "\nuser operator\ntopic write p2pgrid/v1/+/book/#\n") {
		t.Errorf("acl lacks the clearer's block:\n%s", acl)
	}
	if code, out, errOut := runCLI(t, "", "config", "check", filepath.Join(dir, "operator", "gateway.yaml")); code != 0 || !strings.Contains(out, "(primary clearer)") {
		t.Errorf("config check of the clearer: exit %d, %q %q", code, out, errOut)
	}
	if strings.Contains(readFile(t, filepath.Join(dir, "operator", "gateway.yaml")), "PRIVATE KEY") {
		t.Error("the clearer's configuration holds a private key")
	}

	refused(t, "is not empty", "community", "init", dir, "--name", "x", "--broker", "b.lan")
	fresh := filepath.Join(t.TempDir(), "c")
	refused(t, "--name and --broker are required", "community", "init", fresh, "--broker", "b.lan")
	refused(t, `--name "a b"`, "community", "init", fresh, "--name", "a b", "--broker", "b.lan")
	refused(t, `--broker "b.lan:0"`, "community", "init", fresh, "--name", "c", "--broker", "b.lan:0")
	refused(t, `--broker "b lan"`, "community", "init", fresh, "--name", "c", "--broker", "b lan")
	refused(t, "accepts 1 arg(s)", "community", "init", "--name", "c", "--broker", "b.lan")
	if _, err := os.Stat(fresh); err == nil {
		t.Error("a refused init made its directory")
	}
}

// add gives a home a login, the next roster version from the interval
// after the next, and a bundle that holds its password; remove takes it
// all back; list shows who is in.
func TestCommunityAddRemoveList(t *testing.T) {
	dir := initCommunity(t, "broker.lan:18883")
	homes := t.TempDir()
	keys := map[string]string{}
	for _, h := range []string{"home-1", "home-2"} {
		keys[h] = homeKey(t, filepath.Join(homes, h))
		before := time.Now()
		code, out, errOut := runCLI(t, "", "community", "add", dir, "--home", h, "--public-key", keys[h])
		if code != 0 {
			t.Fatalf("add %s: exit %d %q", h, code, errOut)
		}
		for _, want := range []string{"added " + h, "HOLDS " + h + "'S MQTT PASSWORD", "QR code", "reload Mosquitto"} {
			if !strings.Contains(out, want) {
				t.Errorf("add %s: output lacks %q:\n%.600s", h, want, out)
			}
		}
		cal := config.Default().Market.Calendar()
		msg := readRosterMsg(t, filepath.Join(dir, "roster.json"))
		if from := msg.Start(); !from.Equal(cal.Open(before).Add(cal.Interval)) && !from.Equal(cal.Open(time.Now()).Add(cal.Interval)) {
			t.Errorf("add %s: valid from %s, want the interval after next", h, msg.ValidFrom)
		}
	}
	msg := readRosterMsg(t, filepath.Join(dir, "roster.json"))
	if msg.Seq != 3 || len(msg.Roster.Gateways) != 3 {
		t.Errorf("roster version %d with %d gateways, want 3 and 3", msg.Seq, len(msg.Roster.Gateways))
	}
	bundleFile := filepath.Join(dir, "bundles", "home-1.json")
	if fi, err := os.Stat(bundleFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle: %v (mode 0600?)", err)
	}
	var b operator.Bundle
	if err := json.Unmarshal([]byte(readFile(t, bundleFile)), &b); err != nil {
		t.Fatal(err)
	}
	pw, err := operator.ParsePasswordFile([]byte(readFile(t, filepath.Join(dir, "mosquitto", "passwd"))))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := operator.CheckPassword(pw.Hash("home-1"), b.Password); !ok || b.Username != "home-1" || b.Broker != "mqtts://broker.lan:18883" {
		t.Errorf("bundle: username %q broker %q; its password matches the hash: %v", b.Username, b.Broker, ok)
	}
	if !strings.Contains(b.CA, "BEGIN CERTIFICATE") || strings.Contains(readFile(t, bundleFile), "PRIVATE KEY") {
		t.Error("bundle: want the CA certificate and no private key")
	}

	code, out, _ := runCLI(t, "", "community", "list", dir)
	for _, want := range []string{"roster version 3", "home-1 ", "home-2 ", "operator                 clearer", keys["home-2"]} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("list: exit %d, lacks %q:\n%s", code, want, out)
		}
	}

	refused(t, `--home "home-1": in the roster already`, "community", "add", dir, "--home", "home-1", "--public-key", homeKey(t, filepath.Join(homes, "x")))
	refused(t, `same public key as gateway "home-1"`, "community", "add", dir, "--home", "home-3", "--public-key", keys["home-1"])
	refused(t, `--home "operator": the operator's clearer`, "community", "add", dir, "--home", "operator", "--public-key", homeKey(t, filepath.Join(homes, "y")))
	refused(t, "--public-key", "community", "add", dir, "--home", "home-3", "--public-key", "ed25519:nonsense")
	refused(t, "--home and --public-key (or --request) are required", "community", "add", dir, "--home", "home-3")
	refused(t, "is not a community directory", "community", "add", t.TempDir(), "--home", "home-3", "--public-key", keys["home-1"])
	refused(t, `--home "home/3"`, "community", "add", dir, "--home", "home/3", "--public-key", homeKey(t, filepath.Join(homes, "z")))

	code, out, errOut := runCLI(t, "", "community", "remove", dir, "--home", "home-1")
	if code != 0 || !strings.Contains(out, "roster version 4") {
		t.Fatalf("remove: exit %d %q %q", code, out, errOut)
	}
	msg = readRosterMsg(t, filepath.Join(dir, "roster.json"))
	pw, _ = operator.ParsePasswordFile([]byte(readFile(t, filepath.Join(dir, "mosquitto", "passwd"))))
	if _, in := msg.Roster.Key("home-1"); in || pw.Has("home-1") || !pw.Has("home-2") {
		t.Errorf("after remove: home-1 in the roster %v, has a login %v", in, pw.Has("home-1"))
	}
	if _, err := os.Stat(bundleFile); err == nil {
		t.Error("remove left the bundle")
	}
	refused(t, `--home "home-1": not in the roster`, "community", "remove", dir, "--home", "home-1")
	refused(t, "the operator's clearer cannot be removed", "community", "remove", dir, "--home", "operator")
	refused(t, "--home is required", "community", "remove", dir)
	// A removed home may come back, with a new login.
	if code, _, errOut := runCLI(t, "", "community", "add", dir, "--home", "home-1", "--public-key", keys["home-1"]); code != 0 {
		t.Errorf("add again after remove: exit %d %q", code, errOut)
	}
}

// add-app makes a home's app a login with the read-only block of
// configs/mosquitto/README.md in the acl.
func TestCommunityAddApp(t *testing.T) {
	dir := initCommunity(t, "broker.lan")
	if code, _, errOut := runCLI(t, "", "community", "add", dir, "--home", "home-1", "--public-key", homeKey(t, t.TempDir())); code != 0 {
		t.Fatalf("add: exit %d %q", code, errOut)
	}
	code, out, errOut := runCLI(t, "", "community", "add-app", dir, "--home", "home-1", "--name", "home-assistant")
	if code != 0 || !strings.Contains(out, "read-only login home-assistant for home-1") {
		t.Fatalf("add-app: exit %d %q %q", code, out, errOut)
	}
	acl := readFile(t, filepath.Join(dir, "mosquitto", "acl"))
	if want := mqtttest.AppBlock(t, "lindenweg", "home-1", "home-assistant"); !strings.HasSuffix(acl, "\n"+strings.TrimLeft(want, "\n")) {
		t.Errorf("acl ends:\n%s\nwant the README's block:\n%s", acl[max(0, len(acl)-400):], want)
	}
	password := strings.TrimSpace(readFile(t, filepath.Join(dir, "apps", "home-assistant.password")))
	pw, _ := operator.ParsePasswordFile([]byte(readFile(t, filepath.Join(dir, "mosquitto", "passwd"))))
	if ok, _ := operator.CheckPassword(pw.Hash("home-assistant"), password); !ok || !strings.Contains(out, password) {
		t.Error("the app's password is not the one hashed, or not printed")
	}
	if code, out, _ := runCLI(t, "", "community", "list", dir); code != 0 || !strings.Contains(out, "home-assistant           app") {
		t.Errorf("list does not show the app:\n%s", out)
	}
	// The default login is HOME-app.
	if code, out, _ := runCLI(t, "", "community", "add-app", dir, "--home", "home-1"); code != 0 || !strings.Contains(out, "read-only login home-1-app for home-1") {
		t.Errorf("add-app without --name: exit %d %q", code, out)
	}
	refused(t, `--name "home-assistant": a login already`, "community", "add-app", dir, "--home", "home-1", "--name", "home-assistant")
	refused(t, `--name "bridge"`, "community", "add-app", dir, "--home", "home-1", "--name", "bridge")
	refused(t, `--name "operator"`, "community", "add-app", dir, "--home", "home-1", "--name", "operator")
	refused(t, `--home "home-9": not a home of the roster`, "community", "add-app", dir, "--home", "home-9")
	refused(t, `--home "operator": not a home of the roster`, "community", "add-app", dir, "--home", "operator")
	refused(t, "--home is required", "community", "add-app", dir)
	refused(t, `--home "home-assistant": a login already`, "community", "add", dir, "--home", "home-assistant", "--public-key", homeKey(t, t.TempDir()))
}

func TestCommunityAddDashboard(t *testing.T) {
	dir := initCommunity(t, "broker.lan")
	code, out, errOut := runCLI(t, "", "community", "add-dashboard", dir)
	if code != 0 || !strings.Contains(out, "read-only login dashboard for the operator's dashboard") {
		t.Fatalf("add-dashboard: exit %d %q %q", code, out, errOut)
	}
	acl := readFile(t, filepath.Join(dir, "mosquitto", "acl"))
	if want := mqtttest.DashboardBlock(t, "lindenweg", "dashboard"); !strings.HasSuffix(acl, "\n"+strings.TrimLeft(want, "\n")) {
		t.Errorf("acl ends:\n%s\nwant the README's block:\n%s", acl[max(0, len(acl)-400):], want)
	}
	password := strings.TrimSpace(readFile(t, filepath.Join(dir, "apps", "dashboard.password")))
	pw, _ := operator.ParsePasswordFile([]byte(readFile(t, filepath.Join(dir, "mosquitto", "passwd"))))
	if ok, _ := operator.CheckPassword(pw.Hash("dashboard"), password); !ok || !strings.Contains(out, password) {
		t.Error("the dashboard's password is not the one hashed, or not printed")
	}
	refused(t, `--name "dashboard": a login already`, "community", "add-dashboard", dir)
	refused(t, `--name "operator"`, "community", "add-dashboard", dir, "--name", "operator")
	refused(t, `--name "bridge"`, "community", "add-dashboard", dir, "--name", "bridge")
	if code, _, _ := runCLI(t, "", "community", "add-dashboard", dir, "--name", "wall-screen"); code != 0 {
		t.Errorf("add-dashboard --name wall-screen: exit %d", code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With the gateway's hidden --clock-* flags and the market of the
// environment, add and remove time a version as a gateway on that clock
// with that market would: the test clock's one-minute grid, the interval
// after the open one. The flags stay out of --help.
func TestCommunityAddRemoveOnTestClock(t *testing.T) {
	dir := initCommunity(t, "broker.lan:18883")
	t.Setenv("P2PGRID_MARKET_INTERVAL", "1m")
	t.Setenv("P2PGRID_MARKET_GATE_CLOSURE", "15s")
	t.Setenv("P2PGRID_MARKET_GRACE", "10s")
	// A week ahead, 10:07:30 at the origin (now), at the wall clock's
	// speed: 10:07:30 and a little while the commands run.
	epoch := time.Now().UTC().Truncate(24 * time.Hour).Add(7*24*time.Hour + 10*time.Hour + 7*time.Minute + 30*time.Second)
	clock := []string{"--clock-epoch", epoch.Format(time.RFC3339), "--clock-origin", strconv.FormatInt(time.Now().UnixNano(), 10), "--clock-speed", "1"}
	key := homeKey(t, t.TempDir())
	code, out, errOut := runCLI(t, "", append([]string{"community", "add", dir, "--home", "home-1", "--public-key", key}, clock...)...)
	want := market.IntervalID(epoch.Truncate(time.Minute).Add(2 * time.Minute))
	if code != 0 || !strings.Contains(out, "valid from "+want+"\n") {
		t.Fatalf("add on the test clock: exit %d %q, want valid from %s:\n%.300s", code, errOut, want, out)
	}
	code, out, errOut = runCLI(t, "", append([]string{"community", "remove", dir, "--home", "home-1"}, clock...)...)
	if code != 0 || !strings.Contains(out, "valid from "+want+";") {
		t.Fatalf("remove on the test clock: exit %d %q, want valid from %s: %q", code, errOut, want, out)
	}
	refused(t, "clock speed: 0 is not in (0, 1e6]", append([]string{"community", "remove", dir, "--home", "home-1"}, append(clock[:4:4], "--clock-speed", "0")...)...)
	for _, sub := range []string{"add", "remove"} {
		if _, out, _ := runCLI(t, "", "community", sub, "--help"); strings.Contains(out, "clock-") {
			t.Errorf("community %s --help shows the test clock's flags:\n%s", sub, out)
		}
	}
}
