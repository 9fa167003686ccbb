package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// restartWithState replaces gateway id by a new one (a new process: same
// key, configuration and state directory, fresh memory).
func (c *community) restartWithState(t *testing.T, id, stateDir string) *Gateway {
	t.Helper()
	cfg := testConfig(id, config.ClearerNone)
	if old := c.gws[id]; old != nil {
		cfg = old.cfg
	}
	var devs []Device
	if h, ok := c.homes[id]; ok {
		devs = append(devs, Device{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: h})
	}
	g, err := New(Options{SyncPolls: true, Config: cfg, Key: testKey(id), Roster: c.roster, MQTT: c.hub.Client(id + "-restarted"),
		Devices: devs, Now: c.now, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.gws[id] = g
	c.mu.Unlock()
	return g
}

func meteredOf(t *testing.T, c *community, interval, gw string) *protocol.MeteredMsg {
	t.Helper()
	msg, err := protocol.DecodeSettlement(c.hub.Retained(c.gws["operator"].Topics().Settlement(interval)))
	if err != nil {
		t.Fatalf("settlement of %s: %v", interval, err)
	}
	ms, err := msg.Verify(c.roster)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Gateway == gw {
			return m
		}
	}
	return nil
}

// A gateway restarted for a few seconds across the end of an interval
// still publishes that interval's figures: the counters at its start were
// on disk, and the first reading after the restart is near its end.
func TestMeteredFiguresSurviveRestart(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	dir := t.TempDir()
	c.gws["home1"] = c.restartWithState(t, "home1", dir) // from the start with a state directory
	c.run(t0.Add(29*time.Minute+55*time.Second), 5*time.Second)
	if _, err := os.Stat(filepath.Join(dir, BoundariesFile)); err != nil {
		t.Fatalf("no boundary file: %v", err)
	}
	// home1 is down from 12:29:55 to 12:30:00, across the 12:30 boundary.
	delete(c.gws, "home1")
	c.run(t0.Add(30*time.Minute), 5*time.Second)
	c.restartWithState(t, "home1", dir)
	c.run(t0.Add(33*time.Minute), 5*time.Second) // 12:15 is settled at 12:32
	m := meteredOf(t, c, "2026-11-22T12:15Z", "home1")
	// The first reading after the restart is at 12:30:05, one poll late:
	// the interval's figures run from 12:15:00 to 12:30:05 (1005 Wh at
	// 4 kW), as the first poll after a boundary always stands for it.
	if m == nil || m.ExportWh != 1005 || m.ImportWh != 0 {
		t.Fatalf("home1's figures of 12:15 after a restart across its end: %+v, want export 1005 Wh", m)
	}
	if a := c.gws["home1"].Alarms(); len(a) != 0 {
		t.Errorf("alarms %+v", a)
	}
}

// A corrupt boundary file is reported and replaced; the gateway runs on.
func TestCorruptBoundaryFile(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	dir := t.TempDir()
	path := filepath.Join(dir, BoundariesFile)
	if err := os.WriteFile(path, []byte(`{"v":1,"boundaries":[{"start":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadBoundaries(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: err %v, want one naming %s", err, path)
	}
	c.restartWithState(t, "home1", dir)
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	if m := meteredOf(t, c, "2026-11-22T12:15Z", "home1"); m == nil || m.ExportWh != 1000 {
		t.Fatalf("figures after a corrupt state file: %+v", m)
	}
	b, err := loadBoundaries(path)
	if err != nil || b.Len() == 0 {
		t.Fatalf("state file not rewritten: %v, %d boundaries", err, b.Len())
	}
}

// A broker that silently drops a home's metered figures (an ACL without
// metered/<gateway>) makes the home raise an alarm naming the likely
// cause, in its retained status and its health, once.
func TestMeteredFiguresDroppedRaiseAlarm(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.gws["home1"].mq.(*gatewaytest.Client).Drop = func(topic string) bool { return strings.Contains(topic, "/metered/") }
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	if m := meteredOf(t, c, "2026-11-22T12:15Z", "home1"); m != nil {
		t.Fatalf("dropped figures in the settlement: %+v", m)
	}
	alarms := c.gws["home1"].Alarms()
	if len(alarms) != 1 || alarms[0].Kind != protocol.AlarmMeteredMissing || alarms[0].Interval != "2026-11-22T12:15Z" ||
		!strings.Contains(alarms[0].Detail, "ACL") || !strings.Contains(alarms[0].Detail, "metered") {
		t.Fatalf("home1 alarms %+v, want one metered_missing naming the ACL", alarms)
	}
	st, err := protocol.DecodeStatus(c.hub.Retained(c.gws["home1"].Topics().Status("home1")))
	if err != nil || len(st.Alarms) != 1 || st.Alarms[0].Kind != protocol.AlarmMeteredMissing {
		t.Errorf("retained status %+v %v", st, err)
	}
	if h := c.gws["home1"].Health(); h.Status == "ok" || h.Alarms != 1 {
		t.Errorf("health with an open alarm: %+v", h)
	}
	if a := c.gws["home2"].Alarms(); len(a) != 0 {
		t.Errorf("home2, whose figures arrived, alarms %+v", a)
	}
}

// A broker that drops the clearer's settlements: every home whose figures
// went out raises settlement_missing once the standby's turn is a grace
// period past.
func TestSettlementDroppedRaisesAlarm(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.gws["operator"].mq.(*gatewaytest.Client).Drop = func(topic string) bool { return strings.Contains(topic, "/settlement/") }
	// 12:15 ends 12:30; the primary settles at 12:32, a standby at 12:32:30;
	// the alarm is due at 12:33.
	c.run(t0.Add(32*time.Minute+55*time.Second), 5*time.Second)
	if a := c.gws["home1"].Alarms(); len(a) != 0 {
		t.Fatalf("alarm before the settlement was due: %+v", a)
	}
	c.run(t0.Add(40*time.Minute), 5*time.Second)
	for _, id := range []string{"home1", "home2"} {
		a := c.gws[id].Alarms()
		if len(a) != 1 || a[0].Kind != protocol.AlarmSettlementMissing || a[0].Interval != "2026-11-22T12:15Z" {
			t.Errorf("%s alarms %+v, want one settlement_missing for 12:15", id, a)
		}
	}
}

// No clearer publishes (the broker drops book and result): a home that
// placed an order raises no_result a grace period after a standby's turn.
func TestNoResultRaisesAlarm(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.gws["operator"].mq.(*gatewaytest.Client).Drop = func(topic string) bool {
		return strings.Contains(topic, "/book/") || strings.Contains(topic, "/result/")
	}
	c.run(t0.Add(13*time.Minute+55*time.Second), 5*time.Second) // gate 12:13, + 2 x grace 30s = 12:14
	if a := c.gws["home1"].Alarms(); len(a) != 0 {
		t.Fatalf("alarm before the result was due: %+v", a)
	}
	c.run(t0.Add(14*time.Minute+30*time.Second), 5*time.Second)
	a := c.gws["home1"].Alarms()
	if len(a) != 1 || a[0].Kind != protocol.AlarmNoResult || a[0].Interval != "2026-11-22T12:15Z" {
		t.Errorf("home1 alarms %+v, want one no_result for 12:15", a)
	}
}
