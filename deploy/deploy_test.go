package deploy_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/p2pgrid/p2pgrid/gateway/config"
)

// No container engine runs here: these tests check compose.yaml and
// ../Dockerfile against the files of the repository and against the
// shipped Mosquitto configuration, as far as that goes without one.

// service is the part of a compose service these files use; compose.yaml
// is decoded with unknown keys refused, so a new key is seen here.
type service struct {
	Image      string            `yaml:"image"`
	Build      *build            `yaml:"build"`
	Entrypoint []string          `yaml:"entrypoint"`
	Ports      []string          `yaml:"ports"`
	Volumes    []string          `yaml:"volumes"`
	Env        map[string]string `yaml:"environment"`
	Network    string            `yaml:"network_mode"`
	DependsOn  []string          `yaml:"depends_on"`
	Restart    string            `yaml:"restart"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type compose struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"mosquitto", "influxdb", "grafana", "clearer"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("compose.yaml has no service %s", name)
		}
	}
	return c
}

// mount is one "source:target[:ro]" of a service's volumes.
type mount struct{ source, target string }

func mounts(t *testing.T, s service) []mount {
	t.Helper()
	var ms []mount
	for _, v := range s.Volumes {
		f := strings.Split(v, ":")
		if len(f) < 2 || len(f) > 3 || (len(f) == 3 && f[2] != "ro") {
			t.Fatalf("volume %q: want source:target[:ro]", v)
		}
		ms = append(ms, mount{f[0], f[1]})
	}
	return ms
}

// isBind reports whether a mount's source is a path (else a named volume).
func isBind(source string) bool {
	return strings.HasPrefix(source, ".") || strings.HasPrefix(source, "/")
}

// mountFor returns the mount that holds target (the mount itself or one of
// its parent directories), or nil.
func mountFor(ms []mount, target string) *mount {
	target = path.Clean(target)
	for i, m := range ms {
		if target == m.target || strings.HasPrefix(target, strings.TrimSuffix(m.target, "/")+"/") {
			return &ms[i]
		}
	}
	return nil
}

// Every file mounted from the repository exists; each one only the
// operator has (in local/) is named in README.md; every named volume is
// declared; every image is pinned to a version.
func TestComposeMounts(t *testing.T) {
	c := loadCompose(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range c.Services {
		if s.Image == "" || (s.Build == nil && !regexp.MustCompile(`:[0-9][0-9.]*$`).MatchString(s.Image)) {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
		for _, m := range mounts(t, s) {
			switch {
			case !isBind(m.source):
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("service %s: volume %s is not declared under volumes", name, m.source)
				}
			case strings.HasPrefix(m.source, "./local/"):
				if !bytes.Contains(readme, []byte("`"+strings.TrimPrefix(m.source, "./"))) {
					t.Errorf("service %s mounts %s, which README.md does not say how to make", name, m.source)
				}
			default:
				if _, err := os.Stat(m.source); err != nil {
					t.Errorf("service %s mounts %s: %v", name, m.source, err)
				}
			}
		}
	}
	clearer := c.Services["clearer"]
	if clearer.Build == nil {
		t.Fatal("the clearer is not built from the Dockerfile")
	}
	if _, err := os.Stat(filepath.Join(clearer.Build.Context, clearer.Build.Dockerfile)); err != nil {
		t.Errorf("clearer build: %v", err)
	}
}

// mosquittoConf is what compose.yaml must agree with in mosquitto.conf.
type mosquittoConf struct {
	listeners []listener
	files     map[string]string // setting -> path (cafile, password_file, ...)
}

type listener struct {
	port int
	bind string // "" for every interface
}

func loadMosquittoConf(t *testing.T) mosquittoConf {
	t.Helper()
	b, err := os.ReadFile("../configs/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := mosquittoConf{files: map[string]string{}}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "listener":
			port, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("mosquitto.conf: %q", line)
			}
			l := listener{port: port}
			if len(f) > 2 {
				l.bind = f[2]
			}
			c.listeners = append(c.listeners, l)
		case "cafile", "certfile", "keyfile", "password_file", "acl_file", "persistence_location", "include_dir", "pid_file":
			c.files[f[0]] = f[1]
		}
	}
	if len(c.listeners) == 0 || len(c.files) < 8 {
		t.Fatalf("mosquitto.conf: listeners %v, files %v: the parse is broken", c.listeners, c.files)
	}
	return c
}

// The mosquitto service runs the shipped configuration, mounts what it
// reads where it reads it, and publishes exactly the listeners on every
// interface; the clearer reaches the loopback one from the broker's network.
func TestComposeMosquitto(t *testing.T) {
	c, conf := loadCompose(t), loadMosquittoConf(t)
	m := c.Services["mosquitto"]
	ms := mounts(t, m)
	run := strings.Join(m.Entrypoint, " ")
	const confPath = "/etc/mosquitto/mosquitto.conf"
	if !strings.Contains(run, "mosquitto -c "+confPath) {
		t.Errorf("entrypoint %q does not run mosquitto -c %s", run, confPath)
	}
	for target, source := range map[string]string{
		confPath:                    "../configs/mosquitto/mosquitto.conf",
		conf.files["acl_file"]:      "../configs/mosquitto/acl",
		conf.files["include_dir"]:   "./mosquitto/conf.d",
		conf.files["cafile"]:        "./local/certs",
		conf.files["password_file"]: "./local/p2pgrid.passwd",
	} {
		if mt := mountFor(ms, target); mt == nil || mt.source != source {
			t.Errorf("mosquitto.conf reads %s: mounted from %v, want %s", target, mt, source)
		}
	}
	for _, key := range []string{"certfile", "keyfile"} {
		if mt := mountFor(ms, conf.files[key]); mt == nil || mt.source != "./local/certs" {
			t.Errorf("mosquitto.conf %s %s is not in the certificates' mount", key, conf.files[key])
		}
	}
	if mt := mountFor(ms, conf.files["persistence_location"]); mt == nil || isBind(mt.source) {
		t.Errorf("persistence_location %s is not a named volume: %v", conf.files["persistence_location"], mt)
	}
	// The pid file's directory is made, and with persistence given to
	// the user Mosquitto switches to.
	pidDir := path.Dir(conf.files["pid_file"])
	if !strings.Contains(run, "mkdir -p "+pidDir) || !strings.Contains(run, "chown mosquitto:mosquitto "+pidDir+" "+path.Clean(conf.files["persistence_location"])) {
		t.Errorf("entrypoint %q does not make %s and give it and %s to mosquitto", run, pidDir, conf.files["persistence_location"])
	}

	var public []string
	loopback := 0
	for _, l := range conf.listeners {
		switch l.bind {
		case "":
			public = append(public, strconv.Itoa(l.port)+":"+strconv.Itoa(l.port))
		case "127.0.0.1":
			loopback = l.port
		default:
			t.Errorf("listener %d on %s: this test knows loopback and every interface", l.port, l.bind)
		}
	}
	if !slices.Equal(m.Ports, public) {
		t.Errorf("mosquitto publishes %q, want the listeners on every interface, %q (never the loopback one, %d)", m.Ports, public, loopback)
	}

	clearer := c.Services["clearer"]
	if clearer.Network != "service:mosquitto" {
		t.Errorf("clearer network_mode %q, want service:mosquitto (the loopback listener)", clearer.Network)
	}
	cfg := loadClearer(t)
	if urls := cfg.MQTT.BrokerURLs(); !slices.Equal(urls, []string{"tcp://127.0.0.1:" + strconv.Itoa(loopback)}) {
		t.Errorf("clearer.yaml broker %q, want the loopback listener tcp://127.0.0.1:%d", urls, loopback)
	}
	if !slices.Contains(clearer.DependsOn, "mosquitto") || !slices.Contains(clearer.DependsOn, "influxdb") {
		t.Errorf("clearer depends_on %q", clearer.DependsOn)
	}
}

// loadClearer loads clearer.yaml as the gateway loads its configuration.
// Load reads the password file, which exists in the container only: here
// P2PGRID_MQTT_PASSWORD_FILE names a stand-in, and the result keeps the
// file's own path.
func loadClearer(t *testing.T) *config.Config {
	t.Helper()
	b, err := os.ReadFile("clearer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		MQTT struct {
			PasswordFile string `yaml:"password_file"`
		} `yaml:"mqtt"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	password := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("clearer.yaml", []string{"P2PGRID_MQTT_PASSWORD_FILE=" + password})
	if err != nil {
		t.Fatalf("clearer.yaml: %v", err)
	}
	cfg.MQTT.PasswordFile = raw.MQTT.PasswordFile
	return cfg
}

// The clearer's files are mounted where clearer.yaml reads them, its data
// directory is a volume, and it and Grafana write to and read from the
// influxdb service's database.
func TestComposeClearer(t *testing.T) {
	c, cfg := loadCompose(t), loadClearer(t)
	if cfg.Clearer != config.ClearerPrimary {
		t.Errorf("clearer.yaml clearer %q", cfg.Clearer)
	}
	// Its login is a clearer's in the shipped ACL, which gives a clearer
	// the topics it publishes.
	acl, err := os.ReadFile("../configs/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Username != cfg.Gateway || !regexp.MustCompile(`(?m)^user `+regexp.QuoteMeta(cfg.MQTT.Username)+`$`).Match(acl) {
		t.Errorf("clearer.yaml logs in as %q (gateway %q): not a user block of configs/mosquitto/acl", cfg.MQTT.Username, cfg.Gateway)
	}
	ms := mounts(t, c.Services["clearer"])
	for p, want := range map[string]string{
		"/etc/p2pgrid/gateway.yaml": "./clearer.yaml",
		cfg.Roster:                  "./local/roster.json",
		cfg.MQTT.PasswordFile:       "./local/clearer.password",
	} {
		if mt := mountFor(ms, p); mt == nil || mt.source != want {
			t.Errorf("clearer reads %s: mounted from %v, want %s", p, mt, want)
		}
	}
	if mt := mountFor(ms, cfg.DataDir); mt == nil || isBind(mt.source) || mt.target != cfg.DataDir {
		t.Errorf("data_dir %s is not a named volume: %v", cfg.DataDir, mt)
	}
	u, err := url.Parse(cfg.Influx.URL)
	if err != nil {
		t.Fatal(err)
	}
	influx := c.Services["influxdb"]
	db := influx.Env["INFLUXDB_DB"]
	if u.Host != "influxdb:8086" || cfg.Influx.Bucket != db+"/" {
		t.Errorf("clearer writes to %s bucket %q; the influxdb service is influxdb:8086 with database %q", cfg.Influx.URL, cfg.Influx.Bucket, db)
	}
	b, err := os.ReadFile("../configs/grafana/provisioning/datasources/influxdb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Datasources []struct {
			URL      string `yaml:"url"`
			JSONData struct {
				DBName string `yaml:"dbName"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://influxdb:8086" || ds.Datasources[0].JSONData.DBName != db {
		t.Errorf("Grafana's data source %+v, want http://influxdb:8086 database %s", ds.Datasources, db)
	}
	if mt := mountFor(mounts(t, c.Services["grafana"]), "/etc/grafana/provisioning/datasources/influxdb.yaml"); mt == nil || mt.source != "../configs/grafana/provisioning" {
		t.Errorf("Grafana's provisioning is mounted from %v", mt)
	}
}

// instruction is one line of a Dockerfile, continuations joined.
type instruction struct {
	cmd, args string
	line      int
}

func loadDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur string
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur == "" {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur = ""
	}
	return out
}

// The Dockerfile builds from a Go image of go.mod's version, copies only
// files that exist (and stages it declares), and ends with the static
// binary run as a non-root user, data in the volume that the packaged and
// the clearer's data_dir name, and `p2pgrid gateway` as its command.
func TestDockerfile(t *testing.T) {
	ins := loadDockerfile(t)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin", "dist", "deploy/local"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
	var stages []string
	final := map[string][]string{} // instructions of the last stage
	for _, in := range ins {
		f := strings.Fields(in.args)
		switch in.cmd {
		case "FROM":
			final = map[string][]string{}
			img := f[0]
			if strings.HasPrefix(img, "--platform=") {
				img = f[1]
			}
			if strings.HasPrefix(img, "golang:") && !strings.HasPrefix(img, "golang:"+string(goVersion[1])) {
				t.Errorf("line %d: %s, but go.mod says go %s", in.line, img, goVersion[1])
			}
			if i := slices.Index(f, "AS"); i >= 0 && i+1 < len(f) {
				stages = append(stages, f[i+1])
			}
		case "COPY":
			var from string
			var srcs []string
			for _, a := range f[:len(f)-1] {
				switch {
				case strings.HasPrefix(a, "--from="):
					from = strings.TrimPrefix(a, "--from=")
				case strings.HasPrefix(a, "--"):
				default:
					srcs = append(srcs, a)
				}
			}
			if from != "" {
				if !slices.Contains(stages, from) {
					t.Errorf("line %d: COPY --from=%s, a stage not declared before", in.line, from)
				}
				break
			}
			for _, src := range srcs {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("line %d: COPY %s: %v", in.line, src, err)
				}
			}
		case "RUN":
			for _, pkg := range regexp.MustCompile(`go build .* (\./\S+)$`).FindStringSubmatch(in.args) {
				if strings.HasPrefix(pkg, "./") {
					if _, err := os.Stat(filepath.Join("..", pkg, "main.go")); err != nil {
						t.Errorf("line %d: go build %s: %v", in.line, pkg, err)
					}
				}
			}
		}
		final[in.cmd] = append(final[in.cmd], in.args)
	}
	if len(final["FROM"]) != 1 || final["FROM"][0] != "scratch" {
		t.Errorf("final stage FROM %q, want scratch (a static binary, nothing else)", final["FROM"])
	}
	user := final["USER"]
	if len(user) != 1 || regexp.MustCompile(`^(0|root)(:|$)`).MatchString(user[0]) {
		t.Fatalf("final stage USER %q: want one non-root user", user)
	}
	uid := strings.Split(user[0], ":")[0]
	cfg := loadClearer(t)
	if !slices.Equal(final["VOLUME"], []string{cfg.DataDir}) {
		t.Errorf("VOLUME %q, want the data_dir %s", final["VOLUME"], cfg.DataDir)
	}
	owned := false
	for _, c := range final["COPY"] {
		if strings.Contains(c, "--chown="+uid+":") && strings.HasSuffix(c, " "+cfg.DataDir) {
			owned = true
		}
	}
	if !owned {
		t.Errorf("%s is not made the user %s's (COPY --chown)", cfg.DataDir, uid)
	}
	var entry, cmd []string
	if len(final["ENTRYPOINT"]) != 1 || json.Unmarshal([]byte(final["ENTRYPOINT"][0]), &entry) != nil ||
		len(final["CMD"]) != 1 || json.Unmarshal([]byte(final["CMD"][0]), &cmd) != nil {
		t.Fatalf("ENTRYPOINT %q CMD %q: want one of each, in JSON form", final["ENTRYPOINT"], final["CMD"])
	}
	if !slices.Equal(append(entry, cmd...), []string{"/usr/bin/p2pgrid", "gateway"}) {
		t.Errorf("the image runs %q, want /usr/bin/p2pgrid gateway", append(entry, cmd...))
	}
}
