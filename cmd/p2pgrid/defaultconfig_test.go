package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/gateway/config"
)

// Where the package installs the configuration, then the working directory.
func TestDefaultConfigPaths(t *testing.T) {
	if want := []string{"/etc/p2pgrid/gateway.yaml", "./gateway.yaml"}; !slices.Equal(defaultConfigPaths, want) {
		t.Errorf("defaultConfigPaths %q, want %q", defaultConfigPaths, want)
	}
}

// --config, then P2PGRID_CONFIG, then the first default that exists; with
// none, an error (exit 2) that names every default.
func TestDefaultConfigOrder(t *testing.T) {
	dir := t.TempDir()
	etc, local := filepath.Join(dir, "etc.yaml"), filepath.Join(dir, "local.yaml")
	defaults := []string{etc, local}
	check := func(flag, env, want string) {
		t.Helper()
		got, err := configPath(flag, env, defaults)
		if err != nil || got != want {
			t.Errorf("configPath(%q, %q) = %q, %v; want %q", flag, env, got, err, want)
		}
	}
	_, err := configPath("", "", defaults)
	if err == nil {
		t.Fatal("no file, no error")
	}
	for _, want := range []string{etc, local, "--config", config.ConfigEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	check("flag.yaml", "env.yaml", "flag.yaml")
	check("", "env.yaml", "env.yaml")
	if err := os.WriteFile(local, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("", "", local)
	if err := os.WriteFile(etc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("", "", etc)
	check("flag.yaml", "", "flag.yaml")
}

// "p2pgrid gateway" in a directory with a gateway.yaml reads it (here a
// bad one, refused with its name), unless /etc/p2pgrid/gateway.yaml exists.
func TestDefaultConfigGateway(t *testing.T) {
	if _, err := os.Stat(defaultConfigPaths[0]); err == nil {
		t.Fatalf("%s exists on this machine: this test needs a machine without it", defaultConfigPaths[0])
	}
	t.Setenv(config.ConfigEnv, "")
	t.Chdir(t.TempDir())
	code, _, errOut := runCLI(t, "", "gateway")
	if code != 2 || !strings.Contains(errOut, "neither /etc/p2pgrid/gateway.yaml nor ./gateway.yaml exists") {
		t.Errorf("without a file: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile("gateway.yaml", []byte("nonsense: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "", "gateway")
	if code != 2 || !strings.Contains(errOut, "gateway.yaml") || strings.Contains(errOut, "no configuration file") {
		t.Errorf("with ./gateway.yaml: exit %d, stderr %q", code, errOut)
	}
}

// --help says where the gateway looks.
func TestHelpDefaultConfig(t *testing.T) {
	code, out, _ := runCLI(t, "", "gateway", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"else /etc/p2pgrid/gateway.yaml", "else ./gateway.yaml", "$P2PGRID_CONFIG"} {
		if !strings.Contains(flat, want) {
			t.Errorf("gateway --help lacks %q:\n%s", want, out)
		}
	}
}
