package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/market"
)

func TestConfigCheck(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("gateway: g1\ncomunity: c1\n"), 0o644)
	code, _, errOut := runCLI(t, "", "config", "check", bad)
	if code != 2 || !strings.Contains(errOut, `unknown key "comunity"`) || !strings.Contains(errOut, "line 2") {
		t.Errorf("bad config: exit %d %q", code, errOut)
	}
}

// lineOf returns the number of the first line of file that starts with
// prefix.
func lineOf(t *testing.T, file, prefix string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line starting with %q", file, prefix)
	return 0
}

// config check refuses what the gateway refuses: the example's roster,
// profile_dir and CA file do not exist on this machine, and are listed one
// per line in file order; with them in place (environment overrides), it
// passes.
func TestConfigCheckChecksWhatTheGatewayChecks(t *testing.T) {
	const example = "../../configs/gateway.example.yaml"
	code, out, errOut := runCLI(t, "", "config", "check", example)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{
		fmt.Sprintf("line %d: roster: open /etc/p2pgrid/roster.json", lineOf(t, example, "roster:")),
		fmt.Sprintf("line %d: profile_dir: stat /etc/p2pgrid/devices", lineOf(t, example, "profile_dir:")),
		fmt.Sprintf("line %d: mqtt.ca_file: CA file: open /etc/p2pgrid/lindenweg-ca.pem", lineOf(t, example, "  ca_file:")),
	}
	if code != 2 || out != "" || len(lines) != len(want) {
		t.Fatalf("example config on a bare machine: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "p2pgrid: config "+example+": "+w) {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], w)
		}
	}

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	_, pub, _ := runCLI(t, "", "key", "--data", data)
	k, err := protocol.ParsePublicKey(strings.TrimSpace(pub))
	if err != nil {
		t.Fatal(err)
	}
	roster := filepath.Join(dir, "roster.json")
	writeRoster := func(members ...protocol.Member) {
		r, err := protocol.NewRoster("lindenweg", members)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(roster, r.Encode(), 0o644)
	}
	writeRoster(protocol.Member{ID: "home-17", PublicKey: k, Clearer: true})
	t.Setenv("P2PGRID_ROSTER", roster)
	t.Setenv("P2PGRID_DATA_DIR", data)
	t.Setenv("P2PGRID_PROFILE_DIR", dir)
	t.Setenv("P2PGRID_MQTT_CA_FILE", "")
	if code, out, errOut := runCLI(t, "", "config", "check", example); code != 0 || !strings.HasPrefix(out, example+": ok\n") {
		t.Errorf("with its files in place: exit %d %q %q", code, out, errOut)
	}

	// The gateway's key is not the roster's; and an unknown profile.
	gwLine := fmt.Sprintf("line %d: gateway:", lineOf(t, example, "gateway:"))
	other, _, _ := protocol.LoadOrCreateKey(t.TempDir())
	writeRoster(protocol.Member{ID: "home-17", PublicKey: other.Public().(ed25519.PublicKey), Clearer: true})
	t.Setenv("P2PGRID_DEVICES_0_PROFILE", "nosuch")
	code, _, errOut = runCLI(t, "", "config", "check", example)
	lines = strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 2 || len(lines) != 2 ||
		!strings.Contains(lines[0], gwLine+` the roster of "lindenweg" has another public key for "home-17"`) ||
		!strings.Contains(lines[1], `environment P2PGRID_DEVICES_0_PROFILE: devices[0].profile: profile "nosuch"`) {
		t.Errorf("wrong key, unknown profile: exit %d, stderr:\n%s", code, errOut)
	}
	// A setting that does not validate does not hide the rest.
	t.Setenv("P2PGRID_DEVICES_0_PROFILE", "SDM630") // profile names are lower case
	code, _, errOut = runCLI(t, "", "config", "check", example)
	lines = strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 2 || len(lines) != 2 || !strings.Contains(lines[0], gwLine+` the roster of "lindenweg" has another public key`) ||
		!strings.Contains(lines[1], `devices[0].profile: "SDM630" is not a profile name`) {
		t.Errorf("wrong key, profile SDM630: exit %d, stderr:\n%s", code, errOut)
	}
}

// The gateway refuses at start what config check refuses, with the same
// lines and exit status, before it opens anything.
func TestGatewayRefusesWhatConfigCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("gateway: home1\ncommunity: c1\ndata_dir: %s\nroster: %s\nhttp: \"\"\n"+
		"devices:\n  - {name: grid, url: \"tcp://127.0.0.1:1\", unit: 1, profile: nosuch, role: grid}\n",
		filepath.Join(dir, "data"), filepath.Join(dir, "roster.json"))), 0o644)
	code, _, checkErr := runCLI(t, "", "config", "check", cfg)
	if code != 2 || strings.Count(checkErr, "\n") != 2 || !strings.Contains(checkErr, "line 4: roster: open ") ||
		!strings.Contains(checkErr, `line 7: devices[0].profile: profile "nosuch"`) {
		t.Fatalf("config check: exit %d\n%s", code, checkErr)
	}
	code, _, runErr := runCLI(t, "", "gateway", "--config", cfg, "--log-level", "error")
	var printed []string // the logs aside (the last says the gateway stopped, and why)
	for _, l := range strings.SplitAfter(runErr, "\n") {
		if strings.HasPrefix(l, "p2pgrid: ") {
			printed = append(printed, l)
		}
	}
	if code != 2 || strings.Join(printed, "") != checkErr || !strings.Contains(runErr, `msg="gateway stopped"`) {
		t.Errorf("gateway: exit %d\n%s\nwant exit 2 and what config check said:\n%s", code, runErr, checkErr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("the refused gateway created its data directory")
	}
}

func TestKeyCommand(t *testing.T) {
	dir := t.TempDir()
	code, first, errOut := runCLI(t, "", "key", "--data", dir)
	if code != 0 || !strings.HasPrefix(first, "ed25519:") {
		t.Fatalf("exit %d %q %q", code, first, errOut)
	}
	fi, err := os.Stat(filepath.Join(dir, protocol.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file %v %v", fi, err)
	}
	if _, again, _ := runCLI(t, "", "key", "--data", dir); again != first {
		t.Errorf("second call printed another key: %q vs %q", again, first)
	}
}

// The demo runs a neighbourhood until three intervals are settled and
// exits 0 only when every one of them was cleared, verified and settled by
// every gateway, with every figure: three lines, in order, each 5/5 and
// 5/5 with no mark, into every gateway's ledger.
func TestDemoIntervals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole neighbourhood")
	}
	// 6 s per 15-minute interval: 800 ms for the metered figures after an
	// interval ends (2 simulated minutes), which a loaded CI machine running
	// the fault suite and a browser beside it needs (at 1.5 s, and once at
	// 3 s, one home's figures missed the settlement).
	data := t.TempDir()
	code, out, errOut := runCLI(t, "", "demo", "--homes", "4", "--interval", "6s", "--intervals", "3", "--log-level", "error",
		"--data", data)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[7], "summary: 3 intervals settled, exchanged peer to peer ") {
		// banner, settlements hint, note, header, three intervals, summary
		t.Fatalf("output:\n%s", out)
	}
	if h := strings.Fields(lines[3]); len(h) != 8 || h[0] != "INTERVAL" || h[6] != "VERIFIED" || h[7] != "SETTLED" {
		t.Fatalf("header %q", lines[3])
	}
	var prev time.Time
	for _, l := range lines[4:7] {
		f := strings.Fields(l)
		if len(f) != 7 || f[5] != "5/5" || f[6] != "5/5" {
			t.Errorf("interval not verified and settled by all 5 gateways, or marked: %q", l)
			continue
		}
		at, err := market.ParseInterval(f[0])
		if err != nil || (!prev.IsZero() && !at.Equal(prev.Add(15*time.Minute))) {
			t.Errorf("interval %q after %s: want every interval, in order (%v)", f[0], prev, err)
		}
		prev = at
	}
	// Every interval listed is in the ledger: the demo waited for it.
	code, ledgerOut, errOut := runCLI(t, "", "settlements", "--ledger", filepath.Join(data, "operator", "ledger"), "--format", "csv")
	if code != 0 {
		t.Fatalf("settlements: exit %d %s", code, errOut)
	}
	for _, l := range lines[4:7] {
		if iv := strings.Fields(l)[0]; !strings.Contains(ledgerOut, "\n"+iv+",") {
			t.Errorf("interval %s is listed as settled but not in the operator's ledger:\n%s", iv, ledgerOut)
		}
	}
	led := filepath.Join(data, "operator", "ledger")
	if code, out, errOut := runCLI(t, "", "ledger", "verify", led); code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("ledger verify: exit %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "settlements", "--ledger", led, "--format", "csv")
	if code != 0 {
		t.Fatalf("settlements: exit %d %s", code, errOut)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(rows[0], "interval,participant,bought_kwh,") || len(rows) < 1+4+4 {
		t.Errorf("settlements csv:\n%s", out)
	}
	// Every gateway recorded the same settlement: their statements agree.
	_, again, _ := runCLI(t, "", "settlements", "--ledger", filepath.Join(data, "home2", "ledger"), "--format", "csv")
	if again != out {
		t.Errorf("home2's ledger disagrees with the operator's:\n%s\n%s", again, out)
	}
	_, out, _ = runCLI(t, "", "settlements", "--ledger", led, "--participant", "home1", "--format", "json")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["participant"] != "home1" || m["net"] == "" || m["currency"] != "EUR" {
			t.Errorf("json line %q: %v", l, err)
		}
	}
	// The table names the currency the ledger records (market.currency),
	// unless --currency says otherwise.
	_, out, _ = runCLI(t, "", "settlements", "--ledger", led)
	if !strings.Contains(out, "net EUR") || !strings.Contains(out, "money kept locally") || !strings.HasSuffix(strings.TrimSpace(out), " EUR") {
		t.Errorf("table without the currency:\n%s", out)
	}
	_, out, _ = runCLI(t, "", "settlements", "--ledger", led, "--currency", "CHF")
	if !strings.Contains(out, "net CHF") {
		t.Errorf("--currency CHF:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "", "settlements"); code != 2 || !strings.Contains(errOut, "exactly one source") {
		t.Errorf("no source: exit %d %q", code, errOut)
	}
}

// A real gateway process: serves /healthz and /metrics, publishes its
// status, and on SIGTERM stops cleanly with exit 0, leaving "offline".
func TestGatewayProcessSIGTERM(t *testing.T) {
	testtool.Integration(t)
	bin := filepath.Join(t.TempDir(), "p2pgrid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	simURL := startSim(t)
	dir := t.TempDir()
	code, pub, _ := runCLI(t, "", "key", "--data", filepath.Join(dir, "data"))
	if code != 0 {
		t.Fatal("key")
	}
	k, err := protocol.ParsePublicKey(strings.TrimSpace(pub))
	if err != nil {
		t.Fatal(err)
	}
	roster, _ := protocol.NewRoster("c1", []protocol.Member{{ID: "home1", PublicKey: k, Clearer: true}})
	os.WriteFile(filepath.Join(dir, "roster.json"), roster.Encode(), 0o644)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	cfg := fmt.Sprintf(`gateway: home1
community: c1
clearer: primary
data_dir: %s
http: %s
roster: %s
mqtt:
  broker: %s
devices:
  - {name: grid, url: "%s", unit: 1, profile: sdm630, role: grid, poll: 1s}
  - {name: pv, url: "%s", unit: 2, profile: sunspec, role: pv, poll: 1s}
market:
  price_floor: 0.05
  price_cap: 0.30
influx:
  url: http://127.0.0.1:%d
  bucket: p2pgrid/
`, filepath.Join(dir, "data"), httpAddr, filepath.Join(dir, "roster.json"), b.URL(), simURL, simURL, testtool.FreePort(t))
	cfgFile := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)

	// A neighbour's view of the gateway's status.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watcher, err := mqtt.Connect(ctx, mqtt.Options{Broker: b.URL(), ClientID: "watcher"})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	statuses := make(chan string, 16)
	topics, _ := protocol.NewTopics("c1")
	watcher.Subscribe(topics.Status("home1"), func(_ string, p []byte) {
		if st, err := protocol.DecodeStatus(p); err == nil {
			statuses <- string(st.State)
		}
	})

	cmd := exec.Command(bin, "gateway", "--config", cfgFile, "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1000)
	logsDone := make(chan struct{}) // the gateway closed its stderr: exited
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	waitStatus(t, statuses, "online")
	var health struct{ Status, MQTT string }
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
			if resp.StatusCode == 200 && health.Status == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz never ok: %+v %v", health, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`p2pgrid_meter_reads_total{device="grid",result="ok"}`, "p2pgrid_mqtt_connected 1", "p2pgrid_clearer_orders_rejected_total"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	checkMetricsDocumented(t, metrics)

	cmd.Process.Signal(syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() {
		// Wait closes the pipe: read the logs to the end first.
		select {
		case <-logsDone:
		case <-time.After(20 * time.Second):
		}
		errc <- cmd.Wait()
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit 20 s after SIGTERM")
	}
	waitStatus(t, statuses, "offline")
	var lines []string
	for l := range logs {
		lines = append(lines, l)
	}
	checkGatewayLogs(t, lines, cfgFile, filepath.Join(dir, "data"))
}

// checkGatewayLogs checks a gateway's JSON logs: the first line says it
// starts, with version, config file and data directory; the last one that
// it stopped; the daemon's and the MQTT client's lines name the gateway
// once (the daemon scopes the logger, nobody else does).
func checkGatewayLogs(t *testing.T, lines []string, cfgFile, dataDir string) {
	t.Helper()
	if len(lines) < 2 {
		t.Fatalf("logs:\n%s", strings.Join(lines, "\n"))
	}
	var first, last map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("first log line %q: %v", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last log line %q: %v", lines[len(lines)-1], err)
	}
	if first["msg"] != "gateway starting" || first["version"] != versionString() || first["config"] != cfgFile ||
		first["data_dir"] != dataDir || first["gateway"] != "home1" {
		t.Errorf("first log line %s, want the start with version, config file and data directory", lines[0])
	}
	if last["msg"] != "gateway stopped" || last["gateway"] != "home1" {
		t.Errorf("last log line %s, want gateway stopped", lines[len(lines)-1])
	}
	var sawStopping bool
	for _, l := range lines {
		for _, msg := range []string{"gateway starting", "gateway stopping", "gateway stopped", "mqtt connected", "mqtt closed", "serving /metrics and /healthz"} {
			if strings.Contains(l, `"msg":"`+msg+`"`) {
				if n := strings.Count(l, `"gateway":"home1"`); n != 1 {
					t.Errorf("%d times gateway=home1 in %s", n, l)
				}
				sawStopping = sawStopping || msg == "gateway stopping"
			}
		}
	}
	if !sawStopping {
		t.Error("no slog JSON line about stopping")
	}
}

func waitStatus(t *testing.T, ch chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-ch:
			if s == want {
				return
			}
		case <-deadline:
			t.Fatalf("status never %q", want)
		}
	}
}

// The test clock's flags are checked before anything else.
func TestGatewayClockFlags(t *testing.T) {
	code, _, errOut := runCLI(t, "", "gateway", "--config", "/nonexistent.yaml", "--clock-epoch", "2026-11-22T16:00:00Z", "--clock-origin", "1", "--clock-speed", "0")
	if code != 2 || !strings.Contains(errOut, "clock speed: 0 is not in (0, 1e6]") {
		t.Errorf("speed 0: exit %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "gateway", "--config", "/nonexistent.yaml", "--clock-epoch", "2026-11-22T16:00:00Z", "--clock-origin", "1", "--clock-speed", "6")
	if code != 2 || !strings.Contains(errOut, "/nonexistent.yaml") {
		t.Errorf("good clock, missing config: exit %d %q", code, errOut)
	}
	_, out, _ := runCLI(t, "", "gateway", "--help")
	if strings.Contains(out, "clock-") {
		t.Errorf("the test clock's flags show in --help:\n%s", out)
	}
}
