package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter/sim"
)

// startSim serves one simulated home on a free port, clock frozen at noon.
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

func TestMeterRead(t *testing.T) {
	url := startSim(t)
	code, out, errOut := runCLI(t, "", "meter", "read", "--url", url, "--unit", "1", "--device", "sdm630")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"device", "unit", "kind", "power_w", "import_wh", "export_wh", "frequency_hz", "voltage_v", "current_a", "phase_power_w"} {
		if _, ok := r[k]; !ok {
			t.Errorf("reading lacks %q: %s", k, out)
		}
	}
	if r["device"] != "sdm630" || r["kind"] != "meter" || r["unit"] != 1.0 {
		t.Errorf("reading %s", out)
	}

	code, out, errOut = runCLI(t, "", "meter", "read", "--url", url, "--unit", "2", "--device", "sunspec")
	if code != 0 || !strings.Contains(out, `"kind":"inverter"`) || !strings.Contains(out, `"serial":"SIM-home1"`) {
		t.Errorf("sunspec: exit %d %s %s", code, out, errOut)
	}
}

func TestMeterReadErrors(t *testing.T) {
	url := startSim(t)
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", testtool.FreePort(t))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown profile", []string{"--url", url, "--device", "sdm999"}, `profile "sdm999": unknown device profile`},
		{"no answer", []string{"--url", dead, "--device", "sdm630", "--timeout", "200ms"}, "connection refused"},
		{"exception", []string{"--url", url, "--unit", "7", "--device", "sdm630"}, "modbus exception 11"},
		{"not sunspec", []string{"--url", url, "--unit", "1", "--device", "sunspec"}, "unit 1"},
		{"bad url", []string{"--url", "udp://x", "--device", "sdm630"}, `unknown scheme "udp"`},
		{"no url", []string{"--device", "sdm630"}, "--url is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", append([]string{"meter", "read"}, tc.args...)...)
			if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestMeterScan(t *testing.T) {
	url := startSim(t)
	code, out, errOut := runCLI(t, "", "meter", "scan", "--url", url, "--units", "1-3", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"unit":1`) || !strings.Contains(lines[1], `"sunspec":true`) ||
		!strings.Contains(lines[1], `"serial":"SIM-home1"`) {
		t.Errorf("scan found:\n%s", out)
	}
	if !strings.Contains(errOut, "scanned 3 units, 2 answered") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	if code, _, errOut := runCLI(t, "", "meter", "scan", "--url", url, "--units", "0-300"); code != 2 || !strings.Contains(errOut, "1 to 247") {
		t.Errorf("bad --units: exit %d %q", code, errOut)
	}
}
