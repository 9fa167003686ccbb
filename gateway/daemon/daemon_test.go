package daemon

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
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
