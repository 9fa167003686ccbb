package configs_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// block is a fenced code block of a Markdown file.
type block struct {
	info, text string // the word after ```, and the content
	line       int    // of the opening fence
}

// fencedBlocks returns the fenced code blocks of a Markdown file, with the
// indentation of their fence removed from every line.
func fencedBlocks(t *testing.T, path string) []block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	var indent string
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if strings.HasPrefix(trimmed, "```") {
			if cur == nil {
				indent = line[:len(line)-len(trimmed)]
				cur = &block{info: strings.TrimPrefix(trimmed, "```"), line: i + 1}
			} else {
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.text += strings.TrimPrefix(line, indent) + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: a fenced block is never closed", path, cur.line)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// isACLRule says whether a line is a Mosquitto ACL rule.
func isACLRule(line string) bool {
	f := strings.Fields(line)
	return len(f) >= 2 && (f[0] == "topic" || f[0] == "pattern" || f[0] == "user")
}

// There is one ACL, the shipped file: the pages that explain it show it
// byte for byte, and show no other rules but the README's two examples of
// blocks to append: a further clearer's (the shipped clearer's block under
// another name, without the operator's reading of the homes' telemetry and
// status) and a home's read-only app login.
func TestACLShownVerbatim(t *testing.T) {
	acl := readFile(t, filepath.Join("mosquitto", "acl"))
	operator := aclBlocks(acl)["operator"]
	var clearer []string // the operator's rules that make a clearer
	for _, r := range operator {
		if !strings.HasPrefix(r, "topic read "+protocol.TopicRoot+"/+/"+protocol.KindTelemetry+"/") &&
			!strings.HasPrefix(r, "topic read "+protocol.TopicRoot+"/+/"+protocol.KindStatus+"/") {
			clearer = append(clearer, r)
		}
	}
	if len(clearer) != len(operator)-2 {
		t.Fatalf("the acl's operator block %q does not read every home's telemetry and status (two lines)", operator)
	}
	for _, page := range []string{filepath.Join("..", "docs", "mqtt.md"), filepath.Join("mosquitto", "README.md")} {
		shown := false
		for _, b := range fencedBlocks(t, page) {
			if b.text == acl {
				shown = true
				continue
			}
			blocks := aclBlocks(b.text)
			if len(blocks) == 0 {
				continue
			}
			if page == filepath.Join("..", "docs", "mqtt.md") || len(blocks) != 1 {
				t.Errorf("%s:%d: ACL rules that are not configs/mosquitto/acl:\n%s", page, b.line, b.text)
				continue
			}
			switch {
			case strings.HasPrefix(b.text, "user "+clearerExample+"\n"):
				if got := blocks[clearerExample]; !slices.Equal(got, clearer) {
					t.Errorf("%s:%d: the further clearer's rules %q, want the operator's without its telemetry and status %q", page, b.line, got, clearer)
				}
			case strings.HasPrefix(b.text, "user "+appExample+"\n"):
				if b.text != appBlock {
					t.Errorf("%s:%d: the app login's block\n%s\nwant\n%s", page, b.line, b.text, appBlock)
				}
			default:
				t.Errorf("%s:%d: ACL rules that are not configs/mosquitto/acl:\n%s", page, b.line, b.text)
			}
		}
		if !shown {
			t.Errorf("%s does not show configs/mosquitto/acl verbatim in a fenced block", page)
		}
	}
}

// The names of the README's example blocks, and the app login's block:
// read its home's telemetry, status and metered figures, and deny the
// login the topics the %u patterns give every login. (gateway/mqtt's
// TestShippedACLPrivacy runs the README's block against Mosquitto.)
const (
	clearerExample = "clearer-north"
	appExample     = "home-17-app"
	appBlock       = "user home-17-app\n" +
		"topic read p2pgrid/v1/lindenweg/telemetry/home-17\n" +
		"topic read p2pgrid/v1/lindenweg/status/home-17\n" +
		"topic read p2pgrid/v1/lindenweg/metered/home-17\n" +
		"topic read p2pgrid/v1/lindenweg/app/home-17/+\n" +
		"topic read homeassistant/sensor/p2pgrid_home-17/+/config\n" +
		"topic deny p2pgrid/v1/+/+/home-17-app\n" +
		"topic deny p2pgrid/v1/+/app/home-17-app/+\n" +
		"topic deny homeassistant/sensor/p2pgrid_home-17-app/+/config\n"
)

// aclBlocks returns the rules ("topic ..." lines) of each "user" block of
// an ACL text, and the "pattern" lines under "".
func aclBlocks(text string) map[string][]string {
	out := map[string][]string{}
	user := ""
	for _, line := range strings.Split(text, "\n") {
		if !isACLRule(line) {
			continue
		}
		f := strings.Fields(line)
		switch f[0] {
		case "user":
			user = f[1]
			if _, ok := out[user]; !ok {
				out[user] = nil // a block without rules is a block all the same
			}
		case "pattern":
			out[""] = append(out[""], line)
		default:
			out[user] = append(out[user], line)
		}
	}
	return out
}

// The shipped ACL lets the gateways publish every kind of topic the
// protocol has them publish, on their own topics (%u), and the clearer
// every kind clearers publish. (gateway/broker's tests run the same rules
// against Mosquitto itself, for every kind.)
func TestACLGrantsEveryKind(t *testing.T) {
	acl := readFile(t, filepath.Join("mosquitto", "acl"))
	var patterns, clearer []string
	inUser := ""
	for _, line := range strings.Split(acl, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "user":
			inUser = f[1]
		case len(f) == 3 && f[0] == "pattern" && (f[1] == "write" || f[1] == "readwrite"):
			patterns = append(patterns, f[2])
		case len(f) == 3 && f[0] == "topic" && f[1] == "write" && inUser == "operator":
			clearer = append(clearer, f[2])
		}
	}
	for _, k := range []string{protocol.KindOrders, protocol.KindTelemetry, protocol.KindStatus, protocol.KindMetered} {
		if want := protocol.TopicRoot + "/+/" + k + "/%u"; !contains(patterns, want) {
			t.Errorf("the ACL lacks \"pattern write %s\": a gateway's %s would be dropped", want, k)
		}
	}
	for _, k := range []string{protocol.KindBook, protocol.KindResult, protocol.KindSettlement} {
		if want := protocol.TopicRoot + "/+/" + k + "/#"; !contains(clearer, want) {
			t.Errorf("the clearer operator lacks \"topic write %s\": its %s would be dropped", want, k)
		}
	}
	if want := protocol.TopicRoot + "/+/" + protocol.KindRoster; !contains(clearer, want) {
		t.Errorf("the clearer operator lacks \"topic write %s\"", want)
	}
}

// Privacy by default, as the shipped file says it: no rule lets a login
// that is not the operator's, the bridge's or the home's own read a home's
// telemetry or status, nor one that is not a clearer's read its metered
// figures; everybody reads the market. (gateway/mqtt's
// TestShippedACLPrivacy checks the same against Mosquitto.)
func TestACLKeepsHomesPrivate(t *testing.T) {
	blocks := aclBlocks(readFile(t, filepath.Join("mosquitto", "acl")))
	// reads says whether the rules let user read topic, as Mosquitto
	// decides it: the user's own rules, then the patterns (%u replaced).
	reads := func(user, topic string) bool {
		for _, r := range blocks[user] {
			f := strings.Fields(r)
			if topicMatches(f[2], topic) {
				if f[1] == "deny" {
					return false
				}
				if f[1] == "read" || f[1] == "readwrite" {
					return true
				}
			}
		}
		for _, r := range blocks[""] {
			f := strings.Fields(r)
			if (f[1] == "read" || f[1] == "readwrite") && topicMatches(strings.ReplaceAll(f[2], "%u", user), topic) {
				return true
			}
		}
		return false
	}
	const root = protocol.TopicRoot + "/c1/"
	for _, c := range []struct {
		user, topic string
		want        bool
	}{
		{"home1", root + "telemetry/home1", true},
		{"home1", root + "status/home1", true},
		{"home1", root + "metered/home1", true},
		{"home1", root + "telemetry/home2", false},
		{"home1", root + "status/home2", false},
		{"home1", root + "metered/home2", false},
		{"home1", root + "orders/home2", true},
		{"home1", root + "book/2026-11-22T12:15Z", true},
		{"home1", root + "result/2026-11-22T12:15Z", true},
		{"home1", root + "result/latest", true},
		{"home1", root + "settlement/2026-11-22T12:15Z", true},
		{"home1", root + "roster", true},
		{"home1", "$SYS/broker/uptime", false},
		{"home1", "other/topic", false},
		{"operator", root + "telemetry/home2", true},
		{"operator", root + "status/home2", true},
		{"operator", root + "metered/home2", true},
		{"bridge", root + "telemetry/home2", true},
		{"bridge", root + "status/home2", true},
	} {
		if got := reads(c.user, c.topic); got != c.want {
			t.Errorf("%s reads %s: %v, want %v", c.user, c.topic, got, c.want)
		}
	}
	for user := range blocks {
		for _, kind := range []string{protocol.KindTelemetry, protocol.KindStatus, protocol.KindMetered} {
			if user == "" || user == "bridge" || user == "operator" {
				continue
			}
			if reads(user, root+kind+"/home2") {
				t.Errorf("the acl's user %s reads a home's %s", user, kind)
			}
		}
	}
}

// topicMatches reports whether an MQTT topic filter matches topic.
func topicMatches(filter, topic string) bool {
	f, l := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i == len(l) || level != "+" && level != l[i] {
			return false
		}
	}
	return len(f) == len(l)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The gateway configuration configs/mosquitto/README.md tells to write is
// a valid one, with and without the client certificate lines.
func TestREADMEGatewayConfig(t *testing.T) {
	var yamls []string
	for _, b := range fencedBlocks(t, filepath.Join("mosquitto", "README.md")) {
		if b.info == "yaml" {
			yamls = append(yamls, b.text)
		}
	}
	if len(yamls) != 3 || !strings.HasPrefix(yamls[0], "gateway:") || !strings.HasPrefix(yamls[1], "  cert_file:") || !strings.HasPrefix(yamls[2], "  brokers:") {
		t.Fatalf("want three yaml blocks in configs/mosquitto/README.md, a gateway's configuration, its cert_file and key_file, "+
			"and the brokers in place of its broker; got %q", yamls)
	}
	pw := filepath.Join(t.TempDir(), "mqtt.password")
	if err := os.WriteFile(pw, []byte("its-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"P2PGRID_MQTT_PASSWORD_FILE=" + pw}
	cfg, err := config.Parse([]byte(yamls[0]), env)
	if err != nil {
		t.Fatalf("the README's gateway configuration: %v", err)
	}
	m := cfg.MQTT
	if m.Broker != "mqtts://broker.lan:8883" || m.Username != cfg.Gateway || m.CAFile == "" || string(m.Password) != "its-password" {
		t.Errorf("the README's gateway configuration gives broker %q, username %q (gateway %q), ca_file %q, password from the file %v",
			m.Broker, m.Username, cfg.Gateway, m.CAFile, string(m.Password) == "its-password")
	}
	cfg, err = config.Parse([]byte(yamls[0]+yamls[1]), env)
	if err != nil {
		t.Fatalf("the README's gateway configuration with a client certificate: %v", err)
	}
	if cfg.MQTT.CertFile == "" || cfg.MQTT.KeyFile == "" {
		t.Errorf("cert_file %q, key_file %q: the client certificate lines are not in the mqtt section", cfg.MQTT.CertFile, cfg.MQTT.KeyFile)
	}
	const brokerLine = "  broker: mqtts://broker.lan:8883\n"
	if !strings.Contains(yamls[0], brokerLine) {
		t.Fatalf("the README's gateway configuration has no line %q for the brokers to replace", brokerLine)
	}
	cfg, err = config.Parse([]byte(strings.Replace(yamls[0], brokerLine, yamls[2], 1)), env)
	if err != nil {
		t.Fatalf("the README's gateway configuration with both brokers: %v", err)
	}
	if b := cfg.MQTT.Brokers; len(b) != 2 || b[0] != "mqtts://broker.lan:8883" || cfg.MQTT.Broker != "" {
		t.Errorf("with both brokers: broker %q, brokers %q, want the README's two, A first", cfg.MQTT.Broker, b)
	}
}

// confSettings returns the settings of configs/mosquitto/mosquitto.conf,
// one per line, without comments and blank lines.
func confSettings(t *testing.T, path string) [][]string {
	t.Helper()
	var out [][]string
	for _, line := range strings.Split(readFile(t, path), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			out = append(out, f)
		}
	}
	return out
}

// Every listener of the shipped mosquitto.conf binds client ids to logins
// (use_username_as_clientid is a listener setting in Mosquitto 2.0: given
// once for all, it would not apply): a listener added without it would let
// one home's password take the clearer's session.
func TestConfBindsClientIDOnEveryListener(t *testing.T) {
	listeners, bound := 0, 0
	inListener := false
	for _, f := range confSettings(t, filepath.Join("mosquitto", "mosquitto.conf")) {
		switch {
		case f[0] == "listener":
			if inListener && bound < listeners {
				t.Errorf("listener %d has no use_username_as_clientid true", listeners)
			}
			listeners++
			inListener = true
		case f[0] == "use_username_as_clientid":
			if !inListener {
				t.Errorf("use_username_as_clientid before the first listener: Mosquitto ignores it there")
			}
			if len(f) == 2 && f[1] == "true" {
				bound = listeners
			}
		}
	}
	if listeners == 0 {
		t.Fatal("no listener in mosquitto.conf")
	}
	if bound < listeners {
		t.Errorf("listener %d has no use_username_as_clientid true", listeners)
	}
}

// The shipped broker's size limits follow the protocol's: message_size_limit
// is the largest message p2pgrid sends (so none is dropped, and nothing
// larger passes), max_packet_size leaves room for its topic and headers,
// and max_queued_bytes holds at least a few of the largest messages.
func TestConfSizeLimits(t *testing.T) {
	largest := max(protocol.MaxBookSize, protocol.MaxResultSize, protocol.MaxSettlementSize,
		protocol.MaxOrderSize, protocol.MaxMeteredSize, protocol.MaxRosterSize)
	got := map[string]int{}
	for _, f := range confSettings(t, filepath.Join("mosquitto", "mosquitto.conf")) {
		switch f[0] {
		case "message_size_limit", "max_packet_size", "max_queued_bytes":
			n, err := strconv.Atoi(f[len(f)-1])
			if len(f) != 2 || err != nil {
				t.Fatalf("mosquitto.conf: %q: want a number of bytes", strings.Join(f, " "))
			}
			got[f[0]] = n
		}
	}
	if got["message_size_limit"] != largest {
		t.Errorf("message_size_limit %d, want %d, the largest message of gateway/protocol", got["message_size_limit"], largest)
	}
	if p := got["max_packet_size"]; p < largest+64<<10 || p > largest+1<<20 {
		t.Errorf("max_packet_size %d, want a little over message_size_limit %d (room for topic and headers)", p, largest)
	}
	if q := got["max_queued_bytes"]; q < 2*largest {
		t.Errorf("max_queued_bytes %d holds fewer than two of the largest messages (%d bytes)", q, largest)
	}
}

// The bridge of configs/mosquitto/bridge.conf logs in as a user the acl
// lets pass everything on, shares exactly the p2pgrid topics both ways at
// QoS 1 with loop detection and a checked certificate, and is read from
// the include_dir of mosquitto.conf, where the README installs it.
func TestBridgeConf(t *testing.T) {
	bridge := map[string]string{}
	for _, f := range confSettings(t, filepath.Join("mosquitto", "bridge.conf")) {
		if _, dup := bridge[f[0]]; dup {
			t.Errorf("bridge.conf: %s given twice", f[0])
		}
		bridge[f[0]] = strings.Join(f[1:], " ")
	}
	for key, want := range map[string]string{
		"topic":                   protocol.TopicRoot + "/# both 1",
		"try_private":             "true",
		"bridge_insecure":         "false",
		"cleansession":            "false",
		"bridge_cafile":           "/etc/mosquitto/certs/ca.crt",
		"bridge_protocol_version": "mqttv311",
	} {
		if bridge[key] != want {
			t.Errorf("bridge.conf: %s %q, want %q", key, bridge[key], want)
		}
	}
	acl := readFile(t, filepath.Join("mosquitto", "acl"))
	if block := "\nuser " + bridge["remote_username"] + "\ntopic readwrite " + protocol.TopicRoot + "/#\n"; !strings.Contains(acl, block) {
		t.Errorf("the acl lacks the bridge's block %q", block)
	}
	conf := confSettings(t, filepath.Join("mosquitto", "mosquitto.conf"))
	last := strings.Join(conf[len(conf)-1], " ")
	if last != "include_dir /etc/mosquitto/conf.d" {
		t.Errorf("mosquitto.conf ends with %q, want include_dir /etc/mosquitto/conf.d (the bridge's folder)", last)
	}
	if readme := readFile(t, filepath.Join("mosquitto", "README.md")); !strings.Contains(readme, "bridge.conf /etc/mosquitto/conf.d/p2pgrid-bridge.conf") {
		t.Error("the README does not install bridge.conf into /etc/mosquitto/conf.d/")
	}
}
