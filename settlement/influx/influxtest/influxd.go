// Package influxtest runs a real InfluxDB 1.8 server (influxd, built by
// scripts/install-influxd) for integration tests, on loopback ports with its
// data in the test's temporary directory, the way net/http/httptest runs an
// HTTP server. A test that uses it should call testtool.Integration first;
// Start fails the test, saying how to install influxd, when it is missing.
package influxtest

import (
	"encoding/json"
	"fmt"
	"go/build"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

const installInfluxd = "scripts/install-influxd (go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10)"

// findInfluxd looks where scripts/install-influxd puts influxd (bin/tools
// of the module), then in GOPATH/bin, then where testtool.Require looks.
func findInfluxd(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	for _, p := range []string{
		filepath.Join(root, "bin", "tools", "influxd"),
		filepath.Join(build.Default.GOPATH, "bin", "influxd"),
	} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	return testtool.Require(t, "influxd", installInfluxd)
}

// Server is an InfluxDB 1.8 server on loopback ports with its data in a
// test directory; it can be stopped and started again on the same data.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	t      testing.TB
	bin    string
	dir    string
	config string
	mu     sync.Mutex // Start and Stop may be called from other goroutines
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts influxd with a generated configuration (Flux enabled) and
// waits for /ping. It is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	d := &Server{t: t, bin: findInfluxd(t), dir: t.TempDir()}
	httpPort, rpcPort := testtool.FreePort(t), testtool.FreePort(t)
	d.URL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	d.config = filepath.Join(d.dir, "influxdb.conf")
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q

[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
`, rpcPort, filepath.Join(d.dir, "meta"), filepath.Join(d.dir, "data"), filepath.Join(d.dir, "wal"), httpPort)
	if err := os.WriteFile(d.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	d.Start()
	return d
}

// Start starts the server again (after Stop) on the same data.
func (d *Server) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(d.dir, "influxd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(d.bin, "run", "-config", d.config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(d.cmd, d.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("influxd exited at start:\n%s", d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxd did not answer /ping within 20 s (%v):\n%s", err, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends influxd with SIGTERM, then SIGKILL after 10 s.
func (d *Server) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// Log returns what influxd logged.
func (d *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "influxd.log"))
	return string(b)
}

// InfluxQL runs a statement through the 1.x /query endpoint.
func (d *Server) InfluxQL(q string) {
	d.t.Helper()
	resp, err := http.PostForm(d.URL+"/query", url.Values{"q": {q}})
	if err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Error != "" ||
		(len(body.Results) > 0 && body.Results[0].Error != "") {
		d.t.Fatalf("%s: HTTP %d, %+v, %v", q, resp.StatusCode, body, err)
	}
}
