package main

import (
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readDir maps every file in dir to its contents.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := runCLI(t, "", "certs", "--dir", dir, "--host", "broker.lan", "--host", "192.168.1.10,127.0.0.1", "--client", "home1")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{`made CA "p2pgrid community CA"`, "server certificate for broker.lan, 192.168.1.10, 127.0.0.1", `client certificate "home1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q does not say %q", out, want)
		}
	}
	files := readDir(t, dir)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"ca.crt", "ca.key", "home1.crt", "home1.key", "server.crt", "server.key"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for _, n := range names {
		fi, _ := os.Stat(filepath.Join(dir, n))
		want := fs.FileMode(0o644)
		if strings.HasSuffix(n, ".key") {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", n, fi.Mode().Perm(), want)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %#o, want 0700", fi.Mode().Perm())
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(files["ca.crt"])) {
		t.Fatal("ca.crt holds no certificate")
	}
	leaf := func(name string) *x509.Certificate {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatalf("%s.crt and %s.key: %v", name, name, err)
		}
		return pair.Leaf
	}
	srv := leaf("server")
	for _, host := range []string{"broker.lan", "192.168.1.10", "127.0.0.1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server.crt for %s: %v", host, err)
		}
	}
	if d := time.Until(srv.NotAfter); d < 824*24*time.Hour || d > 826*24*time.Hour {
		t.Errorf("server.crt valid for %v, want the default 825 days", d)
	}
	if _, err := leaf("home1").Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("home1.crt: %v", err)
	}

	// A second run reuses the CA for a new gateway's certificate.
	code, out, errOut = runCLI(t, "", "certs", "--dir", dir, "--client", "home2", "--days", "30")
	if code != 0 || !strings.Contains(out, `using CA "p2pgrid community CA"`) {
		t.Fatalf("second run: exit %d, %q, stderr %q", code, out, errOut)
	}
	home2 := leaf("home2")
	if _, err := home2.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("home2.crt is not signed by the first run's CA: %v", err)
	}
	if d := time.Until(home2.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("--days 30: valid for %v", d)
	}
	after := readDir(t, dir)
	for n, b := range files {
		if after[n] != b {
			t.Errorf("the second run changed %s", n)
		}
	}

	// Refusals: exit 2, one line naming the problem, nothing written.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--host", "broker.lan"}, "server.crt exists; remove it first"},
		{[]string{"--client", "home1"}, "home1.crt exists"},
		{[]string{"--client", "home/3"}, `--client "home/3"`},
		{[]string{"--client", "server"}, `--client "server"`},
		{nil, "already holds a CA; give --host or --client"},
		{[]string{"--client", "home4", "--days", "0"}, "--days 0"},
	} {
		code, _, errOut := runCLI(t, "", append([]string{"certs", "--dir", dir}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
	if now := readDir(t, dir); len(now) != len(after) {
		t.Errorf("a refused run wrote files: %d files, had %d", len(now), len(after))
	}

	fresh := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--host", "broker lan"}, `host "broker lan"`},
		{[]string{"--host", "broker.lan", "--days", "4000"}, "after its CA expires"},
	} {
		args := append([]string{"certs", "--dir", fresh}, c.args...)
		code, _, errOut := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want exit 2 and %q", args, code, errOut, c.want)
		}
	}
	if left := readDir(t, fresh); len(left) != 0 {
		t.Errorf("bad input left files behind: %v", left)
	}
	if code, _, errOut := runCLI(t, "", "certs", "--host", "x.lan"); code != 2 || !strings.Contains(errOut, "--dir is required") {
		t.Errorf("no --dir: exit %d, stderr %q", code, errOut)
	}
}

// Only a CA: the first step of setting up a community without knowing the
// broker's address yet.
func TestCertsCAOnly(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "", "certs", "--dir", dir, "--ca-name", "p2pgrid lindenweg CA", "--ca-days", "365")
	if code != 0 || !strings.Contains(out, `made CA "p2pgrid lindenweg CA"`) {
		t.Fatalf("exit %d %q %q", code, out, errOut)
	}
	if files := readDir(t, dir); len(files) != 2 || files["ca.crt"] == "" || files["ca.key"] == "" {
		t.Errorf("files %v, want ca.crt and ca.key", files)
	}
}
