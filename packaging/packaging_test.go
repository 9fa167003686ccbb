package packaging_test

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// These tests build the Debian packages as `make packages` does and look
// inside them with dpkg-deb, as dpkg would: the fields, the files, the
// conffile, the systemd unit (checked by systemd-analyze) and what the
// maintainer scripts do (run against stand-ins for useradd, systemctl...).

// repoRoot is the module's root directory: go test runs a package's
// tests in its folder.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tools are the programs these tests run.
type tools struct{ make, nfpm, dpkgDeb, systemdAnalyze string }

func requireTools(t *testing.T, root string) tools {
	t.Helper()
	testtool.Integration(t)
	// make deps installs nfpm into bin/tools, where the Makefile looks.
	t.Setenv("PATH", filepath.Join(root, "bin", "tools")+string(os.PathListSeparator)+os.Getenv("PATH"))
	return tools{
		make:           testtool.Require(t, "make", "apt-get install make"),
		nfpm:           testtool.Require(t, "nfpm", "make bin/tools/nfpm (go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0)"),
		dpkgDeb:        testtool.Require(t, "dpkg-deb", "apt-get install dpkg"),
		systemdAnalyze: testtool.Require(t, "systemd-analyze", "apt-get install systemd"),
	}
}

// run runs a command and returns its standard output, failing the test
// with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// gitVersion is the Makefile's default VERSION.
func gitVersion(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

// debVersion is the Makefile's DEB_VERSION for version.
func debVersion(t *testing.T, tl tools, root, version string) string {
	t.Helper()
	return strings.TrimSpace(run(t, tl.make, "-s", "-C", root, "deb-version", "VERSION="+version))
}

// A Debian version starts with a digit; git describe's form sorts after its tag.
func TestPackageVersion(t *testing.T) {
	root := repoRoot(t)
	tl := requireTools(t, root)
	for version, want := range map[string]string{
		"v1.2.0":                  "1.2.0",
		"1.2.0":                   "1.2.0",
		"v1.2.0-3-gabc1234-dirty": "1.2.0+3.gabc1234.dirty",
		"0e81a7e":                 "0.0.0+git0e81a7e",
		"abc1234-dirty":           "0.0.0+gitabc1234.dirty",
		"dev":                     "0.0.0+gitdev",
	} {
		if got := debVersion(t, tl, root, version); got != want {
			t.Errorf("DEB_VERSION of %q is %q, want %q", version, got, want)
		}
	}
}

// pi is one of the packages: the Pi it is for, its Debian architecture and
// the binary it must hold.
type pi struct {
	name, arch, goarch, goarm string
	machine                   elf.Machine
}

var pis = []pi{
	{"arm64", "arm64", "arm64", "", elf.EM_AARCH64},
	{"armv7", "armhf", "arm", "7", elf.EM_ARM},
	{"armv6", "armhf", "arm", "6", elf.EM_ARM},
}

func TestPackages(t *testing.T) {
	root := repoRoot(t)
	tl := requireTools(t, root)
	dist := t.TempDir()
	version := gitVersion(root)
	debv := debVersion(t, tl, root, version)
	run(t, tl.make, "-s", "-C", root, "packages", "DIST="+dist, "NFPM="+tl.nfpm, "VERSION="+version)

	var want []string
	for _, p := range pis {
		want = append(want, "p2pgrid_"+debv+"_"+p.name+".deb")
	}
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("make packages made %q, want %q", got, want)
	}
	example, err := os.ReadFile(filepath.Join(root, "configs", "gateway.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var postinst []byte
	for _, p := range pis {
		t.Run(p.name, func(t *testing.T) {
			deb := filepath.Join(dist, "p2pgrid_"+debv+"_"+p.name+".deb")
			checkFields(t, tl, deb, p, debv)
			checkFiles(t, tl, deb)
			dir := t.TempDir()
			control, tree := filepath.Join(dir, "control"), filepath.Join(dir, "root")
			run(t, tl.dpkgDeb, "-e", deb, control)
			run(t, tl.dpkgDeb, "-x", deb, tree)
			checkControl(t, control)
			checkBinary(t, filepath.Join(tree, "usr", "bin", "p2pgrid"), p, version)
			conf, err := os.ReadFile(filepath.Join(tree, "etc", "p2pgrid", "gateway.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(conf, example) {
				t.Errorf("/etc/p2pgrid/gateway.yaml is not configs/gateway.example.yaml")
			}
			unit := filepath.Join(tree, "lib", "systemd", "system", "p2pgrid.service")
			checkUnit(t, unit, conf)
			analyzeUnit(t, tl, unit, tree)
			b, err := os.ReadFile(filepath.Join(control, "postinst"))
			if err != nil {
				t.Fatal(err)
			}
			if postinst == nil {
				postinst = b
				checkScripts(t, control)
			} else if !bytes.Equal(b, postinst) {
				t.Errorf("postinst differs from the first package's")
			}
		})
	}
}

// checkFields checks the package's control fields.
func checkFields(t *testing.T, tl tools, deb string, p pi, debv string) {
	t.Helper()
	fields := map[string]string{}
	for line := range strings.Lines(run(t, tl.dpkgDeb, "-f", deb, "Package", "Version", "Architecture", "Maintainer", "Description")) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ": "); ok && !strings.HasPrefix(k, " ") {
			fields[k] = v
		}
	}
	for k, want := range map[string]string{"Package": "p2pgrid", "Version": debv, "Architecture": p.arch} {
		if fields[k] != want {
			t.Errorf("%s: %q, want %q", k, fields[k], want)
		}
	}
	if fields["Maintainer"] == "" || fields["Description"] == "" {
		t.Errorf("no Maintainer or Description: %q", fields)
	}
}

// checkFiles checks the file list: path, mode and owner.
func checkFiles(t *testing.T, tl tools, deb string) {
	t.Helper()
	files := map[string]string{} // path -> "mode owner/group"
	for line := range strings.Lines(run(t, tl.dpkgDeb, "-c", deb)) {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		files[f[len(f)-1]] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"./usr/bin/p2pgrid":                    "-rwxr-xr-x root/root",
		"./lib/systemd/system/p2pgrid.service": "-rw-r--r-- root/root",
		"./etc/p2pgrid/gateway.yaml":           "-rw-r----- root/root", // postinst gives it to group p2pgrid
		"./etc/p2pgrid/devices/":               "drwxr-xr-x root/root",
		"./usr/share/doc/p2pgrid/install.md":   "-rw-r--r-- root/root",
	} {
		if files[path] != want {
			t.Errorf("%s: %q, want %q", path, files[path], want)
		}
	}
	for path := range files {
		if !strings.HasPrefix(path, "./usr/") && !strings.HasPrefix(path, "./lib/systemd/") && !strings.HasPrefix(path, "./etc/p2pgrid/") &&
			!slices.Contains([]string{"./etc/", "./lib/"}, path) {
			t.Errorf("unexpected file %s", path)
		}
	}
}

// checkControl checks the conffiles and that the maintainer scripts are
// executable shell.
func checkControl(t *testing.T, control string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(control, "conffiles"))
	if err != nil || string(b) != "/etc/p2pgrid/gateway.yaml\n" {
		t.Errorf("conffiles %q (%v), want /etc/p2pgrid/gateway.yaml", b, err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		path := filepath.Join(control, s)
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("no %s: %v", s, err)
			continue
		}
		if fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", s, fi.Mode())
		}
		if out, err := exec.Command("/bin/sh", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v %s", s, err, out)
		}
	}
}

// checkBinary checks the packaged binary: built for the Pi, static, and
// stamped with the version.
func checkBinary(t *testing.T, bin string, p pi, version string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != p.machine {
		t.Errorf("binary for %v, want %v", f.Machine, p.machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["GOARCH"] != p.goarch || settings["GOARM"] != p.goarm || settings["CGO_ENABLED"] != "0" {
		t.Errorf("built with GOARCH=%q GOARM=%q CGO_ENABLED=%q, want %q %q 0", settings["GOARCH"], settings["GOARM"], settings["CGO_ENABLED"], p.goarch, p.goarm)
	}
	// -trimpath keeps -ldflags out of the build info: look for the string
	// that -X main.version put in.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(version)) {
		t.Errorf("binary does not hold its version %s (-X main.version)", version)
	}
}

// unitFile is a systemd unit: section -> key -> values, in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %q", line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// checkUnit checks what the unit must say, and that it agrees with the
// packaged configuration.
func checkUnit(t *testing.T, path string, conf []byte) {
	t.Helper()
	u := parseUnit(t, path)
	one := func(section, key string) string {
		if v := u[section][key]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("[%s] %s: %q, want one value", section, key, u[section][key])
		return ""
	}
	for key, want := range map[string]string{
		"ExecStart":                "/usr/bin/p2pgrid gateway --config /etc/p2pgrid/gateway.yaml",
		"User":                     "p2pgrid",
		"Group":                    "p2pgrid",
		"SupplementaryGroups":      "dialout",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2", // a refused configuration
		"StateDirectory":           "p2pgrid",
		"ConfigurationDirectory":   "p2pgrid",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"NoNewPrivileges":          "yes",
		"PrivateTmp":               "yes",
	} {
		if got := one("Service", key); got != want {
			t.Errorf("[Service] %s=%s, want %s", key, got, want)
		}
	}
	// Serial devices stay reachable (group dialout), and the user is
	// the package's, owning the ledger across reinstalls.
	for _, key := range []string{"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "DynamicUser"} {
		if v, ok := u["Service"][key]; ok {
			t.Errorf("[Service] %s=%q: it would hide the serial devices or the user", key, v)
		}
	}
	if got := one("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%s", got)
	}
	var cfg struct {
		DataDir    string `yaml:"data_dir"`
		ProfileDir string `yaml:"profile_dir"`
	}
	if err := yaml.Unmarshal(conf, &cfg); err != nil {
		t.Fatal(err)
	}
	if want := "/var/lib/" + one("Service", "StateDirectory"); cfg.DataDir != want {
		t.Errorf("packaged data_dir %q, but the unit's StateDirectory is %s", cfg.DataDir, want)
	}
	if cfg.ProfileDir != "/etc/p2pgrid/devices" {
		t.Errorf("packaged profile_dir %q, but the package makes /etc/p2pgrid/devices", cfg.ProfileDir)
	}
}

// analyzeUnit runs systemd-analyze verify, which must have nothing to say
// (it exits 0 on unknown keys and bad values, and says so), and checks the
// unit's exposure (systemd-analyze security) stays at most 3.0. verify
// wants ExecStart's program to exist: a copy of the unit runs the packaged
// binary where it was extracted.
func analyzeUnit(t *testing.T, tl tools, unit, tree string) {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "p2pgrid.service")
	b = bytes.Replace(b, []byte("\nExecStart=/usr/bin/p2pgrid "), []byte("\nExecStart="+filepath.Join(tree, "usr", "bin", "p2pgrid")+" "), 1)
	if err := os.WriteFile(copied, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tl.systemdAnalyze, "verify", copied).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(tl.systemdAnalyze, "security", "--offline=yes", "--threshold=30", copied).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v: the unit's exposure is above 3.0:\n%s", err, out)
	}
}

// The check above would see a mistake: systemd-analyze verify speaks up
// (and still exits 0) about a unit with a typo.
func TestPackageUnitCheckSeesTypos(t *testing.T) {
	tl := requireTools(t, repoRoot(t))
	bad := filepath.Join(t.TempDir(), "bad.service")
	if err := os.WriteFile(bad, []byte("[Service]\nExecStart=/bin/true\nProtectSytem=strict\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(tl.systemdAnalyze, "verify", bad).CombinedOutput()
	if !strings.Contains(string(out), "ProtectSytem") {
		t.Errorf("systemd-analyze verify of a typo said %q", out)
	}
}

// checkScripts runs the maintainer scripts as dpkg does, with stand-ins for
// the programs they call (each records its command line), and the paths
// they touch moved into a temporary directory.
func checkScripts(t *testing.T, control string) {
	t.Helper()
	for _, tc := range []struct {
		name, script string
		args         []string
		userExists   bool // getent passwd p2pgrid finds the user
		dataDir      bool // /var/lib/p2pgrid exists
		want         []string
	}{
		{"first install", "postinst", []string{"configure", ""}, false, false, []string{
			"getent passwd p2pgrid",
			"useradd --system --user-group --home-dir /var/lib/p2pgrid --no-create-home --shell /usr/sbin/nologin --comment p2pgrid gateway p2pgrid",
			"getent group dialout",
			"usermod --append --groups dialout p2pgrid",
			"install -d -o p2pgrid -g p2pgrid -m 0750 /var/lib/p2pgrid",
			"chown root:p2pgrid /etc/p2pgrid/gateway.yaml",
			"chmod 0640 /etc/p2pgrid/gateway.yaml",
			"systemctl daemon-reload",
		}},
		{"upgrade", "postinst", []string{"configure", "0.9.0"}, true, true, []string{
			"getent passwd p2pgrid",
			"getent group dialout",
			"usermod --append --groups dialout p2pgrid",
			"chown root:p2pgrid /etc/p2pgrid/gateway.yaml",
			"chmod 0640 /etc/p2pgrid/gateway.yaml",
			"systemctl daemon-reload",
			"systemctl try-restart p2pgrid.service",
		}},
		{"abort upgrade", "postinst", []string{"abort-upgrade", "1.0.0"}, true, true, nil},
		{"remove", "prerm", []string{"remove"}, true, true, []string{"systemctl stop p2pgrid.service"}},
		{"upgrade, old prerm", "prerm", []string{"upgrade", "1.0.0"}, true, true, nil},
		{"purge", "postrm", []string{"purge"}, true, true, []string{
			"rm -f /etc/systemd/system/multi-user.target.wants/p2pgrid.service",
			"rmdir --ignore-fail-on-non-empty /etc/p2pgrid/devices /etc/p2pgrid",
			"systemctl daemon-reload",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			moved := func(s string) string {
				for _, p := range []string{"/etc/p2pgrid", "/var/lib/p2pgrid", "/run/systemd/system"} {
					s = strings.ReplaceAll(s, p, dir+p)
				}
				return s
			}
			for _, d := range []string{"/etc/p2pgrid", "/run/systemd/system", "/stubs"} {
				if err := os.MkdirAll(dir+d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dataDir {
				if err := os.MkdirAll(dir+"/var/lib/p2pgrid", 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(dir+"/etc/p2pgrid/gateway.yaml", nil, 0o640); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"getent", "useradd", "usermod", "install", "chown", "chmod", "systemctl", "rm", "rmdir", "userdel", "deluser"} {
				stub := "#!/bin/sh\necho \"" + name + " $*\" >>\"$STUBLOG\"\n"
				if name == "getent" {
					stub += "case \"$1 $2\" in\n\"passwd p2pgrid\") [ -n \"$USER_EXISTS\" ] ;;\n\"group dialout\") exit 0 ;;\n*) exit 2 ;;\nesac\n"
				}
				if err := os.WriteFile(dir+"/stubs/"+name, []byte(stub), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			src, err := os.ReadFile(filepath.Join(control, tc.script))
			if err != nil {
				t.Fatal(err)
			}
			script := filepath.Join(dir, tc.script)
			if err := os.WriteFile(script, []byte(moved(string(src))), 0o755); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(dir, "log")
			cmd := exec.Command("/bin/sh", append([]string{script}, tc.args...)...)
			cmd.Env = []string{"PATH=" + dir + "/stubs", "STUBLOG=" + log}
			if tc.userExists {
				cmd.Env = append(cmd.Env, "USER_EXISTS=1")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %q: %v\n%s", tc.script, tc.args, err, out)
			}
			b, err := os.ReadFile(log)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			var got []string
			for line := range strings.Lines(strings.ReplaceAll(string(b), dir, "")) {
				got = append(got, strings.TrimRight(line, "\n"))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s %q ran:\n%s\nwant:\n%s", tc.script, tc.args, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
