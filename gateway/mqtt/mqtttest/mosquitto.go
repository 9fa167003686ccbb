// Package mqtttest runs a real Mosquitto broker for integration tests, the
// way net/http/httptest runs an HTTP server: on a free loopback port, with
// a password file in the test's temporary directory, and either a
// generated configuration (Start: the ACL file the test names, usually the
// shipped configs/mosquitto/acl, and no persistence, so that a restart
// forgets every session and subscription) or the shipped
// configs/mosquitto/mosquitto.conf itself, with its TLS listener and
// certificates made by internal/pki (StartShipped, StartShippedWith), and
// optionally as a community's second broker, bridged to a first one with
// the shipped configs/mosquitto/bridge.conf (Shipped.Bridge).
//
// It is for tests only. A test that uses it should call
// testtool.Integration first; Start fails the test, saying how to install
// Mosquitto, when it is missing.
package mqtttest

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/pki"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

const install = "apt-get install mosquitto mosquitto-clients"

// Config is what a test wants of its Mosquitto.
type Config struct {
	// ACLFile is the acl_file; empty means no ACL (everything allowed).
	ACLFile string
	// Users are the usernames and passwords in the generated password file.
	// Anonymous clients are refused.
	Users map[string]string
	// TLS, if set, adds a TLS listener on a second free port that requires
	// a client certificate signed by CAFile.
	TLS *TLSFiles
}

// TLSFiles are the PEM files of a TLS listener.
type TLSFiles struct {
	CAFile   string // CA that signed CertFile and the client certificates
	CertFile string // the broker's certificate (valid for 127.0.0.1)
	KeyFile  string
}

// Mosquitto is a running (or killed) Mosquitto.
type Mosquitto struct {
	// URL is tcp://127.0.0.1:Port; TLSURL is ssl://127.0.0.1:TLSPort when
	// there is a TLS listener (Config.TLS was given, or StartShipped).
	URL, TLSURL   string
	Port, TLSPort int
	// TLS are the files of the TLS listener, when there is one.
	TLS *TLSFiles
	// PasswordFile is the password_file, written by mosquitto_passwd; a
	// test may change it with mosquitto_passwd and Reload.
	PasswordFile string

	t       testing.TB
	bin     string
	conf    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// ShippedACL returns the path of the repository's configs/mosquitto/acl.
func ShippedACL(t testing.TB) string {
	t.Helper()
	return shipped(t, "acl")
}

// ShippedConf returns the path of the repository's
// configs/mosquitto/mosquitto.conf.
func ShippedConf(t testing.TB) string {
	t.Helper()
	return shipped(t, "mosquitto.conf")
}

// The names configs/mosquitto/README.md's example blocks use.
const (
	readmeCommunity = "lindenweg"
	readmeHome      = "home-17"
	readmeApp       = "home-17-app"
	readmeClearer   = "clearer-north"
	readmeDashboard = "dashboard"
)

// AppBlock returns the "user" block configs/mosquitto/README.md tells to
// append to the acl for a home's read-only app login, for login, reading
// home's topics of community: the README's example with its names
// replaced, so a test runs the very block the README documents.
func AppBlock(t testing.TB, community, home, login string) string {
	t.Helper()
	b := readmeBlock(t, "user "+readmeApp+"\n")
	b = strings.ReplaceAll(b, readmeApp, "\x00")
	b = strings.ReplaceAll(b, readmeHome, home)
	b = strings.ReplaceAll(b, readmeCommunity, community)
	return strings.ReplaceAll(b, "\x00", login)
}

// DashboardBlock returns the "user" block configs/mosquitto/README.md
// tells to append to the acl for the operator dashboard's login, for the
// community and login given.
func DashboardBlock(t testing.TB, community, login string) string {
	t.Helper()
	b := readmeBlock(t, "user "+readmeDashboard+"\n")
	b = strings.ReplaceAll(b, readmeDashboard, "\x00")
	b = strings.ReplaceAll(b, readmeCommunity, community)
	return strings.ReplaceAll(b, "\x00", login)
}

// ClearerBlock returns the "user" block configs/mosquitto/README.md tells
// to append to the acl for a further clearer, for the clearer name.
func ClearerBlock(t testing.TB, name string) string {
	t.Helper()
	return strings.ReplaceAll(readmeBlock(t, "user "+readmeClearer+"\n"), readmeClearer, name)
}

// readmeBlock returns the one fenced block of configs/mosquitto/README.md
// that starts with prefix.
func readmeBlock(t testing.TB, prefix string) string {
	t.Helper()
	raw, err := os.ReadFile(shipped(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for i, part := range strings.Split(string(raw), "```") {
		// The odd parts are inside fences: the info string, then the text.
		if i%2 == 1 {
			if _, text, ok := strings.Cut(part, "\n"); ok && strings.HasPrefix(text, prefix) {
				found = append(found, text)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("mqtttest: configs/mosquitto/README.md has %d fenced blocks starting with %q, want 1", len(found), prefix)
	}
	return found[0]
}

func shipped(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("mqtttest: cannot locate the source file to find configs/mosquitto/")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "configs", "mosquitto", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("mqtttest: shipped file: %v", err)
	}
	return p
}

// newMosquitto prepares a Mosquitto: a temporary directory, a free port
// and the password file for users.
func newMosquitto(t testing.TB, users map[string]string) (m *Mosquitto, dir, pwFile string) {
	t.Helper()
	bin := testtool.Require(t, "mosquitto", install)
	passwd := testtool.Require(t, "mosquitto_passwd", install)
	dir = t.TempDir()
	m = &Mosquitto{
		t:       t,
		bin:     bin,
		conf:    filepath.Join(dir, "mosquitto.conf"),
		logPath: filepath.Join(dir, "mosquitto.log"),
		Port:    testtool.FreePort(t),
	}
	m.URL = "tcp://127.0.0.1:" + strconv.Itoa(m.Port)

	pwFile = filepath.Join(dir, "passwd")
	m.PasswordFile = pwFile
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	for i, u := range names {
		args := []string{"-b", pwFile, u, users[u]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd for user %q: %v: %s", u, err, out)
		}
	}
	return m, dir, pwFile
}

// run writes conf, starts Mosquitto and arranges for it to be killed (and
// its configuration and log printed if the test failed) when the test ends.
func (m *Mosquitto) run(conf string) {
	m.t.Helper()
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() {
		m.Kill()
		if m.t.Failed() {
			m.t.Logf("mosquitto config:\n%s\nmosquitto log:\n%s", conf, m.Log())
		}
	})
	m.Restart()
}

// StartShipped starts Mosquitto with the shipped mosquitto.conf and acl
// for users (see StartShippedWith), with a new CA.
func StartShipped(t testing.TB, users map[string]string) *Mosquitto {
	t.Helper()
	return StartShippedWith(t, Shipped{Users: users})
}

// Shipped is what a test wants of a Mosquitto running the shipped files.
type Shipped struct {
	// Users are the usernames and passwords of the password file, written
	// with mosquitto_passwd.
	Users map[string]string
	// CA signs the broker's certificate, for 127.0.0.1 and localhost; nil
	// makes a new one. Pass one to issue client certificates with it.
	CA *pki.CA
	// RequireCertificate removes the '#' of the shipped
	// "#require_certificate true", as configs/mosquitto/README.md says to:
	// clients must then show a certificate signed by CA.
	RequireCertificate bool
	// ACLFile, if set, is used instead of the shipped acl (a community
	// whose standby clearer needs its own "user" block, say).
	ACLFile string
	// ACLAppend, if set, is appended to a copy of the shipped acl, which
	// the broker then uses: a further clearer's "user" block, as the acl's
	// comments say to add one.
	ACLAppend string
	// Bridge, if set, makes this the community's second broker: the
	// shipped configs/mosquitto/bridge.conf goes into its include_dir,
	// bridging it to Bridge.Remote's TLS listener.
	Bridge *Bridge
}

// Bridge is the remote end of a bridge: the first broker, and the login
// the bridge uses there (a user of Remote's password file, "bridge" in the
// shipped acl).
type Bridge struct {
	Remote             *Mosquitto
	Username, Password string
	// Address, if set, is the host:port the bridge dials in place of
	// Remote's TLS listener: a test's proxy in front of it (the TLS
	// certificate is Remote's, so the host must be 127.0.0.1).
	Address string
}

// ShippedBridge returns the path of the repository's
// configs/mosquitto/bridge.conf.
func ShippedBridge(t testing.TB) string {
	t.Helper()
	return shipped(t, "bridge.conf")
}

// StartShippedWith starts Mosquitto with the shipped mosquitto.conf and
// acl, changed only where a test must: the two listeners' ports (and the
// TLS listener bound to 127.0.0.1 rather than every interface), the paths
// of the CA, server certificate and key (made with package pki), of the
// password file, the persistence directory and the pid file, the log
// destination (stderr, into the test's log), when the test runs as root
// the user to run as, and what s asks for. It fails the test if the
// shipped file lacks one of those settings.
//
// TLSURL is then ssl://127.0.0.1:TLSPort and TLS holds the files; URL is
// the loopback listener.
func StartShippedWith(t testing.TB, s Shipped) *Mosquitto {
	t.Helper()
	m, dir, pwFile := newMosquitto(t, s.Users)
	ca := s.CA
	if ca == nil {
		var err error
		// Valid for longer than the broker's certificate below: package
		// pki refuses a certificate that would outlive its CA, and an hour
		// each could differ by the second that passes between the two.
		if ca, err = pki.NewCA("mqtttest CA", 2*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := ca.IssueServer([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.TLS = &TLSFiles{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "server.crt"), KeyFile: filepath.Join(dir, "server.key")}
	if err := os.WriteFile(m.TLS.CAFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteFiles(m.TLS.CertFile, m.TLS.KeyFile); err != nil {
		t.Fatal(err)
	}
	m.TLSPort = testtool.FreePort(t)
	m.TLSURL = "ssl://127.0.0.1:" + strconv.Itoa(m.TLSPort)

	raw, err := os.ReadFile(ShippedConf(t))
	if err != nil {
		t.Fatal(err)
	}
	runAs := "mosquitto"
	if os.Geteuid() == 0 {
		runAs = "root" // user mosquitto cannot read the test's private directory
	}
	aclFile := ShippedACL(t)
	if s.ACLAppend != "" {
		acl, err := os.ReadFile(aclFile)
		if err != nil {
			t.Fatal(err)
		}
		aclFile = filepath.Join(dir, "acl")
		if err := os.WriteFile(aclFile, append(acl, "\n"+s.ACLAppend...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite := map[string]string{
		"user":                 "user " + runAs,
		"listener 1883":        fmt.Sprintf("listener %d 127.0.0.1", m.Port),
		"listener 8883":        fmt.Sprintf("listener %d 127.0.0.1", m.TLSPort),
		"cafile":               "cafile " + m.TLS.CAFile,
		"certfile":             "certfile " + m.TLS.CertFile,
		"keyfile":              "keyfile " + m.TLS.KeyFile,
		"password_file":        "password_file " + pwFile,
		"acl_file":             "acl_file " + cmp.Or(s.ACLFile, aclFile),
		"persistence_location": "persistence_location " + dir + "/",
		"log_dest":             "log_dest stderr",
		"pid_file":             "pid_file " + filepath.Join(dir, "mosquitto.pid"),
		"include_dir":          "include_dir " + filepath.Join(dir, "conf.d"),
	}
	if s.RequireCertificate {
		rewrite["#require_certificate"] = "require_certificate true"
	}
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if b := s.Bridge; b != nil {
		if b.Remote.TLS == nil {
			t.Fatal("mqtttest: the bridge's remote broker has no TLS listener (start it with StartShipped)")
		}
		raw, err := os.ReadFile(ShippedBridge(t))
		if err != nil {
			t.Fatal(err)
		}
		addr := b.Address
		if addr == "" {
			addr = "127.0.0.1:" + strconv.Itoa(b.Remote.TLSPort)
		}
		bridge := rewriteConf(t, "bridge.conf", string(raw), map[string]string{
			"address":         "address " + addr,
			"bridge_cafile":   "bridge_cafile " + b.Remote.TLS.CAFile,
			"remote_username": "remote_username " + b.Username,
			"remote_password": "remote_password " + b.Password,
		})
		if err := os.WriteFile(filepath.Join(dir, "conf.d", "p2pgrid-bridge.conf"), []byte(bridge), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.run(rewriteConf(t, "mosquitto.conf", string(raw), rewrite))
	return m
}

// rewriteConf replaces every line of a shipped file that is a key of
// rewrite, or starts with it and a space, by its value; it fails the test
// if the file lacks one of them.
func rewriteConf(t testing.TB, name, raw string, rewrite map[string]string) string {
	t.Helper()
	seen := map[string]bool{}
	var conf strings.Builder
	for _, line := range strings.Split(raw, "\n") {
		for prefix, repl := range rewrite {
			if line == prefix || strings.HasPrefix(line, prefix+" ") {
				line, seen[prefix] = repl, true
			}
		}
		conf.WriteString(line + "\n")
	}
	for prefix := range rewrite {
		if !seen[prefix] {
			t.Fatalf("the shipped %s has no %q line", name, prefix)
		}
	}
	return conf.String()
}

// Start writes a configuration made of cfg and the password file, starts
// Mosquitto and waits until it accepts connections. It is killed when the
// test ends; its log is printed if the test failed.
func Start(t testing.TB, cfg Config) *Mosquitto {
	t.Helper()
	m, _, pwFile := newMosquitto(t, cfg.Users)

	var conf strings.Builder
	fmt.Fprintf(&conf, "# generated by mqtttest for %s\n", t.Name())
	if os.Geteuid() == 0 {
		// Run as root, Mosquitto would switch to user mosquitto, which
		// cannot read the test's private temporary directory.
		conf.WriteString("user root\n")
	}
	conf.WriteString("per_listener_settings false\nallow_anonymous false\npersistence false\n")
	conf.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_type subscribe\nconnection_messages true\n")
	if len(cfg.Users) > 0 {
		fmt.Fprintf(&conf, "password_file %s\n", pwFile)
	}
	if cfg.ACLFile != "" {
		fmt.Fprintf(&conf, "acl_file %s\n", cfg.ACLFile)
	}
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", m.Port)
	if cfg.TLS != nil {
		m.TLSPort = testtool.FreePort(t)
		m.TLSURL = "ssl://127.0.0.1:" + strconv.Itoa(m.TLSPort)
		m.TLS = cfg.TLS
		fmt.Fprintf(&conf, "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
			m.TLSPort, cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	m.run(conf.String())
	return m
}

// Restart starts Mosquitto again, on the same ports, after Kill or Stop.
// (Start calls it for the first run.)
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		m.t.Fatal("mqtttest: Restart while Mosquitto is running; Kill it first")
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		m.mu.Unlock()
		m.t.Fatal(err)
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		m.mu.Unlock()
		m.t.Fatalf("start %s: %v", m.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()

	ports := []int{m.Port}
	if m.TLSPort != 0 {
		ports = append(ports, m.TLSPort)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range ports {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				m.t.Fatalf("mosquitto exited during start-up:\n%s", m.Log())
			default:
			}
			if time.Now().After(deadline) {
				m.t.Fatalf("mosquitto does not accept connections on %s after 10s: %v\n%s", addr, err, m.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Reload makes Mosquitto re-read its password and ACL files (SIGHUP, what
// systemctl reload mosquitto sends). It returns at once; Mosquitto reloads
// a moment later.
func (m *Mosquitto) Reload() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		m.t.Fatal("mqtttest: Reload while Mosquitto is not running")
	}
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		m.t.Fatalf("mqtttest: reload: %v", err)
	}
}

// Kill kills Mosquitto with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped Mosquitto does nothing.
func (m *Mosquitto) Kill() { m.signal(os.Kill) }

// Stop stops Mosquitto cleanly (SIGTERM: it saves its persistence file)
// and waits for it to exit.
func (m *Mosquitto) Stop() { m.signal(syscall.SIGTERM) }

func (m *Mosquitto) signal(sig os.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd, m.done = nil, nil
}

// Log returns what Mosquitto has logged so far, in all its runs.
func (m *Mosquitto) Log() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}
