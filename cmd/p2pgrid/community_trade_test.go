package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testclock"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// A community made only with init, add and join trades: the real binary
// runs the operator's clearer and four homes (`p2pgrid gateway` with the
// configurations init and join wrote, the homes' devices added as a home
// adds them, docs/community.md step 9) over the real Mosquitto with the
// generated files, on the fault suite's shared accelerated clock with
// simulated homes, until an interval with trades is in every ledger.
//
// The market is the fault suite's (one-minute intervals, six times as
// fast as the wall clock), given to every gateway alike through the
// environment, and so is a price floor and cap.
func TestCommunityTrades(t *testing.T) {
	testtool.Integration(t)
	root := t.TempDir()
	bin := filepath.Join(root, "p2pgrid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := testtool.FreePort(t)
	dir := initCommunity(t, "127.0.0.1:"+strconv.Itoa(port))

	const speed = 6
	// Tomorrow at 11:00 UTC: the sun is up, and every roster version that
	// community add signs now (valid from an interval after the open one,
	// in real time) governs the accelerated clock's intervals.
	epoch := time.Now().UTC().Truncate(24 * time.Hour).Add(35 * time.Hour)
	clock := testclock.Clock{Epoch: epoch, Origin: time.Now().Add(3 * time.Second).Round(0), Speed: speed}
	clockArgs := []string{"--clock-epoch", epoch.Format(time.RFC3339), "--clock-origin", strconv.FormatInt(clock.Origin.UnixNano(), 10), "--clock-speed", strconv.Itoa(speed)}
	homes := []string{"home-1", "home-2", "home-3", "home-4"} // sim: 1 and 3 solar-rich, 4 without panels
	base := consecutivePorts(t, len(homes))
	testtool.StartProcess(t, exec.Command(bin, "sim", "--homes", strconv.Itoa(len(homes)), "--listen", fmt.Sprintf("127.0.0.1:%d", base),
		"--speed", strconv.Itoa(speed), "--start", epoch.Format(time.RFC3339), "--clock-origin", strconv.FormatInt(clock.Origin.UnixNano(), 10), "--status", "0"))

	configs := map[string]string{"operator": filepath.Join(dir, "operator", "gateway.yaml")}
	dataDirs := map[string]string{"operator": filepath.Join(dir, "operator", "data")}
	for i, h := range homes {
		dataDir, bundle := addHome(t, dir, h, root)
		cfg := filepath.Join(root, h, "etc", "gateway.yaml")
		if code, out, errOut := runCLI(t, "", "join", bundle, "--config", cfg, "--data-dir", dataDir); code != 0 {
			t.Fatalf("join %s: exit %d %q %q", h, code, out, errOut)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", base+i)
		waitListening(t, addr)
		yaml := readFile(t, cfg)
		devices := fmt.Sprintf("devices:\n  - {name: grid, url: \"tcp://%s\", unit: 1, profile: sdm630, role: grid}\n  - {name: pv, url: \"tcp://%s\", unit: 2, profile: sunspec, role: pv}\n", addr, addr)
		if !strings.Contains(yaml, "\ndevices: []\n") {
			t.Fatalf("%s: no empty devices list to fill in:\n%s", cfg, yaml)
		}
		if err := os.WriteFile(cfg, []byte(strings.Replace(yaml, "\ndevices: []\n", "\n"+devices, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		configs[h], dataDirs[h] = cfg, dataDir
	}
	// Every home joined with the roster of its own admission; the later
	// versions reach it live, from the clearer on the roster topic.
	startCommunityBroker(t, dir, port)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2PGRID_") {
			env = append(env, kv)
		}
	}
	env = append(env, "P2PGRID_HTTP=", "P2PGRID_MARKET_INTERVAL=1m", "P2PGRID_MARKET_GATE_CLOSURE=15s", "P2PGRID_MARKET_GRACE=10s",
		"P2PGRID_MARKET_PRICE_FLOOR=0.05", "P2PGRID_MARKET_PRICE_CAP=0.30", "P2PGRID_MARKET_MIN_TRADE_KWH=0.001", "P2PGRID_TELEMETRY_ENABLED=false")
	procs := map[string]*testtool.Output{}
	for _, id := range append([]string{"operator"}, homes...) {
		cmd := exec.Command(bin, append([]string{"gateway", "--config", configs[id]}, clockArgs...)...)
		cmd.Env = env
		procs[id] = testtool.StartProcess(t, cmd)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for id, p := range procs {
				t.Logf("---- %s ----\n%s", id, tailString(p.String(), 30))
			}
		}
	})

	// An interval cleared with trades and recorded by every gateway: the
	// clearer cleared it and every home verified it.
	deadline := time.Now().Add(120 * time.Second)
	for {
		common := map[string]int{}
		for id := range procs {
			select {
			case <-procs[id].Exited():
				t.Fatalf("%s exited: %v", id, procs[id].Err())
			default:
			}
			for iv := range tradedIntervals(t, filepath.Join(dataDirs[id], "ledger")) {
				common[iv]++
			}
		}
		for iv, n := range common {
			if n == len(procs) {
				t.Logf("interval %s cleared with trades, in all %d ledgers", iv, n)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no interval with trades in every ledger after 120 s: %v", common)
		}
		time.Sleep(time.Second)
	}
}

// tradedIntervals are the intervals of a ledger's clearing records with
// trades.
func tradedIntervals(t *testing.T, dir string) map[string]bool {
	out := map[string]bool{}
	if _, err := os.Stat(dir); err != nil {
		return out
	}
	_, err := ledger.Scan(dir, 0, func(r ledger.Record) error {
		if r.Kind != record.KindClearing {
			return nil
		}
		var c struct {
			Interval string `json:"interval"`
			Trades   int64  `json:"trades"`
		}
		if json.Unmarshal(r.Data, &c) == nil && c.Trades > 0 {
			out[c.Interval] = true
		}
		return nil
	})
	if err != nil {
		t.Logf("scan %s: %v", dir, err)
	}
	return out
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
