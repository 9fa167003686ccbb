package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testclock"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// A community made, grown and shrunk only with the operator's and the
// homes' commands trades, live: the real binary runs the operator's
// clearer and four homes (`p2pgrid gateway` with the configurations
// `community init` and `join` wrote, the homes' devices added as a home
// adds them, docs/community.md step 9) over the real Mosquitto with the
// generated files, on the fault suite's shared accelerated clock with
// simulated homes. Then, with nothing restarted:
//
//   - once an interval with trades is in every ledger, a fifth home is
//     admitted with `community add`, joins with `join` and starts; it
//     trades from the interval its roster version is valid from, in every
//     ledger;
//   - a home is taken out with `community remove`: an order signed with
//     its key for the version's interval is rejected by the clearer
//     (counted as forged on its /metrics), no book from that interval on
//     holds an order of it while the one before does, no ledger a trade,
//     and after Mosquitto's reload (SIGHUP) the broker refuses its login;
//   - a roster version signed with another key, published retained on the
//     roster topic by the one login that may publish there (the clearer's),
//     is counted as forged by every gateway and changes no one's roster.
//
// The market is the fault suite's (one-minute intervals, six times as
// fast as the wall clock), given to every gateway and to the operator's
// commands alike through the environment, and so is a price floor and
// cap; `community add` and `remove` run on the gateways' test clock
// (their hidden --clock-* flags), so that valid_from lands on its grid.
func TestCommunityTrades(t *testing.T) {
	testtool.Integration(t)
	c := newTradeCommunity(t)

	c.logf("setting up: community init, then key, community add and join for %d homes", 4)
	took := c.setUp()
	c.logf("set up in %s: init %s; key+add %s; join %s", took["all"].Round(time.Millisecond), took["init"].Round(time.Millisecond),
		took["add"].Round(time.Millisecond), took["join"].Round(time.Millisecond))

	c.startCommunity()
	started := time.Now()
	first := c.waitTrades("an interval cleared with trades, in every ledger", 75*time.Second, c.members(), "")
	c.logf("first traded interval %s in every ledger, %s after the gateways started (%.1f intervals of the test clock)",
		first, time.Since(started).Round(100*time.Millisecond), c.clock.Now().Sub(c.clock.Epoch).Minutes())

	removed := c.removeHome("home-2")
	c.probeRemoved("home-2", removed)    // before the reload, while its login still works
	added := c.addFifthHome("home-5", 6) // sim home6 has no panels: a buyer, so it trades whoever sells
	c.reloadBroker()
	c.startGateway("home-5")
	c.checkLoginRefused("home-2")
	c.waitRosterEverywhere(added.Seq, "home-5")
	c.forgeRoster(added)

	from := c.waitTrades("an interval from "+added.ValidFrom+" on with a trade of home-5, in every ledger", 60*time.Second, c.members(), "home-5")
	if start, _ := market.ParseInterval(from); start.Before(added.Start()) {
		t.Errorf("home-5 traded in %s, before its roster version's %s", from, added.ValidFrom)
	}
	c.logf("home-5, added at roster version %d valid from %s, traded in %s", added.Seq, added.ValidFrom, from)
	c.checkRemoved("home-2", removed)
}

// tradeCommunity is the running community of TestCommunityTrades.
type tradeCommunity struct {
	t              *testing.T
	began          time.Time
	bin, dir, root string
	tlsPort        int
	// env is the environment of every command and gateway: the market,
	// without the caller's P2PGRID_ settings.
	env       []string
	clock     testclock.Clock
	clockArgs []string
	simBase   int // sim home N listens on simBase+N-1
	broker    *os.Process
	gateways  map[string]*tradeGateway
	procs     []namedOutput // in start order, for the tails
	removed   map[string]bool
}

type tradeGateway struct {
	config, dataDir, http string
	out                   *testtool.Output
}

type namedOutput struct {
	name string
	out  *testtool.Output
}

const (
	tradeSpeed    = 6
	tradeInterval = time.Minute
	simHomes      = 6
)

func newTradeCommunity(t *testing.T) *tradeCommunity {
	root := t.TempDir()
	c := &tradeCommunity{t: t, began: time.Now(), root: root, bin: filepath.Join(root, "p2pgrid"),
		tlsPort: testtool.FreePort(t), gateways: map[string]*tradeGateway{}, removed: map[string]bool{}}
	if out, err := exec.Command("go", "build", "-o", c.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2PGRID_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "P2PGRID_MARKET_INTERVAL=1m", "P2PGRID_MARKET_GATE_CLOSURE=15s", "P2PGRID_MARKET_GRACE=10s",
		"P2PGRID_MARKET_PRICE_FLOOR=0.05", "P2PGRID_MARKET_PRICE_CAP=0.30", "P2PGRID_MARKET_MIN_TRADE_KWH=0.001", "P2PGRID_TELEMETRY_ENABLED=false")
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.procs {
				t.Logf("---- %s (last 30 lines) ----\n%s", p.name, tailString(p.out.String(), 30))
			}
		}
	})
	return c
}

// logf logs a step with the wall time since the test began and the test
// clock's time.
func (c *tradeCommunity) logf(format string, args ...any) {
	c.t.Helper()
	at := "not started"
	if !c.clock.Origin.IsZero() {
		at = c.clock.Now().Format("15:04:05")
	}
	c.t.Logf("[+%5.1fs, clock %s] %s", time.Since(c.began).Seconds(), at, fmt.Sprintf(format, args...))
}

// run runs the binary with the community's environment and returns its
// standard output and how long it took.
func (c *tradeCommunity) run(args ...string) (string, time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("p2pgrid %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), time.Since(start)
}

// setUp makes the community and four homes with the commands, as
// docs/community.md has them: init; for each home `key` on its gateway,
// `community add` at the operator's, `join` on the gateway; then the
// home's devices into its configuration. It returns how long the commands
// took, by kind and in all.
func (c *tradeCommunity) setUp() map[string]time.Duration {
	took := map[string]time.Duration{}
	c.dir = filepath.Join(c.root, "lindenweg")
	_, took["init"] = c.run("community", "init", c.dir, "--name", "lindenweg", "--broker", "127.0.0.1:"+strconv.Itoa(c.tlsPort))
	c.simBase = consecutivePorts(c.t, simHomes)
	// The first four are admitted before the test clock starts, by the
	// wall clock: their versions are valid from an interval of today,
	// before the test clock's epoch, and so govern all of its intervals.
	for i, h := range []string{"home-1", "home-2", "home-3", "home-4"} { // sim: 1 and 3 solar-rich, 2 small panels, 4 none
		add, join := c.admit(h, i+1, false)
		took["add"] += add
		took["join"] += join
	}
	took["all"] = took["init"] + took["add"] + took["join"]
	return took
}

// admit runs key, community add (on the test clock with clock) and join
// for home id, whose devices are those of sim home simHome, and fills
// its devices in.
func (c *tradeCommunity) admit(id string, simHome int, clock bool) (add, join time.Duration) {
	c.t.Helper()
	dataDir := filepath.Join(c.root, id, "data")
	key, tk := c.run("key", "--data", dataDir)
	args := []string{"community", "add", c.dir, "--home", id, "--public-key", strings.TrimSpace(key)}
	if clock {
		args = append(args, c.clockArgs...)
	}
	_, ta := c.run(args...)
	cfg := filepath.Join(c.root, id, "etc", "gateway.yaml")
	_, join = c.run("join", filepath.Join(c.dir, "bundles", id+".json"), "--config", cfg, "--data-dir", dataDir)
	addr := fmt.Sprintf("127.0.0.1:%d", c.simBase+simHome-1)
	yaml := readFile(c.t, cfg)
	devices := fmt.Sprintf("devices:\n  - {name: grid, url: \"tcp://%s\", unit: 1, profile: sdm630, role: grid}\n  - {name: pv, url: \"tcp://%s\", unit: 2, profile: sunspec, role: pv}\n", addr, addr)
	if !strings.Contains(yaml, "\ndevices: []\n") {
		c.t.Fatalf("%s: no empty devices list to fill in:\n%s", cfg, yaml)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(yaml, "\ndevices: []\n", "\n"+devices, 1)), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.gateways[id] = &tradeGateway{config: cfg, dataDir: dataDir, http: "127.0.0.1:" + strconv.Itoa(testtool.FreePort(c.t))}
	return tk + ta, join
}

// startCommunity starts the test clock, the simulated homes, the broker,
// the clearer and the four homes.
func (c *tradeCommunity) startCommunity() {
	c.t.Helper()
	// Tomorrow at 11:00 UTC: the sun is up.
	epoch := time.Now().UTC().Truncate(24 * time.Hour).Add(35 * time.Hour)
	c.clock = testclock.Clock{Epoch: epoch, Origin: time.Now().Add(time.Second).Round(0), Speed: tradeSpeed}
	origin := strconv.FormatInt(c.clock.Origin.UnixNano(), 10)
	c.clockArgs = []string{"--clock-epoch", epoch.Format(time.RFC3339), "--clock-origin", origin, "--clock-speed", strconv.Itoa(tradeSpeed)}
	c.procs = append(c.procs, namedOutput{"sim", testtool.StartProcess(c.t, exec.Command(c.bin, "sim", "--homes", strconv.Itoa(simHomes),
		"--listen", fmt.Sprintf("127.0.0.1:%d", c.simBase), "--speed", strconv.Itoa(tradeSpeed), "--start", epoch.Format(time.RFC3339),
		"--clock-origin", origin, "--status", "0"))})
	for i := range simHomes {
		waitListening(c.t, fmt.Sprintf("127.0.0.1:%d", c.simBase+i))
	}
	c.gateways["operator"] = &tradeGateway{config: filepath.Join(c.dir, "operator", "gateway.yaml"), dataDir: filepath.Join(c.dir, "operator", "data"),
		http: "127.0.0.1:" + strconv.Itoa(testtool.FreePort(c.t))}
	c.broker = startCommunityBroker(c.t, c.dir, c.tlsPort)
	for _, id := range []string{"operator", "home-1", "home-2", "home-3", "home-4"} {
		c.startGateway(id)
	}
	c.logf("started the sim, Mosquitto, the clearer and 4 homes")
}

func (c *tradeCommunity) startGateway(id string) {
	c.t.Helper()
	g := c.gateways[id]
	cmd := exec.Command(c.bin, append([]string{"gateway", "--config", g.config}, c.clockArgs...)...)
	cmd.Env = append(slices.Clone(c.env), "P2PGRID_HTTP="+g.http)
	g.out = testtool.StartProcess(c.t, cmd)
	c.procs = append(c.procs, namedOutput{id, g.out})
}

// members are the running gateways that are in the roster.
func (c *tradeCommunity) members() []string {
	var ids []string
	for id, g := range c.gateways {
		if g.out != nil && !c.removed[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// waitFor polls cond until it holds, at most timeout; a gateway that
// exits, or the time running out, fails the test with what cond last
// said.
func (c *tradeCommunity) waitFor(what string, timeout time.Duration, cond func() (bool, string)) string {
	c.t.Helper()
	c.logf("waiting (at most %s) for %s", timeout, what)
	deadline := time.Now().Add(timeout)
	for {
		for id, g := range c.gateways {
			if g.out == nil || c.removed[id] { // a removed home may give up
				continue
			}
			select {
			case <-g.out.Exited():
				c.t.Fatalf("while waiting for %s: %s exited: %v", what, id, g.out.Err())
			default:
			}
		}
		ok, state := cond()
		if ok {
			c.logf("got %s: %s", what, state)
			return state
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s after %s: %s", what, timeout, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitTrades waits for an interval in the ledger of every one of ids
// with trades (of trader, if not "") and returns it.
func (c *tradeCommunity) waitTrades(what string, timeout time.Duration, ids []string, trader string) string {
	c.t.Helper()
	return c.waitFor(what, timeout, func() (bool, string) {
		common := map[string]int{}
		for _, id := range ids {
			for iv, traders := range ledgerTrades(c.t, filepath.Join(c.gateways[id].dataDir, "ledger")) {
				if trader == "" || traders[trader] {
					common[iv]++
				}
			}
		}
		for _, iv := range slices.Sorted(maps.Keys(common)) {
			if common[iv] == len(ids) {
				return true, iv
			}
		}
		return false, fmt.Sprintf("intervals and how many of %v hold them: %v", ids, common)
	})
}

// rosterChange runs community add or remove on the test clock and checks
// the version's valid_from: the interval after the one open when it ran.
func (c *tradeCommunity) rosterChange(change func()) *protocol.RosterMsg {
	c.t.Helper()
	cal := market.Calendar{Interval: tradeInterval}
	before := c.clock.Now()
	change()
	after := c.clock.Now()
	msg := readRosterMsg(c.t, filepath.Join(c.dir, "roster.json"))
	if from := msg.Start(); !from.Equal(cal.Open(before).Add(tradeInterval)) && !from.Equal(cal.Open(after).Add(tradeInterval)) {
		c.t.Fatalf("roster version %d valid from %s, made between %s and %s of the test clock: want the interval after the open one",
			msg.Seq, msg.ValidFrom, before.Format("15:04:05"), after.Format("15:04:05"))
	}
	return msg
}

// addFifthHome admits id while everything runs: key, community add on
// the test clock, join, its devices (sim home simHome's).
func (c *tradeCommunity) addFifthHome(id string, simHome int) *protocol.RosterMsg {
	c.t.Helper()
	var add, join time.Duration
	msg := c.rosterChange(func() { add, join = c.admit(id, simHome, true) })
	c.logf("added %s (key+add %s, join %s): roster version %d, valid from %s", id, add.Round(time.Millisecond), join.Round(time.Millisecond), msg.Seq, msg.ValidFrom)
	return msg
}

// removeHome takes id out with community remove on the test clock.
func (c *tradeCommunity) removeHome(id string) *protocol.RosterMsg {
	c.t.Helper()
	msg := c.rosterChange(func() { c.run(append([]string{"community", "remove", c.dir, "--home", id}, c.clockArgs...)...) })
	c.removed[id] = true
	c.logf("removed %s: roster version %d, valid from %s", id, msg.Seq, msg.ValidFrom)
	return msg
}

// probeRemoved waits for the interval removal is valid from to take
// orders, then publishes an order for it signed with id's own key on id's
// orders topic, with id's login (Mosquitto has not reloaded yet): the
// clearer rejects it, as an order of a gateway that is not in the roster
// of its interval, and counts it on its /metrics. (id's own gateway,
// which has the version too, places none.)
func (c *tradeCommunity) probeRemoved(id string, removal *protocol.RosterMsg) {
	c.t.Helper()
	cal := market.Calendar{Interval: tradeInterval, GateClosure: 15 * time.Second}
	open := removal.Start().Add(-tradeInterval) // from then on the clearer takes orders for it (market.Calendar.Open)
	c.waitFor("the order gate of "+removal.ValidFrom+" to open", c.clock.Real(tradeInterval)*3, func() (bool, string) {
		now := c.clock.Now()
		return !now.Before(open.Add(2*time.Second)) && now.Before(cal.GateClose(removal.Start()).Add(-5*time.Second)), now.Format("15:04:05")
	})
	g := c.gateways[id]
	cfg, err := config.Load(g.config, c.env)
	if err != nil {
		c.t.Fatal(err)
	}
	m, err := auction.NewMarket(cfg.AuctionRules())
	if err != nil {
		c.t.Fatal(err)
	}
	key, err := protocol.LoadKey(filepath.Join(g.dataDir, protocol.KeyFile))
	if err != nil {
		c.t.Fatal(err)
	}
	o, err := m.ParseOrder(id, id, "buy", "0.010", "0.30")
	if err != nil {
		c.t.Fatal(err)
	}
	order, err := protocol.SignOrder(key, "lindenweg", removal.ValidFrom, id, o.Side, o.Qty, o.Price, m)
	if err != nil {
		c.t.Fatal(err)
	}
	const series = `p2pgrid_clearer_orders_rejected_total{reason="forged"}`
	before := c.metric("operator", series)
	c.publishAs(id, "p2pgrid/v1/lindenweg/orders/"+id, order, false)
	c.waitFor("the clearer to reject "+id+"'s order for "+removal.ValidFrom, 10*time.Second, func() (bool, string) {
		n := c.metric("operator", series)
		logged := strings.Contains(c.gateways["operator"].out.String(), `gateway \"`+id+`\" is not in the roster`)
		return n > before && logged, fmt.Sprintf("%s %v (before %v), logged: %v", series, n, before, logged)
	})
}

// publishAs publishes payload on topic with gateway id's login, at QoS 1.
// The broker takes the username as the client id, so the login takes the
// running gateway's session over, and the gateway, which reconnects at
// once, takes it back: the publish may be cut off, and is tried again.
func (c *tradeCommunity) publishAs(id, topic string, payload []byte, retain bool) {
	c.t.Helper()
	args := []string{"-q", "1", "-t", topic, "-m", string(payload)}
	if retain {
		args = append(args, "-r")
	}
	for try := 1; ; try++ {
		out, err := c.login(id).run(c.t, "mosquitto_pub", args...)
		if err == nil {
			return
		}
		if try == 5 {
			c.t.Fatalf("publish on %s as %s, %d tries: %v %s", topic, id, try, err, out)
		}
		c.logf("publishing on %s as %s, try %d: %v %s", topic, id, try, err, strings.TrimSpace(out))
		time.Sleep(200 * time.Millisecond)
	}
}

// reloadBroker sends Mosquitto SIGHUP, as `systemctl reload mosquitto`
// does: it reads its password file again.
func (c *tradeCommunity) reloadBroker() {
	c.t.Helper()
	if err := c.broker.Signal(syscall.SIGHUP); err != nil {
		c.t.Fatalf("SIGHUP to mosquitto: %v", err)
	}
	c.logf("reloaded Mosquitto (SIGHUP)")
}

// login is gateway id's MQTT login, from the files join (or init) wrote.
func (c *tradeCommunity) login(id string) login {
	c.t.Helper()
	pwFile := filepath.Join(filepath.Dir(c.gateways[id].config), "mqtt.password")
	return login{c.tlsPort, filepath.Join(c.dir, "certs", "ca.crt"), id, strings.TrimSpace(readFile(c.t, pwFile))}
}

// checkLoginRefused waits for the broker, reloaded, to refuse id's login.
func (c *tradeCommunity) checkLoginRefused(id string) {
	c.t.Helper()
	l := c.login(id)
	topic := "p2pgrid/v1/lindenweg/status/" + id
	c.waitFor("the broker to refuse "+id+"'s login", 10*time.Second, func() (bool, string) {
		out, err := l.run(c.t, "mosquitto_sub", "-t", topic, "-C", "1", "-W", "1")
		return err != nil && strings.Contains(out, "not authorised"), fmt.Sprintf("mosquitto_sub: %v %q", err, strings.TrimSpace(out))
	})
}

// get reads path from gateway id's HTTP server.
func (c *tradeCommunity) get(id, path string) (string, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + c.gateways[id].http + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// health is what /healthz of gateway id says of its MQTT connection and
// roster version.
func (c *tradeCommunity) health(id string) (mqtt string, roster uint64) {
	body, err := c.get(id, "/healthz")
	if err != nil {
		return err.Error(), 0
	}
	var h struct {
		MQTT          string `json:"mqtt"`
		RosterVersion uint64 `json:"roster_version"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		return fmt.Sprintf("healthz %q: %v", body, err), 0
	}
	return h.MQTT, h.RosterVersion
}

// metric is the value of one series of gateway id's /metrics (0 if it
// is not there).
func (c *tradeCommunity) metric(id, series string) float64 {
	body, err := c.get(id, "/metrics")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// waitRosterEverywhere waits until every member is connected and holds
// roster version seq (taken live: from the clearer's file, from the
// broker), and newcomer too.
func (c *tradeCommunity) waitRosterEverywhere(seq uint64, newcomer string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("roster version %d and a connection in every member's /healthz (%s included)", seq, newcomer), 20*time.Second, func() (bool, string) {
		var state []string
		ok := true
		for _, id := range c.members() {
			mqtt, v := c.health(id)
			state = append(state, fmt.Sprintf("%s: %s, version %d", id, mqtt, v))
			ok = ok && mqtt == "connected" && v == seq
		}
		return ok, strings.Join(state, "; ")
	})
}

// forgeRoster publishes, retained on the roster topic with the clearer's
// login (the only one the ACL lets publish there), a version newer than
// real, with a stranger in it, signed with a key that is not the
// operator's: every member counts it as forged and keeps real.
func (c *tradeCommunity) forgeRoster(real *protocol.RosterMsg) {
	c.t.Helper()
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	members := append(slices.Clone(real.Roster.Gateways), protocol.Member{ID: "mallory", PublicKey: mallory.Public().(ed25519.PublicKey)})
	r, err := protocol.NewRoster("lindenweg", members)
	if err != nil {
		c.t.Fatal(err)
	}
	data, err := protocol.EncodeRoster(forger, r, real.Seq+1, real.Start())
	if err != nil {
		c.t.Fatal(err)
	}
	const series = `p2pgrid_roster_rejected_total{reason="forged"}`
	before := map[string]float64{}
	for _, id := range c.members() {
		before[id] = c.metric(id, series)
	}
	c.publishAs("operator", "p2pgrid/v1/lindenweg/roster", data, true)
	c.logf("published a forged roster version %d (signed with another key) retained, as the clearer's login", real.Seq+1)
	// Publishing as the clearer's login takes the clearer's client id
	// (use_username_as_clientid): the clearer is knocked off and hears the
	// retained forgery only once it is back, after a reconnect backoff that
	// grows with each takeover, up to mqtt.DefaultMaxReconnectInterval.
	c.waitFor("every member to count the forged version and keep version "+strconv.FormatUint(real.Seq, 10), mqtt.DefaultMaxReconnectInterval+15*time.Second, func() (bool, string) {
		var state []string
		ok := true
		for _, id := range c.members() {
			n := c.metric(id, series)
			_, v := c.health(id)
			state = append(state, fmt.Sprintf("%s: forged %v (before %v), version %d", id, n, before[id], v))
			ok = ok && n > before[id] && v == real.Seq
		}
		return ok, strings.Join(state, "; ")
	})
}

// checkRemoved checks that from removal's valid_from on no book on the
// broker holds an order of id, while an earlier one does, and that no
// member's ledger holds a trade of id from then on.
func (c *tradeCommunity) checkRemoved(id string, removal *protocol.RosterMsg) {
	c.t.Helper()
	out, _ := c.login("operator").run(c.t, "mosquitto_sub", "-t", "p2pgrid/v1/lindenweg/book/+", "-v", "-W", "2")
	var before, after []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		topic, payload, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(topic, "p2pgrid/v1/lindenweg/book/") {
			continue // mosquitto_sub's "Timed out"
		}
		var b struct {
			Orders []struct {
				Gateway string `json:"gateway"`
			} `json:"orders"`
		}
		if err := json.Unmarshal([]byte(payload), &b); err != nil {
			c.t.Fatalf("book %s: %v", topic, err)
		}
		iv := topic[strings.LastIndex(topic, "/")+1:]
		start, err := market.ParseInterval(iv)
		if err != nil {
			continue
		}
		has := slices.ContainsFunc(b.Orders, func(o struct {
			Gateway string `json:"gateway"`
		}) bool {
			return o.Gateway == id
		})
		switch {
		case start.Before(removal.Start()) && has:
			before = append(before, iv)
		case !start.Before(removal.Start()):
			if has {
				c.t.Errorf("the book of %s, from the removal's interval %s on, holds an order of %s", iv, removal.ValidFrom, id)
			}
			after = append(after, iv)
		}
	}
	if len(before) == 0 || len(after) == 0 {
		c.t.Errorf("books with an order of %s before %s: %v; books from %s on: %v; want some of each", id, removal.ValidFrom, before, removal.ValidFrom, after)
	}
	c.logf("books with an order of %s before its removal's interval %s: %v; books from then on, none with it: %v", id, removal.ValidFrom, before, after)
	for _, m := range c.members() {
		for iv, traders := range ledgerTrades(c.t, filepath.Join(c.gateways[m].dataDir, "ledger")) {
			if start, _ := market.ParseInterval(iv); !start.Before(removal.Start()) && traders[id] {
				c.t.Errorf("%s's ledger: a trade of %s in %s, after its removal from %s", m, id, iv, removal.ValidFrom)
			}
		}
	}
}

// ledgerTrades are the intervals of a ledger's clearing records with
// trades, each with the traders (sellers and buyers) of its trade records.
// A gateway records an interval's clearing, trades and statements when the
// interval's settlement verifies (settlement/record.Entries): an interval
// here is cleared and settled.
func ledgerTrades(t *testing.T, dir string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	if _, err := os.Stat(dir); err != nil {
		return out
	}
	traders := map[string]map[string]bool{}
	_, err := ledger.Scan(dir, 0, func(r ledger.Record) error {
		switch r.Kind {
		case record.KindClearing:
			var c struct {
				Interval string `json:"interval"`
				Trades   int64  `json:"trades"`
			}
			if json.Unmarshal(r.Data, &c) == nil && c.Trades > 0 {
				out[c.Interval] = map[string]bool{}
			}
		case record.KindTrade:
			var tr struct {
				Interval string `json:"interval"`
				Seller   string `json:"seller"`
				Buyer    string `json:"buyer"`
			}
			if json.Unmarshal(r.Data, &tr) == nil {
				if traders[tr.Interval] == nil {
					traders[tr.Interval] = map[string]bool{}
				}
				traders[tr.Interval][tr.Seller], traders[tr.Interval][tr.Buyer] = true, true
			}
		}
		return nil
	})
	if err != nil {
		t.Logf("scan %s: %v", dir, err)
	}
	for iv := range out {
		out[iv] = traders[iv]
	}
	return out
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
