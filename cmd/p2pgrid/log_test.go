package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The gateway logs at the level and in the format of its configuration's
// log section, unless --log-level or --log-format says otherwise. The
// configuration here is refused by the gateway's check, so it logs that it
// starts (INFO) and why it stopped (ERROR), and exits.
func TestGatewayLogFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("gateway: home1\ncommunity: c1\ndata_dir: %s\nroster: %s\nhttp: \"\"\n"+
		"log:\n  level: warn\n  format: json\n",
		filepath.Join(dir, "data"), filepath.Join(dir, "missing-roster.json"))), 0o644)
	for _, c := range []struct {
		flags          []string
		json, starting bool // JSON lines; the INFO line "gateway starting" logged
	}{
		{nil, true, false},
		{[]string{"--log-format", "text"}, false, false},
		{[]string{"--log-level", "info"}, true, true},
		{[]string{"--log-level", "info", "--log-format", "text"}, false, true},
	} {
		_, _, stderr := runCLI(t, "", append([]string{"gateway", "--config", cfg}, c.flags...)...)
		stopped := `msg="gateway stopped"`
		if c.json {
			stopped = `"msg":"gateway stopped"`
		}
		if !strings.Contains(stderr, stopped) {
			t.Errorf("flags %q: the log has no %s:\n%s", c.flags, stopped, stderr)
		}
		if got := strings.Contains(stderr, "gateway starting"); got != c.starting {
			t.Errorf("flags %q: INFO line logged %v, want %v:\n%s", c.flags, got, c.starting, stderr)
		}
	}

	// A bad value is refused at the door, naming the key and the values it takes.
	os.WriteFile(cfg, []byte("gateway: home1\ncommunity: c1\nroster: r.json\nlog: {format: logfmt}\n"), 0o644)
	code, _, stderr := runCLI(t, "", "gateway", "--config", cfg)
	if want := `log.format: "logfmt" is not a log format (want text or json)`; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("log.format logfmt: exit %d, stderr %q, want exit 2 and %q", code, stderr, want)
	}
}
