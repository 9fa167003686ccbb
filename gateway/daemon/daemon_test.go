package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter/sim"
)

// A meter the project does not ship is one file in profile_dir away.
func TestDevicesUseTheUsersProfiles(t *testing.T) {
	dir := t.TempDir()
	sdm, err := configs.Devices.ReadFile("devices/sdm630.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mine := strings.Replace(string(sdm), "name: sdm630", "name: mymeter", 1)
	if err := os.WriteFile(filepath.Join(dir, "mymeter.yaml"), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Devices = []config.Device{{Name: "grid", URL: "tcp://127.0.0.1:1", Unit: 1, Profile: "mymeter", Role: config.RoleGrid, Poll: time.Second}}
	log := slog.New(slog.DiscardHandler)

	if _, _, err := Devices(cfg, time.Now, log); err == nil || !strings.Contains(err.Error(), `"mymeter"`) {
		t.Errorf("without profile_dir: %v", err)
	}
	cfg.ProfileDir = dir
	devs, closeAll, err := Devices(cfg, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if len(devs) != 1 || devs[0].Name != "grid" || devs[0].Role != config.RoleGrid {
		t.Errorf("devices %+v", devs)
	}
}

// checkFixture is a data directory with a key, a roster listing the
// gateway g1 (clearer) with that key, and a valid configuration file for
// it. yaml returns the file with extra lines; load loads it.
type checkFixture struct {
	dir, dataDir, roster string
	key                  ed25519.PrivateKey
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	dir := t.TempDir()
	f := &checkFixture{dir: dir, dataDir: filepath.Join(dir, "data"), roster: filepath.Join(dir, "roster.json")}
	key, _, err := protocol.LoadOrCreateKey(f.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	f.key = key
	f.writeRoster(t, "c1", protocol.Member{ID: "g1", PublicKey: key.Public().(ed25519.PublicKey), Clearer: true})
	return f
}

func (f *checkFixture) writeRoster(t *testing.T, community string, members ...protocol.Member) {
	t.Helper()
	r, err := protocol.NewRoster(community, members)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.roster, r.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// operatorKey signs the fixtures' roster versions.
var operatorKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// operatorKeyLine is the configuration line that sets operator_key.
var operatorKeyLine = "operator_key: " + protocol.PublicKeyString(operatorKey.Public().(ed25519.PublicKey)) + "\n"

// writeSigned replaces the roster file with version 1 of the fixture's
// roster, signed with key.
func (f *checkFixture) writeSigned(t *testing.T, key ed25519.PrivateKey) {
	t.Helper()
	r, err := protocol.NewRoster("c1", []protocol.Member{{ID: "g1", PublicKey: f.key.Public().(ed25519.PublicKey), Clearer: true}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := protocol.EncodeRoster(key, r, 1, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.roster, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// operator is a clearer for rosters whose g1 is not one.
func operator(t *testing.T) protocol.Member {
	key, _, err := protocol.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Member{ID: "operator", PublicKey: key.Public().(ed25519.PublicKey), Clearer: true}
}

// load writes the configuration (lines 1-6 fixed, then extra) and loads it.
func (f *checkFixture) load(t *testing.T, extra string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf("gateway: g1\ncommunity: c1\nclearer: primary\ndata_dir: %s\nroster: %s\nhttp: \"\"\n", f.dataDir, f.roster) + extra
	path := filepath.Join(f.dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// Check refuses what the gateway would refuse at start, each problem at
// its key's line; config.Load passes every one of these files.
func TestCheckRefusesWhatTheGatewayRefuses(t *testing.T) {
	const grid = "devices:\n  - {name: grid, url: \"tcp://127.0.0.1:1\", unit: 1, profile: %s, role: grid}\n"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, f *checkFixture)
		extra string
		want  string
	}{
		{"valid", nil, fmt.Sprintf(grid, "sdm630"), ""},
		{"missing roster", func(t *testing.T, f *checkFixture) { os.Remove(f.roster) }, "",
			"line 5: roster: open %ROSTER%: no such file or directory"},
		{"corrupt roster", func(t *testing.T, f *checkFixture) { os.WriteFile(f.roster, []byte(`{"community":"c1"`), 0o644) }, "",
			"line 5: roster: %ROSTER%: "},
		{"gateway not in the roster", func(t *testing.T, f *checkFixture) {
			f.writeRoster(t, "c1", protocol.Member{ID: "g2", PublicKey: f.key.Public().(ed25519.PublicKey), Clearer: true})
		}, "", `line 1: gateway: "g1" is not in the roster of "c1"; add its public key ed25519:`},
		{"roster of another community", func(t *testing.T, f *checkFixture) {
			f.writeRoster(t, "c2", protocol.Member{ID: "g1", PublicKey: f.key.Public().(ed25519.PublicKey), Clearer: true})
		}, "", `line 2: community: "c1", but the roster %ROSTER% is for community "c2"`},
		{"clearer not marked clearer", func(t *testing.T, f *checkFixture) {
			f.writeRoster(t, "c1", protocol.Member{ID: "g1", PublicKey: f.key.Public().(ed25519.PublicKey)}, operator(t))
		}, "", `line 3: clearer: primary, but the roster of "c1" does not mark "g1" as a clearer`},
		{"another key in the roster", func(t *testing.T, f *checkFixture) {
			other, _, _ := protocol.LoadOrCreateKey(t.TempDir())
			f.writeRoster(t, "c1", protocol.Member{ID: "g1", PublicKey: other.Public().(ed25519.PublicKey), Clearer: true})
		}, "", `line 1: gateway: the roster of "c1" has another public key for "g1" than its key file`},
		{"signed roster", func(t *testing.T, f *checkFixture) { f.writeSigned(t, operatorKey) }, operatorKeyLine, ""},
		{"plain roster with operator_key", nil, operatorKeyLine,
			"line 5: roster: %ROSTER%: a plain roster, but operator_key is set: the file must be a roster version the operator signed"},
		{"signed roster without operator_key", func(t *testing.T, f *checkFixture) { f.writeSigned(t, operatorKey) }, "",
			"line 5: roster: %ROSTER%: a roster version signed by the community operator, but operator_key is not set"},
		{"roster signed with another key", func(t *testing.T, f *checkFixture) { f.writeSigned(t, f.key) }, operatorKeyLine,
			`line 5: roster: %ROSTER%: roster version 1 of "c1": the signature does not verify with the operator key (forged)`},
		{"unknown profile", nil, fmt.Sprintf(grid, "nosuch"), `line 8: devices[0].profile: profile "nosuch"`},
		{"profile_dir missing", nil, "profile_dir: /nonexistent/profiles\n" + fmt.Sprintf(grid, "sdm630"),
			"line 7: profile_dir: stat /nonexistent/profiles: no such file or directory"},
		{"CA file missing", nil, "mqtt:\n  broker: mqtts://127.0.0.1:8883\n  ca_file: /nonexistent/ca.pem\n",
			"line 9: mqtt.ca_file: CA file: open /nonexistent/ca.pem: no such file or directory"},
		{"client certificate missing", nil, "mqtt:\n  broker: mqtts://127.0.0.1:8883\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n",
			"line 9: mqtt.cert_file: cert file: stat /nonexistent/c.pem: no such file or directory"},
		{"key file others can read", func(t *testing.T, f *checkFixture) { os.Chmod(filepath.Join(f.dataDir, protocol.KeyFile), 0o644) }, "",
			"line 4: data_dir: key file %DATA%/gateway.key: mode 0644"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCheckFixture(t)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			err := Check(f.load(t, tc.extra))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			want := "config " + filepath.Join(f.dir, "gateway.yaml") + ": " +
				strings.NewReplacer("%ROSTER%", f.roster, "%DATA%", f.dataDir).Replace(tc.want)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Check:\n%v\nwant it to start with\n%s", err, want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("%v is not a *config.Error", err)
			}
		})
	}
}

// Without a key yet (before the first start) Check still checks the
// roster's membership and clearer flag, and creates nothing.
func TestCheckWithoutKey(t *testing.T) {
	f := newCheckFixture(t)
	f.writeRoster(t, "c1", protocol.Member{ID: "g2", PublicKey: f.key.Public().(ed25519.PublicKey)}, operator(t))
	f.dataDir = filepath.Join(f.dir, "fresh")
	err := Check(f.load(t, ""))
	if err == nil || !strings.Contains(err.Error(), `line 1: gateway: "g1" is not in the roster of "c1"; add its public key (p2pgrid key --data `+f.dataDir) {
		t.Fatalf("Check: %v", err)
	}
	if _, err := os.Stat(f.dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check created %s: %v", f.dataDir, err)
	}
}

// Several problems come one per line, in the order of the file.
func TestCheckListsProblemsInFileOrder(t *testing.T) {
	f := newCheckFixture(t)
	f.writeRoster(t, "c1", protocol.Member{ID: "g1", PublicKey: f.key.Public().(ed25519.PublicKey)}, operator(t))
	cfg := f.load(t, "profile_dir: /nonexistent\n"+
		"mqtt:\n  broker: mqtts://127.0.0.1:8883\n  ca_file: /nonexistent/ca.pem\n")
	cfg.Telemetry.Every = time.Second // set in code: no line, so last
	err := Check(cfg)
	if err == nil {
		t.Fatal("Check passed")
	}
	var keys []string
	lineKey := regexp.MustCompile(`^config [^:]*: (?:line \d+: )?([a-z_.]+):`)
	for _, l := range strings.Split(err.Error(), "\n") {
		m := lineKey.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q names no key", l)
		}
		keys = append(keys, m[1])
	}
	want := []string{"clearer", "profile_dir", "mqtt.ca_file", "telemetry.every"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys in order %q, want %q; error:\n%v", keys, want, err)
	}
}

// startSim serves one simulated home over Modbus TCP and returns its URL.
func startSim(t *testing.T) string {
	t.Helper()
	wall := time.Now()
	s, err := sim.New(sim.Options{Homes: sim.DefaultHomes(1, 1),
		Start: time.Date(2026, 6, 21, 12, 0, 0, 0, time.UTC), Now: func() time.Time { return wall }})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ServeTCP(fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.URL
}

// runConfig is a gateway g1 (not a clearer) on broker, with its meter on
// the simulator and /healthz on a free port.
func runConfig(t *testing.T, f *checkFixture, broker, httpAddr string) *config.Config {
	t.Helper()
	f.writeRoster(t, "c1", protocol.Member{ID: "g1", PublicKey: f.key.Public().(ed25519.PublicKey)}, operator(t))
	cfg := f.load(t, fmt.Sprintf("mqtt:\n  broker: %s\ndevices:\n  - {name: grid, url: %q, unit: %d, profile: %s, role: grid, poll: 200ms}\n",
		broker, startSim(t), sim.MeterUnit, sim.MeterProfile))
	cfg.Clearer, cfg.HTTP = config.ClearerNone, httpAddr
	return cfg
}

// run runs the daemon until the test ends; the returned channel gets Run's
// error.
func run(t *testing.T, cfg *config.Config, o Options) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if o.Tick == 0 {
		o.Tick = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	go func() { done <- Run(ctx, cfg, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return 20s after its context ended")
		}
	})
	return done
}

// get returns the status code and body of an HTTP GET.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A gateway whose broker is unreachable serves /healthz (503, mqtt
// disconnected) and /metrics and reads its meter from the start; when the
// broker appears it connects, subscribes and says it is online.
func TestRunServesAndReadsMetersWhileTheBrokerIsDown(t *testing.T) {
	f := newCheckFixture(t)
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t)) // nobody listens there yet
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	cfg := runConfig(t, f, "tcp://"+brokerAddr, httpAddr)
	ready := make(chan *gateway.Gateway, 1)
	run(t, cfg, Options{Ready: func(g *gateway.Gateway) { ready <- g }})

	var health gateway.Health
	eventually(t, "/healthz to report the meter read while MQTT is down", func() bool {
		code, body, err := get("http://" + httpAddr + "/healthz")
		if err != nil || json.Unmarshal([]byte(body), &health) != nil {
			return false
		}
		if code != http.StatusServiceUnavailable || health.MQTT != "disconnected" || health.Status != "degraded" {
			t.Fatalf("/healthz without a broker: %d %s", code, body)
		}
		return health.Devices["grid"] == "ok"
	})
	code, metrics, err := get("http://" + httpAddr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, m := range []string{`p2pgrid_meter_reads_total{device="grid",result="ok"}`, "p2pgrid_mqtt_connected 0"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	select {
	case <-ready:
		t.Fatal("Ready called without a broker")
	default:
	}

	b, err := broker.Start(brokerAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not connect when the broker came")
	}
	eventually(t, "/healthz to say ok", func() bool {
		code, body, _ := get("http://" + httpAddr + "/healthz")
		return code == 200 && strings.Contains(body, `"mqtt":"connected"`)
	})
	topics, _ := protocol.NewTopics("c1")
	if st := retainedStatus(t, b.URL(), topics.Status("g1")); st.State != protocol.StateOnline {
		t.Errorf("retained status %+v, want online", st)
	}
}

// retainedStatus reads the retained status on topic.
func retainedStatus(t *testing.T, url, topic string) protocol.Status {
	t.Helper()
	p := retained(t, url, topic)
	st, err := protocol.DecodeStatus(p)
	if err != nil {
		t.Fatalf("status %q: %v", p, err)
	}
	return *st
}

// retained reads the retained message on topic.
func retained(t *testing.T, url, topic string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mqtt.Connect(ctx, mqtt.Options{Broker: url, ClientID: "watcher-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan []byte, 1)
	if err := c.Subscribe(topic, func(_ string, p []byte) {
		select {
		case got <- p:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no retained message on %s", topic)
	}
	return nil
}

// A clearer with operator_key runs on its signed roster file, publishes
// the version retained and keeps it in data_dir; when the operator's tool
// rewrites the file with a newer version, the running clearer takes it,
// keeps it and publishes it, without a restart.
func TestRunTakesANewRosterVersionFromTheFile(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	f := newCheckFixture(t)
	f.writeSigned(t, operatorKey)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	cfg := f.load(t, operatorKeyLine+fmt.Sprintf("mqtt:\n  broker: %s\n", b.URL()))
	cfg.HTTP = httpAddr
	ready := make(chan *gateway.Gateway, 1)
	run(t, cfg, Options{Ready: func(g *gateway.Gateway) { ready <- g }})
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not start")
	}
	topics, _ := protocol.NewTopics("c1")
	v1, _ := os.ReadFile(f.roster)
	if got := retained(t, b.URL(), topics.Roster()); !bytes.Equal(got, v1) {
		t.Fatalf("retained roster %.80q, want the signed version of the roster file", got)
	}

	r, err := protocol.NewRoster("c1", []protocol.Member{{ID: "g1", PublicKey: f.key.Public().(ed25519.PublicKey), Clearer: true}, operator(t)})
	if err != nil {
		t.Fatal(err)
	}
	from := cfg.Market.Calendar().Open(time.Now()).Add(cfg.Market.Interval) // a gate still open
	v2, err := protocol.EncodeRoster(operatorKey, r, 2, from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.roster, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new version in /healthz", func() bool {
		_, body, _ := get("http://" + httpAddr + "/healthz")
		return strings.Contains(body, `"roster_version":2`)
	})
	eventually(t, "version 2 retained on the roster topic", func() bool { return bytes.Equal(retained(t, b.URL(), topics.Roster()), v2) })
	if kept, err := os.ReadFile(filepath.Join(f.dataDir, gateway.RosterFile)); err != nil || !bytes.Equal(kept, v2) {
		t.Errorf("kept roster %.80q (%v), want version 2", kept, err)
	}
}

// A second gateway on the same data directory is refused before it
// connects: the running one keeps its MQTT session (its will does not
// fire) and the error names the data directory and the holder's pid.
func TestRunRefusesASecondGatewayOnTheDataDir(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	f := newCheckFixture(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	cfg := runConfig(t, f, b.URL(), httpAddr)
	ready := make(chan *gateway.Gateway, 1)
	run(t, cfg, Options{Ready: func(g *gateway.Gateway) { ready <- g }})
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("the first gateway did not connect")
	}

	// A neighbour watches the first gateway's status from now on.
	topics, _ := protocol.NewTopics("c1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := mqtt.Connect(ctx, mqtt.Options{Broker: b.URL(), ClientID: "watcher"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	offline := make(chan struct{}, 16)
	w.Subscribe(topics.Status("g1"), func(_ string, p []byte) {
		if st, err := protocol.DecodeStatus(p); err == nil && st.State == protocol.StateOffline {
			offline <- struct{}{}
		}
	})

	second, cancelSecond := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelSecond()
	err = Run(second, cfg, Options{Logger: slog.New(slog.DiscardHandler), Tick: 50 * time.Millisecond})
	want := fmt.Sprintf("data directory %s: in use by another gateway (pid %d holds %s)", f.dataDir, os.Getpid(), filepath.Join(f.dataDir, LockFile))
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second Run: %v\nwant ErrDataDirInUse: %s", err, want)
	}
	select {
	case <-offline:
		t.Fatal("the running gateway went offline: the second one reached the broker")
	case <-time.After(500 * time.Millisecond):
	}
	_, metrics, err := get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"p2pgrid_mqtt_connected 1", "p2pgrid_mqtt_connection_lost_total 0"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("the running gateway's metrics lack %q", m)
		}
	}
}

// A gateway with mqtt.brokers whose first broker is down connects to the
// next one and says it is online there.
func TestRunUsesTheNextBroker(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	f := newCheckFixture(t)
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", testtool.FreePort(t)) // nobody listens there
	cfg := runConfig(t, f, dead, "")
	cfg.MQTT.Broker, cfg.MQTT.Brokers = "", []string{dead, b.URL()}
	ready := make(chan *gateway.Gateway, 1)
	run(t, cfg, Options{Ready: func(g *gateway.Gateway) { ready <- g }})
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not connect to its second broker")
	}
	topics, _ := protocol.NewTopics("c1")
	if st := retainedStatus(t, b.URL(), topics.Status("g1")); st.State != protocol.StateOnline {
		t.Errorf("retained status on the second broker %+v, want online", st)
	}
}
