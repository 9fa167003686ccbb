package daemon

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter/sim"
)

// A device configured at poll 100ms is read at that rate, not at the
// loop's old fixed 1s tick.
func TestPollFasterThanOneSecond(t *testing.T) {
	noon := time.Date(2026, 6, 21, 12, 0, 0, 0, time.UTC)
	s, err := sim.New(sim.Options{Homes: sim.DefaultHomes(1, 1), Start: noon, Now: func() time.Time { return noon }})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ServeTCP(fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	cfg := config.Default()
	cfg.Gateway, cfg.Community, cfg.DataDir = "home1", "c1", t.TempDir()
	cfg.MQTT.Broker, cfg.MQTT.ClientID = b.URL(), "home1"
	cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	cfg.Devices = []config.Device{{Name: "grid", URL: l.URL, Unit: int(sim.MeterUnit), Profile: sim.MeterProfile,
		Role: config.RoleGrid, Poll: 100 * time.Millisecond}}
	log := slog.New(slog.DiscardHandler)
	key, err := Key(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	roster, err := protocol.NewRoster("c1", []protocol.Member{{ID: "home1", PublicKey: key.Public().(ed25519.PublicKey), Clearer: true}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Roster = filepath.Join(cfg.DataDir, "roster.json")
	if err := os.WriteFile(cfg.Roster, roster.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *gateway.Gateway, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: log, Roster: roster, Ready: func(g *gateway.Gateway) { ready <- g }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("gateway not ready")
	}
	// 10 reads take 1 s at poll 100ms; at the old fixed 1s tick, 4 s gave 5.
	start := time.Now()
	reads := 0
	var last []byte
	for time.Since(start) < 4*time.Second && reads < 10 {
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get("http://" + cfg.HTTP + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		last, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := okReads.FindSubmatch(last); m != nil {
			reads, _ = strconv.Atoi(string(m[1]))
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if reads < 10 {
		t.Errorf("%d reads in %s at poll 100ms; metrics:\n%s", reads, elapsed.Round(time.Millisecond), grep(string(last), "p2pgrid_meter_"))
	}
}

var okReads = regexp.MustCompile(`p2pgrid_meter_reads_total\{device="grid",result="ok"\} (\d+)`)

func TestLoopTick(t *testing.T) {
	cfg := config.Default()
	if got, err := loopTick(cfg, 0); got != DefaultTick || err != nil {
		t.Errorf("no devices: %s %v", got, err)
	}
	cfg.Devices = []config.Device{{Name: "grid", Poll: 5 * time.Second}, {Name: "fast", Poll: 250 * time.Millisecond}}
	if got, err := loopTick(cfg, 0); got != 250*time.Millisecond || err != nil {
		t.Errorf("default: %s %v, want the shortest poll", got, err)
	}
	if _, err := loopTick(cfg, time.Second); err == nil || !strings.Contains(err.Error(), `device "fast"'s poll 250ms`) {
		t.Errorf("a tick slower than a poll: %v", err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
