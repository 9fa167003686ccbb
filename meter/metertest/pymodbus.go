package metertest

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// StartPymodbus runs a pymodbus server script (Debian's python3-pymodbus)
// with args and waits for it to print "ready". The script must exit when
// its stdin closes, which the test holds open until it ends, so the server
// never outlives its test (meter/bus/testdata/pymodbus_server.py is one).
// It returns the process's output (stderr) for a test's failure messages.
func StartPymodbus(t testing.TB, script string, args ...string) *testtool.Output {
	t.Helper()
	py := testtool.DebianPython(t, "pymodbus", "python3-pymodbus")
	cmd := exec.Command(py, append([]string{script}, args...)...)
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
			t.Fatalf("pymodbus %s %v: %v\nstderr:\n%s", script, args, err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("pymodbus %s %v not ready after 15s\nstderr:\n%s", script, args, stderr)
	}
	return stderr
}

// StartPymodbusImage serves the register image at imagePath (a JSON file
// {"input": {"0x0000": "0x4366", ...}, "holding": {...}} with 0-based
// addresses, every other register 0) over Modbus TCP on 127.0.0.1:port
// with Debian's pymodbus, answering every unit id, until the test ends.
func StartPymodbusImage(t testing.TB, imagePath string, port int) *testtool.Output {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("metertest: cannot find its own folder")
	}
	script := filepath.Join(filepath.Dir(file), "testdata", "pymodbus_image.py")
	return StartPymodbus(t, script, imagePath, strconv.Itoa(port))
}
