package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/dashboard/dashboardtest"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// Bad command lines are refused with what is wrong, before anything
// listens.
func TestOperatorBadFlags(t *testing.T) {
	dir, _ := dashboardtest.Ledger(t, dashboardtest.TwoIntervals...)
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("nopassword\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"operator", "--ledger", dir, "--token", "x", "--token-file", empty}, "--token-file: give --token or --token-file, not both"},
		{[]string{"operator", "--ledger", dir, "--token-file", empty}, "--token-file " + empty + ": the file is empty"},
		{[]string{"operator", "--ledger", dir, "--token-file", filepath.Join(dir, "nothing")}, "--token-file: open "},
		{[]string{"operator"}, "--ledger: give the ledger directory"},
		{[]string{"operator", "--ledger", t.TempDir()}, "no ledger here (ledger.jsonl missing)"},
		{[]string{"operator", "--ledger", dir, "--http", "0.0.0.0:8080"}, "--http 0.0.0.0:8080 is not a loopback address: the dashboard needs a login there; give --token, --token-file or --basic-auth-file"},
		{[]string{"operator", "--ledger", dir, "--http", ":8080"}, "is not a loopback address"},
		{[]string{"operator", "--ledger", dir, "--basic-auth-file", users}, "--basic-auth-file: basic-auth file " + users + ": line 1: want user:password"},
		{[]string{"operator", "--ledger", dir, "--minor", "12"}, "--minor: 12 is outside 0-8"},
		{[]string{"operator", "--ledger", dir, "--currency", "euro"}, `--currency: "euro" is not an ISO 4217 currency code`},
		{[]string{"operator", "--ledger", dir, "--poll", "1ms"}, "--poll: 1ms is too short"},
		{[]string{"operator", "--ledger", dir, "--mqtt", "tcp://127.0.0.1:1"}, "--mqtt: give the community id too (--community)"},
		{[]string{"operator", "--ledger", dir, "--community", "c1"}, "go with --mqtt URL"},
		{[]string{"demo", "--http", "0.0.0.0:8080"}, "--http 0.0.0.0:8080 is not a loopback address"},
	} {
		code, _, errOut := runCLI(t, "", c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("p2pgrid %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}

// --token-file's token is the login, trimmed.
func TestOperatorTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	df := dashboardFlags{tokenFile: file, minor: 2}
	if err := df.checkListen("0.0.0.0:8080"); err != nil {
		t.Errorf("a token file is a login: %v", err)
	}
	o, err := df.options(t.TempDir(), nil)
	if err != nil || o.Auth.Token != "s3cret" {
		t.Errorf("token %q, %v; want s3cret", o.Auth.Token, err)
	}
}

// p2pgrid operator --mqtt shows what the gateways' retained statuses on a
// real Mosquitto say: who is online, their alarms, their verdicts on an
// interval of the ledger.
func TestOperatorStatusFeed(t *testing.T) {
	testtool.Integration(t)
	dir, _ := dashboardtest.Ledger(t, dashboardtest.TwoIntervals...)
	m := mqtttest.Start(t, mqtttest.Config{Users: map[string]string{"dashboard": "op-pw", "home1": "h1-pw", "home2": "h2-pw"}})
	iv := "2026-11-22T12:15Z"
	tp, err := protocol.NewTopics("elm")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []protocol.Status{
		{Gateway: "home1", State: protocol.StateOnline, Version: "v1", Time: time.Now().UTC(),
			Alarms: []protocol.Alarm{{Kind: protocol.AlarmMismatch, Interval: iv}}, Verified: []protocol.Verification{{Interval: iv, Clearing: protocol.AlarmMismatch}}},
		{Gateway: "home2", State: protocol.StateOnline, Version: "v1", Time: time.Now().UTC(),
			Verified: []protocol.Verification{{Interval: iv, Clearing: protocol.VerdictOK, Settlement: protocol.VerdictOK}}},
	} {
		payload, err := st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := mqtt.Connect(ctx, mqtt.Options{Broker: m.URL, ClientID: st.Gateway, Username: st.Gateway, Password: map[string]string{"home1": "h1-pw", "home2": "h2-pw"}[st.Gateway]})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		err = c.Publish(ctx, tp.Status(st.Gateway), payload, true)
		cancel()
		c.Close()
		if err != nil {
			t.Fatalf("publish %s's status: %v", st.Gateway, err)
		}
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("op-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testtool.FreePort(t)
	var out, errOut testtool.Output
	root := newRootCmd(strings.NewReader(""), &out, &errOut)
	root.SetArgs([]string{"operator", "--ledger", dir, "--http", fmt.Sprintf("127.0.0.1:%d", port),
		"--mqtt", m.URL, "--community", "elm", "--mqtt-username", "dashboard", "--mqtt-password-file", pw})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator after cancel: %v\n%s", err, errOut.String())
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	page := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	online := regexp.MustCompile(`<tr data-gateway="home1"><td>home1</td><td class="ok">online</td><td>online since [^<]*, version v1</td><td><span class="alarm">mismatch</span>`)
	waitFor(t, "the overview shows home1 online with its alarm", time.Minute, func() bool { return online.MatchString(page("/")) })
	body := page("/interval/" + iv)
	for _, want := range []string{`<tr data-gateway="home1"><td>home1</td><td class="bad">failed: clearing mismatch</td>`, `<tr data-gateway="home2"><td>home2</td><td class="ok">verified</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("interval %s lacks %s:\n%s", iv, want, body)
		}
	}
	if !strings.Contains(out.String(), "dashboard: http://127.0.0.1:") {
		t.Errorf("operator printed %q, want its address", out.String())
	}
}
