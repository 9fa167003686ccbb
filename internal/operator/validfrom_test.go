package operator

import (
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"
)

// A new roster version takes effect from the interval after the open one
// (its gate closes at the earliest an interval and a bit from now), and
// never before the newest version does, even if the clock went back.
func TestNextValidFrom(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 7, 30, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "c")
	if _, err := Init(dir, "c1", "broker.lan", now); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.roster.ValidFrom; got != "2026-12-03T10:00Z" {
		t.Errorf("version 1 valid from %s, want the current interval 10:00", got)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	res, err := c.AddHome("home-1", pub, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// 10:07:30: 10:15 is open (its gate closes 10:13); 10:30 is after it.
	if got := res.Roster.ValidFrom; got != "2026-12-03T10:30Z" {
		t.Errorf("version 2 valid from %s, want 10:30", got)
	}
	if got := res.Bundle.Expires; !got.Equal(now.Add(time.Hour)) {
		t.Errorf("bundle expires %v, want an hour from now", got)
	}
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	res, err = c.AddHome("home-2", pub2, now.Add(-time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Roster.ValidFrom; got != "2026-12-03T10:30Z" || res.Roster.Seq != 3 {
		t.Errorf("version %d, made with the clock an hour back, valid from %s, want 3 from 10:30", res.Roster.Seq, got)
	}
}

// The calendar that times a new version is the clearer's configuration
// with the environment's P2PGRID_ overrides, as the clearer reads it: an
// operator who runs the market at one-minute intervals gets versions
// valid from the minute after the next one, not from a quarter hour.
func TestNextValidFromTakesTheEnvironment(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 7, 30, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "c")
	if _, err := Init(dir, "c1", "broker.lan", now); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, []string{"P2PGRID_MARKET_INTERVAL=1m", "P2PGRID_MARKET_GATE_CLOSURE=15s", "P2PGRID_MARKET_GRACE=10s", "HOME=/root"})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	res, err := c.AddHome("home-1", pub, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Roster.ValidFrom; got != "2026-12-03T10:09Z" {
		t.Errorf("valid from %s, want 10:09 (the open interval is 10:08)", got)
	}
	if _, err := Open(dir, []string{"P2PGRID_MARKET_INTERVAL=7x"}); err == nil {
		t.Error("Open took an environment the clearer would refuse")
	}
}
