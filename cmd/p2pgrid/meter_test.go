package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter/metertest"
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
		{"broadcast unit", []string{"--url", url, "--unit", "0", "--device", "sdm630"}, "unit 0: a Modbus unit id is 1 to 247"},
		{"reserved unit", []string{"--url", url, "--unit", "250", "--device", "sunspec"}, "unit 250"},
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

// newScanDevice is a Modbus TCP device on which only the units present
// exist, answering reads of registers 0-99 (zeros).
func newScanDevice(t *testing.T, present ...uint8) *metertest.TCPDevice {
	d := metertest.NewTCP(t)
	for _, u := range present {
		d.SetHolding(u, 0, make([]uint16, 100)...)
		d.SetInput(u, 0, make([]uint16, 100)...)
	}
	return d
}

// A full scan asks an absent unit once, with one request's timeout: without
// retries and without trying the other SunSpec bases on a silent unit.
func TestMeterScanFullRange(t *testing.T) {
	d := newScanDevice(t, 1, 200)
	const timeout = 20 * time.Millisecond
	start := time.Now()
	code, out, errOut := runCLI(t, "", "meter", "scan", "--url", d.URL(), "--timeout", timeout.String(), "--format", "json")
	elapsed := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"unit":1,`) || !strings.Contains(lines[1], `"unit":200,`) {
		t.Errorf("found:\n%s", out)
	}
	// Each absent unit at most once. Under load a 20 ms timeout can pass
	// before a request is on the wire (the scan reconnects after a
	// timeout), so a few may not be asked at all; most must be.
	unasked := 0
	for u := 2; u <= 247; u++ {
		if u == 200 {
			continue
		}
		switch n := d.Requests(uint8(u)); {
		case n > 1:
			t.Errorf("absent unit %d was asked %d times, want once", u, n)
		case n == 0:
			unasked++
		}
	}
	if unasked > 24 {
		t.Errorf("%d of 245 absent units were never asked", unasked)
	}
	if n := d.Requests(1); n < 2 {
		t.Errorf("present unit 1 was asked %d times: not probed beyond the first request", n)
	}
	// Loose: 245 silent units at one timeout each, plus reconnects; with
	// retries (3 attempts) and the 3 SunSpec bases it would be 9 times that.
	if limit := 3 * 247 * timeout; elapsed > limit {
		t.Errorf("full scan took %s, want under %s", elapsed, limit)
	}
	if strings.Contains(errOut, "\r") || !strings.Contains(errOut, "unit 200 answers\n") ||
		!strings.HasSuffix(errOut, "scanned 247 units, 2 answered\n") {
		t.Errorf("progress on a non-terminal: %q", errOut)
	}
}

// SIGINT (Ctrl-C) or SIGTERM in the middle of a scan: the real binary
// prints what it found so far, says it was interrupted, and exits 1.
func TestMeterScanInterrupted(t *testing.T) {
	testtool.Integration(t)
	bin := filepath.Join(t.TempDir(), "p2pgrid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { scanInterrupted(t, bin, sig) })
	}
}

func scanInterrupted(t *testing.T, bin string, sig syscall.Signal) {
	d := newScanDevice(t, 1, 3)
	cmd := exec.Command(bin, "meter", "scan", "--url", d.URL(), "--timeout", "200ms")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if d.Highest() >= 6 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("scan never reached unit 6; stderr %q", stderr.String())
		}
	}
	cmd.Process.Signal(sig)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit 10 s after the signal")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit after the signal: %v, want status 1", err)
	}
	rows := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[1], "1 ") || !strings.HasPrefix(rows[2], "3 ") {
		t.Errorf("stdout after the signal, want the header and units 1 and 3:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "scan interrupted after ") || strings.Contains(stderr.String(), "\r") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// A scan of a peer we did not write: pymodbus 3.0.0 serving units 1 and 2
// over TCP, which drops requests to any other unit. Both are found, and the
// absent units cost one timeout each.
func TestMeterScanPymodbus(t *testing.T) {
	testtool.Integration(t)
	port := testtool.FreePort(t)
	img := metertest.WriteImage(t, metertest.Image{Input: map[uint16]uint16{0: 1}, Holding: map[uint16]uint16{0: 1}})
	metertest.StartPymodbus(t, metertest.Pymodbus{Port: port, Sparse: true, Units: map[uint8]string{1: img, 2: img}})
	const timeout = 200 * time.Millisecond
	start := time.Now()
	code, out, errOut := runCLI(t, "", "meter", "scan", "--url", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"--units", "1-30", "--timeout", timeout.String(), "--format", "json")
	elapsed := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"unit":1,"sunspec":false`) || !strings.Contains(lines[1], `"unit":2,`) ||
		!strings.Contains(lines[0], `"note":"answers register reads"`) {
		t.Errorf("found:\n%s", out)
	}
	// 28 absent units at one timeout each; three attempts each would be 3 times that.
	if limit := 2 * 28 * timeout; elapsed > limit {
		t.Errorf("scan of 30 units took %s, want under %s", elapsed, limit)
	}
}

// On a terminal the progress is one line redrawn with \r.
func TestMeterScanProgressOnATerminal(t *testing.T) {
	testtool.Integration(t)
	a, b := testtool.PtyPair(t, t.TempDir())
	tty, err := os.OpenFile(a, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	other, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	seen := make(chan string, 1)
	go func() {
		var got []byte
		buf := make([]byte, 256)
		for !bytes.Contains(got, []byte("answered")) || !bytes.HasSuffix(got, []byte("\n")) {
			n, err := other.Read(buf)
			if err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		seen <- string(got)
	}()
	d := newScanDevice(t, 1)
	var out bytes.Buffer
	if code := run([]string{"meter", "scan", "--url", d.URL(), "--units", "1-3", "--timeout", "20ms"}, strings.NewReader(""), &out, tty); code != 0 {
		t.Fatalf("exit %d", code)
	}
	select {
	case got := <-seen:
		if !strings.Contains(got, "\rscanning unit 2 (2/3), 1 found") || !strings.Contains(got, "\rscanned 3 units, 1 answered") ||
			strings.Contains(got, "unit 1 answers\n") {
			t.Errorf("terminal progress %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress on the terminal")
	}
}
