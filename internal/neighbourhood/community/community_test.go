package community_test

import (
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood/community"
)

// Build lays out the operator first, as primary clearer, then the homes in
// order, the standby among them; the roster lists everyone with their
// keys, the two clearers as clearers; Configure sees each gateway's place.
func TestBuildLaysOutTheCommunity(t *testing.T) {
	var seen []string
	l := community.Layout{ID: "c1", Homes: []string{"ann", "bob", "cyd"}, Standby: "bob", Key: community.SeededKeys("test"),
		Configure: func(i int, cfg *config.Config) {
			seen = append(seen, cfg.Gateway)
			if i == 3 {
				cfg.Telemetry.Enabled = false
			}
		}}
	members, roster, err := l.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != "operator ann bob cyd" {
		t.Errorf("Configure saw %q, want the operator, then the homes in order", got)
	}
	wantRole := map[string]config.ClearerRole{"operator": config.ClearerPrimary, "ann": config.ClearerNone, "bob": config.ClearerStandby, "cyd": config.ClearerNone}
	if len(members) != 4 {
		t.Fatalf("%d members, want 4", len(members))
	}
	for i, m := range members {
		cfg := m.Config
		if cfg.Gateway != seen[i] || cfg.Community != "c1" || cfg.MQTT.ClientID != cfg.Gateway || cfg.Clearer != wantRole[cfg.Gateway] {
			t.Errorf("member %d: gateway %q community %q client %q clearer %q", i, cfg.Gateway, cfg.Community, cfg.MQTT.ClientID, cfg.Clearer)
		}
		if cfg.Market.PriceFloor == nil || cfg.Market.PriceFloor.String() != "0.05" || cfg.Market.PriceCap == nil || cfg.Market.PriceCap.String() != "0.3" {
			t.Errorf("%s: price floor %v, cap %v, want 0.05 and 0.30", cfg.Gateway, cfg.Market.PriceFloor, cfg.Market.PriceCap)
		}
		if err := cfg.CheckRoster(roster, m.Key.Public().(ed25519.PublicKey)); err != nil {
			t.Errorf("%s: its key and the roster disagree: %v", cfg.Gateway, err)
		}
		if clearer := roster.IsClearer(cfg.Gateway); clearer != (wantRole[cfg.Gateway] != config.ClearerNone) {
			t.Errorf("%s: a clearer in the roster: %v, want %v", cfg.Gateway, clearer, !clearer)
		}
	}
	if members[3].Config.Telemetry.Enabled || !members[2].Config.Telemetry.Enabled {
		t.Error("Configure's change to cyd alone did not stay with cyd")
	}
	if roster.Community != "c1" || len(roster.Gateways) != 4 {
		t.Errorf("roster of %q with %d gateways, want c1 with 4", roster.Community, len(roster.Gateways))
	}
}

// A configuration that does not validate, a standby that is not a home and
// a community without homes are refused, each error naming what is wrong.
func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    community.Layout
		want []string
	}{
		{"invalid configuration", community.Layout{ID: "c1", Homes: []string{"ann", "bob"}, Key: community.SeededKeys("test"),
			Configure: func(i int, cfg *config.Config) {
				if cfg.Gateway == "bob" {
					cfg.Telemetry.Every = 1
				}
			}}, []string{`community "c1"`, "configuration of bob", "telemetry.every"}},
		{"standby not a home", community.Layout{ID: "c1", Homes: []string{"ann"}, Standby: "zed", Key: community.SeededKeys("test")},
			[]string{`standby "zed" is not one of the homes`}},
		{"no homes", community.Layout{ID: "c1", Key: community.SeededKeys("test")}, []string{`community "c1": no homes`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.l.Build()
			if err == nil {
				t.Fatal("built")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// Seeded keys are the same for the same seed and gateway, and differ
// between gateways and between seeds.
func TestSeededKeys(t *testing.T) {
	key := func(seed, id string) string {
		cfg := config.Default()
		cfg.Gateway = id
		k, err := community.SeededKeys(seed)(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(k)
	}
	ann, again := key("s", "ann"), key("s", "ann")
	if ann != again {
		t.Error("one seed and gateway gave two keys")
	}
	if ann == key("s", "bob") || ann == key("t", "ann") {
		t.Error("two gateways, or two seeds, gave one key")
	}
	if _, err := community.SeededKeys("s")(config.Default()); err == nil || !strings.Contains(err.Error(), "no gateway id") {
		t.Errorf("a configuration without gateway id: %v", err)
	}
}

// Without Key, each gateway's key is created in its data directory and
// found there again: a second Build gives the same roster.
func TestBuildKeepsKeysInDataDirs(t *testing.T) {
	dir := t.TempDir()
	l := community.Layout{ID: "c1", Homes: []string{"ann", "bob"}, Configure: func(_ int, cfg *config.Config) {
		cfg.DataDir = filepath.Join(dir, cfg.Gateway)
	}}
	_, first, err := l.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, again, err := l.Build()
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Encode()) != string(again.Encode()) {
		t.Errorf("the second roster differs:\n%s\n%s", first.Encode(), again.Encode())
	}
}
