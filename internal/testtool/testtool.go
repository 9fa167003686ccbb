// Package testtool finds the external programs that integration tests run
// (Debian's pymodbus, mbpoll, socat, mosquitto, influxd, chromium, ...).
//
// A missing tool fails the test with the command that installs it: an
// integration test never passes, or skips, silently. `make test` and
// .ci/run install every tool; `go test -short` skips integration tests
// before they ask for tools.
package testtool

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require returns the path of the program name, or fails the test saying
// how to install it (install is the command, e.g. "apt-get install mbpoll").
// It looks in PATH and then in the Debian locations /usr/bin and /usr/sbin.
func Require(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s is not installed; this integration test needs it. Install it with: %s (or run `make test`, which does)", name, install)
	return ""
}

// DebianPython returns Debian's /usr/bin/python3 after checking that it can
// import module, failing the test with how to install the package that
// provides it. Debian's interpreter is used on purpose: a python3 earlier
// in PATH (pyenv, a venv) does not see Debian's python3-* packages.
func DebianPython(t testing.TB, module, debianPackage string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("/usr/bin/python3 is missing; install it with: apt-get install python3 %s", debianPackage)
	}
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		t.Fatalf("Debian's python3 cannot import %s (%v: %s); install it with: apt-get install %s", module, err, out, debianPackage)
	}
	return py
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Integration skips t under -short, the quick unit-test run. Everything
// else about an integration test is unconditional.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs in `make test`, not under -short")
	}
}

// PtyPair starts socat joining two pseudo-terminals, raw and without echo,
// linked at dir/a and dir/b, and returns the two paths once socat says it
// is transferring data: only then are both ends configured (the links
// appear earlier, and a byte written before socat set raw mode comes out
// mangled). socat is killed when the test ends.
func PtyPair(t testing.TB, dir string) (a, b string) {
	t.Helper()
	socat := Require(t, "socat", "apt-get install socat")
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command(socat, "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start socat: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "starting data transfer loop") {
				close(ready)
				io.Copy(io.Discard, stderr)
				return
			}
		}
	}()
	select {
	case <-ready:
		return a, b
	case <-time.After(10 * time.Second):
		t.Fatalf("socat did not start its pty pair within 10s")
	}
	return "", ""
}

// Output collects a process's output while a test reads it, and tells
// when the process has exited.
type Output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	err  error
}

// Exited is closed when the process has exited; Err then says how.
func (o *Output) Exited() <-chan struct{} { return o.done }

// Err is the process's exit error, once Exited is closed.
func (o *Output) Err() error { <-o.done; return o.err }

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns what the process has written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// StartProcess starts cmd so that it dies with the test: killed when the
// test ends, and by the kernel (SIGKILL) if the test binary dies first.
// Its stderr, and its stdout unless the caller took it, go to the returned
// Output, for failure messages.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Output {
	t.Helper()
	out := &Output{done: make(chan struct{})}
	if cmd.Stdout == nil { // StdoutPipe sets it, so a caller's pipe stays
		cmd.Stdout = out
	}
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd, err)
	}
	go func() { out.err = cmd.Wait(); close(out.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-out.done
	})
	return out
}
