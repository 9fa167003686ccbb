package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// startCommunityBroker starts Mosquitto with the community directory's
// own mosquitto.conf, passwd and acl, as `community init` wrote them and
// `add`, `remove` and `add-app` changed them. The test changes three lines
// of mosquitto.conf only, in a copy: the plain loopback listener gets a
// free port (1883 may be taken), Mosquitto runs as root when the test
// does (user mosquitto cannot read the test's directory), and it logs to
// stderr rather than syslog. Every path, the TLS listener and every
// setting of logins and the ACL are as generated. The process is
// returned for a SIGHUP, Mosquitto's reload.
func startCommunityBroker(t *testing.T, dir string, tlsPort int) *os.Process {
	t.Helper()
	bin := testtool.Require(t, "mosquitto", "apt-get install mosquitto")
	conf := readFile(t, filepath.Join(dir, "mosquitto", "mosquitto.conf"))
	runAs := "mosquitto"
	if os.Geteuid() == 0 {
		runAs = "root"
	}
	for old, repl := range map[string]string{
		"\nlistener 1883 127.0.0.1\n": fmt.Sprintf("\nlistener %d 127.0.0.1\n", testtool.FreePort(t)),
		"\nuser mosquitto\n":          "\nuser " + runAs + "\n",
		"\nlog_dest syslog\n":         "\nlog_dest stderr\n",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("the generated mosquitto.conf has no line %q", strings.TrimSpace(old))
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	out := testtool.StartProcess(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(tlsPort))
		if err == nil {
			c.Close()
			return cmd.Process
		}
		select {
		case <-out.Exited():
			t.Fatalf("mosquitto exited: %v\n%s", out.Err(), out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %d:\n%s", tlsPort, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// login is one MQTT login over the broker's TLS listener.
type login struct {
	port                   int
	ca, username, password string
}

// mosquittoRun runs mosquitto_pub or mosquitto_sub with the login and
// returns its output and error (a refused login is an error).
func (l login) run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	bin := testtool.Require(t, name, "apt-get install mosquitto-clients")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	all := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(l.port), "--cafile", l.ca, "-u", l.username, "-P", l.password}, args...)
	out, err := exec.CommandContext(ctx, bin, all...).CombinedOutput()
	return string(out), err
}

// The whole setup of docs/community.md on loopback: init, three homes
// added with the keys `p2pgrid key` made in their data directories, join
// on each, an app's login; then the real Mosquitto with exactly the
// generated files, over TLS: every home logs in with the password join
// wrote for it, publishes its status and reads the others'; a wrong
// password and a removed home are refused; the app reads and cannot
// publish.
func TestCommunityOnMosquitto(t *testing.T) {
	testtool.Integration(t)
	port := testtool.FreePort(t)
	dir := initCommunity(t, "127.0.0.1:"+strconv.Itoa(port))
	root := t.TempDir()
	homes := []string{"home-1", "home-2", "home-3"}
	logins := map[string]login{}
	for _, h := range homes {
		dataDir, bundle := addHome(t, dir, h, root)
		cfgPath := filepath.Join(root, h, "etc", "gateway.yaml")
		if code, out, errOut := runCLI(t, "", "join", bundle, "--config", cfgPath, "--data-dir", dataDir); code != 0 {
			t.Fatalf("join %s: exit %d %q %q", h, code, out, errOut)
		}
		cfg, err := config.Load(cfgPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MQTT.Broker != "mqtts://127.0.0.1:"+strconv.Itoa(port) || cfg.MQTT.Username != h {
			t.Fatalf("%s: broker %q, username %q", h, cfg.MQTT.Broker, cfg.MQTT.Username)
		}
		logins[h] = login{port, cfg.MQTT.CAFile, h, string(cfg.MQTT.Password)}
	}
	clearer, err := config.Load(filepath.Join(dir, "operator", "gateway.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	logins["operator"] = login{port, clearer.MQTT.CAFile, "operator", string(clearer.MQTT.Password)}
	if code, _, errOut := runCLI(t, "", "community", "add-app", dir, "--home", "home-3", "--name", "app"); code != 0 {
		t.Fatalf("add-app: %q", errOut)
	}
	app := login{port, filepath.Join(dir, "certs", "ca.crt"), "app", strings.TrimSpace(readFile(t, filepath.Join(dir, "apps", "app.password")))}
	// A fourth home, added and removed again: its password no longer works.
	_, bundle4 := addHome(t, dir, "home-4", root)
	gone := login{port, app.ca, "home-4", bundlePassword(t, bundle4)}
	if code, _, errOut := runCLI(t, "", "community", "remove", dir, "--home", "home-4"); code != 0 {
		t.Fatalf("remove: %q", errOut)
	}

	startCommunityBroker(t, dir, port)
	const topic = "p2pgrid/v1/lindenweg/"
	for _, id := range append(homes, "operator") {
		if out, err := logins[id].run(t, "mosquitto_pub", "-q", "1", "-r", "-t", topic+"status/"+id, "-m", "up "+id); err != nil {
			t.Errorf("%s cannot log in with its generated password: %v %s", id, err, out)
		}
	}
	wrong := logins["home-1"]
	wrong.password += "x"
	for name, l := range map[string]login{"a wrong password": wrong, "a removed home": gone} {
		out, err := l.run(t, "mosquitto_pub", "-t", topic+"status/"+l.username, "-m", "x")
		if err == nil || !strings.Contains(out, "not authorised") {
			t.Errorf("%s: %v %q, want the login refused", name, err, out)
		}
	}
	// Privacy: a home reads its own status and no neighbour's; the
	// operator reads every one.
	out, err := logins["home-2"].run(t, "mosquitto_sub", "-t", topic+"status/+", "-v", "-W", "3")
	if !strings.Contains(out, topic+"status/home-2 up home-2") {
		t.Errorf("home-2 does not read its own status: %v, %q", err, out)
	}
	for _, id := range []string{"home-1", "home-3", "operator"} {
		if strings.Contains(out, topic+"status/"+id) {
			t.Errorf("home-2 reads %s's status: %q", id, out)
		}
	}
	out, err = logins["operator"].run(t, "mosquitto_sub", "-t", topic+"status/+", "-v", "-C", "4", "-W", "10")
	for _, id := range append(homes, "operator") {
		if err != nil || !strings.Contains(out, topic+"status/"+id+" up "+id) {
			t.Errorf("the operator reads the statuses: %v, %q lacks %s's", err, out, id)
		}
	}
	// home-3's app reads home-3's status and not home-1's, and what it
	// publishes goes nowhere: not on its own topics, which the acl's
	// patterns give every login, nor anywhere else.
	if out, err := app.run(t, "mosquitto_sub", "-t", topic+"status/home-3", "-C", "1", "-W", "10"); err != nil || strings.TrimSpace(out) != "up home-3" {
		t.Errorf("the app reads home-3's status: %v %q", err, out)
	}
	if out, _ := app.run(t, "mosquitto_sub", "-t", topic+"status/home-1", "-W", "2"); strings.Contains(out, "up home-1") {
		t.Errorf("home-3's app reads home-1's status: %q", out)
	}
	for _, tp := range []string{"status/app", "orders/app", "metered/app", "telemetry/app", "orders/home-1", "roster"} {
		if out, err := app.run(t, "mosquitto_pub", "-q", "1", "-r", "-t", topic+tp, "-m", "forged"); err != nil {
			t.Fatalf("app publish: %v %s", err, out)
		}
	}
	out, err = logins["operator"].run(t, "mosquitto_sub", "-t", topic+"#", "-v", "-W", "3") // the operator reads everything
	var ee *exec.ExitError
	if strings.Contains(out, "forged") || (err != nil && !errors.As(err, &ee)) {
		t.Errorf("the app's publishes were retained: %v\n%s", err, out)
	}
}

func bundlePassword(t *testing.T, path string) string {
	t.Helper()
	s := readFile(t, path)
	_, rest, _ := strings.Cut(s, `"password":"`)
	pw, _, _ := strings.Cut(rest, `"`)
	return pw
}
