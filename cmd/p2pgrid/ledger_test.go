package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

func TestLedgerCLI(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
	for i, k := range []string{"clearing", "trade", "trade", "settlement"} {
		if _, err := l.Append(ledger.Entry{Kind: k, Key: string(rune('a' + i)), Time: t0, Data: []byte(`{"i":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := cli("ledger", "verify", dir); code != 0 || out != dir+": 4 records, chain intact\n" {
		t.Fatalf("verify: %d %q", code, out)
	}
	if code, out, _ := cli("ledger", "show", dir, "--kind", "trade", "--from", "3"); code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"seq":3,`) {
		t.Fatalf("show: %d %q", code, out)
	}
	if code, out, _ := cli("ledger", "show", dir); code != 0 || strings.Count(out, "\n") != 4 {
		t.Fatalf("show all: %d %q", code, out)
	}
	path := filepath.Join(dir, ledger.FileName)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`"key":"b"`), []byte(`"key":"x"`), 1), 0o600)
	code, _, stderr := cli("ledger", "verify", dir)
	if code != 2 || !strings.Contains(stderr, "record 2 (line 2)") {
		t.Fatalf("verify of a tampered ledger: %d %q", code, stderr)
	}
	t.Log(stderr)
	if code, _, stderr := cli("ledger", "show", dir); code != 2 || !strings.Contains(stderr, "line 2") {
		t.Fatalf("show of a tampered ledger: %d %q", code, stderr)
	}
	if code, _, stderr := cli("ledger", "verify", t.TempDir()); code != 2 || !strings.Contains(stderr, "no ledger here") {
		t.Fatalf("verify of an empty dir: %d %q", code, stderr)
	}
	if code, out, _ := cli("ledger", "verify", "--help"); code != 0 || !strings.Contains(out, "Examples:") {
		t.Fatalf("help: %d %q", code, out)
	}
}

// A torn last line is left out of ledger show with a note, and
// settlements reads the records before it.
func TestLedgerShowTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"clearing", "trade"} {
		if _, err := l.Append(ledger.Entry{Kind: k, Key: string(rune('a' + i)), Time: time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC), Data: []byte(`{"i":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	path := filepath.Join(dir, ledger.FileName)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, `{"seq":3,"ti`...), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"ledger", "show", dir}, strings.NewReader(""), &out, &errb)
	if code != 0 || out.String() != string(b) || !strings.Contains(errb.String(), "(line 3)") || !strings.Contains(errb.String(), "torn") {
		t.Fatalf("show of a torn ledger: exit %d, stdout %q (want the 2 intact lines), stderr %q", code, out.String(), errb.String())
	}
}

// --kind takes the kinds there are, lists them in --help, and names them
// when given another.
func TestLedgerShowKind(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"ledger", "show", dir, "--kind", "trades"}, strings.NewReader(""), &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), `kind "trades"`) || !strings.Contains(errb.String(), "clearing, trade, settlement, interval, book, result, reading") {
		t.Fatalf("show --kind trades: exit %d, stderr %q; want 2 and the kinds listed", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"ledger", "show", "--help"}, strings.NewReader(""), &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "clearing, trade, settlement, interval, book, result, reading") {
		t.Fatalf("show --help: exit %d, does not list the kinds:\n%s", code, out.String())
	}
}
