package metertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// Pymodbus says what StartPymodbus serves, and where. Give Port or
// Serial, and Image or Units.
type Pymodbus struct {
	// Port serves Modbus TCP on 127.0.0.1:Port.
	Port int
	// Serial serves Modbus RTU (8N1 at Baud) on a tty, such as one end
	// of a testtool.PtyPair.
	Serial string
	Baud   int

	// Image is an image file (see WriteImage) served to every unit id.
	Image string
	// Units are image files by unit id, each unit its own; a request to
	// any other unit is not answered at all (pymodbus 3.0.0 drops it and
	// sends no exception 11), so the client times out.
	Units map[uint8]string

	// Sparse makes a register not in the image an illegal data address
	// (exception 2) instead of reading 0.
	Sparse bool
}

// args are the script's arguments for p.
func (p Pymodbus) args() ([]string, error) {
	var args []string
	switch {
	case p.Port != 0 && p.Serial == "":
		args = append(args, "--tcp", strconv.Itoa(p.Port))
	case p.Serial != "" && p.Port == 0 && p.Baud > 0:
		args = append(args, "--rtu", p.Serial, "--baud", strconv.Itoa(p.Baud))
	default:
		return nil, errors.New("want a Port, or a Serial device and its Baud")
	}
	if p.Sparse {
		args = append(args, "--sparse")
	}
	switch {
	case p.Image != "" && len(p.Units) == 0:
		args = append(args, "--image", p.Image)
	case p.Image == "" && len(p.Units) > 0:
		for _, u := range slices.Sorted(maps.Keys(p.Units)) {
			args = append(args, "--unit", fmt.Sprintf("%d=%s", u, p.Units[u]))
		}
	default:
		return nil, errors.New("want an Image for every unit, or Units")
	}
	return args, nil
}

// StartPymodbus serves register images as p says with Debian's pymodbus
// (python3-pymodbus, through testdata/pymodbus_image.py) until the test
// ends, and returns once the server is serving. It returns the server's
// output (stderr) for a test's failure messages.
func StartPymodbus(t testing.TB, p Pymodbus) *testtool.Output {
	t.Helper()
	args, err := p.args()
	if err != nil {
		t.Fatalf("metertest.StartPymodbus(%+v): %v", p, err)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("metertest: cannot find its own folder")
	}
	script := filepath.Join(filepath.Dir(file), "testdata", "pymodbus_image.py")
	py := testtool.DebianPython(t, "pymodbus", "python3-pymodbus")
	cmd := exec.Command(py, append([]string{script}, args...)...)
	// The script exits when its stdin closes, which happens when the test
	// ends, so the server never outlives its test.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := testtool.StartProcess(t, cmd)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("exited before it was ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("pymodbus %v: %v\nstderr:\n%s", args, err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("pymodbus %v not ready after 15s\nstderr:\n%s", args, stderr)
	}
	return stderr
}

// Image is a register image: register values by 0-based address, input
// and holding registers apart.
type Image struct {
	Input   map[uint16]uint16
	Holding map[uint16]uint16
}

// WriteImage writes img as an image file in a new temporary folder of
// the test and returns its path. The file is the format of meter/profile's
// golden cases, addresses and values as hex words:
//
//	{"input": {"0x0000": "0x4366", ...}, "holding": {...}}
func WriteImage(t testing.TB, img Image) string {
	t.Helper()
	hex := func(regs map[uint16]uint16) map[string]string {
		out := make(map[string]string, len(regs))
		for a, v := range regs {
			out[fmt.Sprintf("0x%04X", a)] = fmt.Sprintf("0x%04X", v)
		}
		return out
	}
	data, err := json.Marshal(map[string]map[string]string{"input": hex(img.Input), "holding": hex(img.Holding)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
