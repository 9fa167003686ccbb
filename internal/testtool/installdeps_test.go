package testtool

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// These tests run scripts/install-deps, the script `make deps` runs to
// install and check every piece the tests use, against the real machine and
// against machines with one piece taken away.

// repoRoot is the module's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller: no file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// installDeps runs scripts/install-deps with args and the environment
// changed by env ("NAME=value"), and returns its combined output and exit
// code.
func installDeps(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "install-deps"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("run scripts/install-deps: %v", err)
		return "", 0
	}
}

// usedByTests returns the programs the repository's tests ask testtool.Require
// for, and the Python modules they ask testtool.DebianPython for, found by
// reading every .go file: a new tool in a test shows up here by itself.
func usedByTests(t *testing.T) (tools, modules []string) {
	t.Helper()
	require := regexp.MustCompile(`\bRequire\(\s*\w+,\s*"([^"]+)"`)
	python := regexp.MustCompile(`\bDebianPython\(\s*\w+,\s*"([^"]+)"`)
	add := func(list []string, name string) []string {
		if !slices.Contains(list, name) {
			list = append(list, name)
		}
		return list
	}
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range require.FindAllSubmatch(b, -1) {
			tools = add(tools, string(m[1]))
		}
		for _, m := range python.FindAllSubmatch(b, -1) {
			modules = add(modules, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The scan itself must work: these are known to be used.
	for _, want := range []string{"mosquitto", "mosquitto_passwd", "mbpoll", "socat", "influxd"} {
		if !slices.Contains(tools, want) {
			t.Fatalf("scan of testtool.Require calls found %v, not %q: the scan is broken", tools, want)
		}
	}
	if !slices.Contains(modules, "pymodbus") {
		t.Fatalf("scan of testtool.DebianPython calls found %v, not pymodbus: the scan is broken", modules)
	}
	return tools, modules
}

// Pieces the tests use that no testtool.Require names: gcc (cgo, for `go
// test -race`) and staticcheck (make lint) are programs; pyserial and
// serial_asyncio are what pymodbus.server imports.
var (
	extraTools   = []string{"gcc", "staticcheck"}
	extraModules = []string{"serial", "serial_asyncio"}
)

// lines returns the lines of out that start with prefix.
func lines(out, prefix string) []string {
	var l []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, prefix) {
			l = append(l, strings.TrimRight(line, "\n"))
		}
	}
	return l
}

// okLine and missingLine are the prefixes of the report line for piece.
func okLine(piece string) string      { return "install-deps: ok      " + piece + " (" }
func missingLine(piece string) string { return "install-deps: MISSING " + piece + ": " }

// toolFarm returns a directory of symbolic links to every program in the
// places install-deps looks (bin/tools, PATH, /usr/bin, /usr/sbin), except
// those named in hide: a machine without them.
func toolFarm(t *testing.T, hide ...string) string {
	t.Helper()
	farm := t.TempDir()
	dirs := append([]string{filepath.Join(repoRoot(t), "bin", "tools")}, filepath.SplitList(os.Getenv("PATH"))...)
	dirs = append(dirs, "/usr/bin", "/usr/sbin")
	linked := 0
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // a PATH entry that does not exist
		}
		for _, e := range entries {
			if slices.Contains(hide, e.Name()) {
				continue
			}
			err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(farm, e.Name()))
			if err == nil {
				linked++
			} else if !errors.Is(err, fs.ErrExist) { // the first directory wins, as in PATH
				t.Fatal(err)
			}
		}
	}
	if linked < 10 {
		t.Fatalf("tool farm has only %d programs", linked)
	}
	for _, h := range hide {
		if _, err := os.Lstat(filepath.Join(farm, h)); err == nil {
			t.Fatalf("tool farm still has %s", h)
		}
	}
	return farm
}

// fakePython returns an interpreter that runs Debian's python3 but cannot
// import the modules named in hide, as on a machine without their packages.
func fakePython(t *testing.T, hide ...string) string {
	t.Helper()
	dir := t.TempDir()
	shadow := filepath.Join(dir, "shadow")
	for _, m := range hide {
		if err := os.MkdirAll(filepath.Join(shadow, m), 0o755); err != nil {
			t.Fatal(err)
		}
		src := "raise ModuleNotFoundError(\"No module named '" + m + "'\", name='" + m + "')\n"
		if err := os.WriteFile(filepath.Join(shadow, m, "__init__.py"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	py := filepath.Join(dir, "python3")
	script := "#!/bin/sh\nPYTHONPATH='" + shadow + "' exec /usr/bin/python3 \"$@\"\n"
	if err := os.WriteFile(py, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return py
}

// On this machine (after `make deps`) the check passes and reports every
// piece the tests use, each on its own "ok" line.
func TestInstallDepsCheckReportsEveryPiece(t *testing.T) {
	Integration(t)
	tools, modules := usedByTests(t)
	out, code := installDeps(t, nil, "--check")
	if code != 0 {
		t.Fatalf("scripts/install-deps --check exited %d; install what it names (or run `make deps`):\n%s", code, out)
	}
	if m := lines(out, "install-deps: MISSING"); len(m) > 0 {
		t.Errorf("exit 0 but MISSING lines:\n%s", strings.Join(m, "\n"))
	}
	for _, piece := range slices.Concat(tools, extraTools, modules, extraModules) {
		if len(lines(out, okLine(piece))) != 1 {
			t.Errorf("no line %q...: install-deps does not check %s, which the tests use; add it to the table in scripts/install-deps", okLine(piece), piece)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// Without one program, the check fails and names that program, and only
// that one: the farm holds every other.
func TestInstallDepsCheckNamesMissingTool(t *testing.T) {
	Integration(t)
	tools, _ := usedByTests(t)
	for _, tool := range slices.Concat(tools, extraTools) {
		t.Run(tool, func(t *testing.T) {
			out, code := installDeps(t, []string{"P2PGRID_TOOLPATH=" + toolFarm(t, tool)}, "--check")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			want := missingLine(tool) + tool + ": not found in P2PGRID_TOOLPATH="
			if m := lines(out, want); len(m) != 1 {
				t.Errorf("no line %q...", want)
			}
			if m := lines(out, "install-deps: MISSING"); len(m) != 1 {
				t.Errorf("want one MISSING line, for %s; got:\n%s", tool, strings.Join(m, "\n"))
			}
			if m := lines(out, "install-deps: missing 1 of "); len(m) != 1 || !strings.HasSuffix(m[0], ": "+tool) {
				t.Errorf("summary %q does not name %s alone", m, tool)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// The bug of issue 8: Debian's python3 cannot import a module the tests use.
// The check fails naming the module and the package that provides it.
func TestInstallDepsCheckNamesMissingPythonModule(t *testing.T) {
	Integration(t)
	_, modules := usedByTests(t)
	packages := map[string]string{"pymodbus": "python3-pymodbus", "serial": "python3-serial", "serial_asyncio": "python3-serial-asyncio"}
	for _, module := range slices.Concat(modules, extraModules) {
		t.Run(module, func(t *testing.T) {
			pkg, ok := packages[module]
			if !ok {
				t.Fatalf("this test does not know the Debian package of %s; add it to packages", module)
			}
			out, code := installDeps(t, []string{"P2PGRID_PYTHON=" + fakePython(t, module)}, "--check")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			want := missingLine(module) + "ModuleNotFoundError: No module named '" + module + "' (install: apt-get install " + pkg + ")"
			if m := lines(out, want); len(m) != 1 {
				t.Errorf("no line %q", want)
			}
			if m := lines(out, okLine("mosquitto")); len(m) != 1 {
				t.Errorf("mosquitto not ok: the fake python should take away %s only", module)
			}
			if m := lines(out, "install-deps: install the Debian packages: apt-get install "); len(m) != 1 || !slices.Contains(strings.Fields(m[0]), pkg) {
				t.Errorf("summary %q does not name %s", m, pkg)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// On a machine without apt-get, install-deps (not --check) names exactly
// the packages to install and exits non-zero instead of going on.
func TestInstallDepsWithoutAptGet(t *testing.T) {
	Integration(t)
	env := []string{
		"PATH=" + toolFarm(t, "apt-get", "sudo"),
		"P2PGRID_PYTHON=" + fakePython(t, "serial"),
	}
	out, code := installDeps(t, env)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if strings.Contains(out, "install-deps: installing") {
		t.Errorf("tried to install without apt-get")
	}
	// The packages are those of the MISSING lines, each once, in order.
	var want []string
	hint := regexp.MustCompile(`\(install: apt-get install ([^)]+)\)$`)
	for _, l := range lines(out, "install-deps: MISSING ") {
		m := hint.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("MISSING line without an apt-get hint: %q", l)
			continue
		}
		for _, p := range strings.Fields(m[1]) {
			if !slices.Contains(want, p) {
				want = append(want, p)
			}
		}
	}
	if !slices.Contains(want, "python3-serial") {
		t.Errorf("MISSING lines do not name python3-serial")
	}
	line := "install-deps: no apt-get here; install these packages yourself: " + strings.Join(want, " ")
	if m := lines(out, line); len(m) != 1 || m[0] != line {
		t.Errorf("no line %q", line)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
