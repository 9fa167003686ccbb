package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testclock"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement/influx"
	"github.com/p2pgrid/p2pgrid/settlement/influx/influxtest"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// The fault suite's shape: one-minute intervals on a clock six times as
// fast as the wall clock (an interval every 10 s), a community of an
// operator (primary clearer, no meters), home1 (standby clearer) and four
// more homes, for faultIntervals intervals.
const (
	faultSpeed      = 6
	faultInterval   = time.Minute
	faultGate       = 15 * time.Second
	faultGrace      = 10 * time.Second
	faultPoll       = 5 * time.Second
	faultIntervals  = 19
	faultHomes      = 5
	faultSkew       = 7 * time.Second // home4's clock is this far ahead
	faultSeedEnv    = "FAULTS_SEED"
	faultReportEnv  = "FAULTS_REPORT"
	faultRandomKill = 20 // besides the targeted ones
)

// TestFaults runs the community as separate `p2pgrid gateway` processes
// over a real Mosquitto (the shipped configuration) and a real InfluxDB,
// with simulated homes served by a `p2pgrid sim` process, all on one
// accelerated clock, and injects faults: SIGKILLs at random (seeded)
// moments of random gateways, the primary clearer killed right after gate
// closure, the standby killed, both clearers down for more than an
// interval, a broker restart in the middle of an interval, InfluxDB down
// for several intervals, a Modbus device that stops answering and comes
// back, a clock skewed by several seconds, and a full disk under one
// gateway's data directory. Then it checks what must hold whatever
// happened, and prints the figures (go test -v, or into the file $FAULTS_REPORT).
//
// FAULTS_SEED=N repeats a run's schedule (which gateway is killed
// when, for how long); the processes' own timing still varies.
func TestFaults(t *testing.T) {
	testtool.Integration(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(faultSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", faultSeedEnv, s, err)
		}
	}
	t.Logf("fault suite seed %d (repeat with %s=%d)", seed, faultSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	f := newFaultRig(t, seed)
	defer func() {
		if t.Failed() {
			t.Logf("seed %d: repeat with %s=%d go test -run TestFaults -v ./cmd/p2pgrid", seed, faultSeedEnv, seed)
		}
	}()
	f.startAll()
	sched := f.schedule(rng)
	f.run(sched)
	f.stopAll()
	f.check()
}

type span struct{ from, to time.Time } // wall clock; to zero while running

type faultProc struct {
	name    string
	args    []string
	env     []string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	expected bool // the harness killed or stopped it
	up       []span
	starts   int
	kills    int
	crashes  int
	stopping bool
}

type faultRig struct {
	t       *testing.T
	seed    uint64
	bin     string
	dir     string
	clock   *testclock.Clock
	broker  *mqtttest.Mosquitto
	influx  *influxtest.Server
	roster  string
	procs   map[string]*faultProc
	order   []string // gateway ids
	homeURL map[string]string
	proxy   *silencer // home3's Modbus TCP, which the test silences
	diskDir string    // home5's data directory, on a small tmpfs
	watch   *faultWatch

	// what the schedule did, in wall-clock time
	mu        sync.Mutex
	events    []string
	silence   span
	influxOff span
	diskFull  span
	brokerOff span
	both      span // both clearers down
}

func newFaultRig(t *testing.T, seed uint64) *faultRig {
	f := &faultRig{t: t, seed: seed, dir: t.TempDir(), procs: map[string]*faultProc{}, homeURL: map[string]string{}}
	f.bin = filepath.Join(f.dir, "p2pgrid")
	if out, err := exec.Command("go", "build", "-o", f.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f.order = []string{"operator"}
	for i := 1; i <= faultHomes; i++ {
		f.order = append(f.order, fmt.Sprintf("home%d", i))
	}

	// home5's data directory on a 4 MiB tmpfs, to fill up later.
	f.diskDir = filepath.Join(f.dir, "home5-disk")
	os.MkdirAll(f.diskDir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", f.diskDir).CombinedOutput(); err != nil {
		t.Fatalf("the full-disk fault needs a small filesystem: mount -t tmpfs -o size=4m failed (%v: %s); run as root or with CAP_SYS_ADMIN", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", f.diskDir).Run() })

	// The clock: an interval boundary a few seconds from now.
	epoch := time.Now().UTC().Truncate(24 * time.Hour).Add(15 * time.Hour)
	f.clock = &testclock.Clock{Epoch: epoch, Origin: time.Now().Add(4 * time.Second).Round(0), Speed: faultSpeed}

	// Mosquitto as shipped, with a user block for the standby clearer
	// too, and a login per gateway.
	acl, err := os.ReadFile(mqtttest.ShippedACL(t))
	if err != nil {
		t.Fatal(err)
	}
	acl = append(acl, "\n"+mqtttest.ClearerBlock(t, "home1")...)
	aclFile := filepath.Join(f.dir, "acl")
	os.WriteFile(aclFile, acl, 0o644)
	users := map[string]string{"watcher": "pw-watcher"}
	for _, id := range f.order {
		users[id] = "pw-" + id
	}
	f.broker = mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, ACLFile: aclFile})

	f.influx = influxtest.Start(t)
	for _, db := range []string{"p2pgrid_operator", "p2pgrid_home1"} {
		f.influx.InfluxQL("CREATE DATABASE " + db)
	}

	// The simulated homes, one TCP port each, on the shared clock.
	base := consecutivePorts(t, faultHomes)
	sim := &faultProc{name: "sim", logPath: filepath.Join(f.dir, "sim.log"), args: []string{"sim",
		"--homes", strconv.Itoa(faultHomes), "--listen", fmt.Sprintf("127.0.0.1:%d", base), "--seed", strconv.FormatUint(seed%1000+1, 10),
		"--speed", strconv.Itoa(faultSpeed), "--start", epoch.Format(time.RFC3339), "--clock-origin", strconv.FormatInt(f.clock.Origin.UnixNano(), 10),
		"--status", "0"}}
	f.procs["sim"] = sim
	f.start(sim)
	for i := 1; i <= faultHomes; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", base+i-1)
		waitListening(t, addr)
		f.homeURL[fmt.Sprintf("home%d", i)] = "tcp://" + addr
	}
	f.proxy = newSilencer(t, strings.TrimPrefix(f.homeURL["home3"], "tcp://"))
	f.homeURL["home3"] = "tcp://" + f.proxy.addr

	// Keys, roster, configurations.
	var members []protocol.Member
	for _, id := range f.order {
		code, pub, errOut := runCLI(t, "", "key", "--data", f.dataDir(id))
		if code != 0 {
			t.Fatalf("key %s: %s", id, errOut)
		}
		k, err := protocol.ParsePublicKey(strings.TrimSpace(pub))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, protocol.Member{ID: id, PublicKey: k, Clearer: id == "operator" || id == "home1"})
	}
	r, err := protocol.NewRoster("c1", members)
	if err != nil {
		t.Fatal(err)
	}
	f.roster = filepath.Join(f.dir, "roster.json")
	os.WriteFile(f.roster, r.Encode(), 0o644)
	for i, id := range f.order {
		cfgFile := filepath.Join(f.dir, id+".yaml")
		os.WriteFile(cfgFile, []byte(f.config(id, i)), 0o644)
		args := []string{"gateway", "--config", cfgFile, "--log-format", "json",
			"--clock-epoch", epoch.Format(time.RFC3339), "--clock-origin", strconv.FormatInt(f.clock.Origin.UnixNano(), 10),
			"--clock-speed", strconv.Itoa(faultSpeed)}
		if id == "home4" {
			args = append(args, "--clock-skew", faultSkew.String())
		}
		f.procs[id] = &faultProc{name: id, args: args, logPath: filepath.Join(f.dir, id+".log"),
			env: []string{"P2PGRID_MQTT_PASSWORD=pw-" + id}}
	}
	f.watch = newFaultWatch(t, f.broker.URL)
	t.Cleanup(func() {
		for _, p := range f.procs {
			f.kill(p, false)
		}
		if t.Failed() {
			for _, id := range f.order {
				t.Logf("---- %s log (tail) ----\n%s", id, tail(f.procs[id].logPath, 40))
			}
		}
	})
	return f
}

func (f *faultRig) dataDir(id string) string {
	if id == "home5" {
		return filepath.Join(f.diskDir, "data")
	}
	return filepath.Join(f.dir, id)
}

func (f *faultRig) config(id string, i int) string {
	var b strings.Builder
	clearer := ""
	switch id {
	case "operator":
		clearer = "primary"
	case "home1":
		clearer = "standby"
	}
	fmt.Fprintf(&b, "gateway: %s\ncommunity: c1\nclearer: %q\ndata_dir: %s\nhttp: \"\"\nroster: %s\n", id, clearer, f.dataDir(id), f.roster)
	fmt.Fprintf(&b, "mqtt:\n  broker: %s\n  username: %s\n  client_id: %s\n  keepalive: 5s\n", f.broker.URL, id, id)
	if url := f.homeURL[id]; url != "" {
		fmt.Fprintf(&b, "devices:\n  - {name: grid, url: %q, unit: 1, profile: sdm630, role: grid, poll: %s}\n  - {name: pv, url: %q, unit: 2, profile: sunspec, role: pv, poll: %s}\n",
			url, faultPoll, url, faultPoll)
	}
	fmt.Fprintf(&b, "market:\n  interval: %s\n  gate_closure: %s\n  grace: %s\n  price_floor: 0.05\n  price_cap: 0.30\n  min_trade_kwh: 0.001\n",
		faultInterval, faultGate, faultGrace)
	fmt.Fprintf(&b, "policy:\n  min_sell_price: %s\n  max_buy_price: %s\n", fmt.Sprintf("0.%02d", 6+(i%4)*2), fmt.Sprintf("0.%02d", 28-(i%4)*3))
	b.WriteString("telemetry:\n  enabled: false\n")
	if clearer != "" {
		fmt.Fprintf(&b, "influx:\n  url: %s\n  bucket: p2pgrid_%s/\n", f.influx.URL, id)
	}
	return b.String()
}

// wallAt is the wall-clock moment the shared clock reads epoch + d.
func (f *faultRig) wallAt(d time.Duration) time.Time { return f.clock.Origin.Add(f.clock.Real(d)) }

// simAt is the shared clock's time at wall-clock moment w.
func (f *faultRig) simAt(w time.Time) time.Time {
	return f.clock.Epoch.Add(time.Duration(float64(w.Round(0).Sub(f.clock.Origin)) * f.clock.Speed))
}

// stamp sets *at, one end of a fault's span, to now, under f.mu.
func (f *faultRig) stamp(at *time.Time) {
	f.mu.Lock()
	*at = time.Now()
	f.mu.Unlock()
}

func (f *faultRig) logf(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := time.Now()
	f.events = append(f.events, fmt.Sprintf("%s  %s", f.simAt(w).Format("15:04:05"), fmt.Sprintf(format, a...)))
}

func (f *faultRig) start(p *faultProc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil || p.stopping {
		return
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Error(err)
		return
	}
	cmd := exec.Command(f.bin, p.args...)
	// The gateway refuses P2PGRID_ variables it does not know: only the
	// process's own ones.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2PGRID_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		f.t.Errorf("start %s: %v", p.name, err)
		return
	}
	p.cmd, p.done, p.expected = cmd, make(chan struct{}), false
	p.starts++
	p.up = append(p.up, span{from: time.Now()})
	done := p.done
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.up[len(p.up)-1].to = time.Now()
		p.cmd = nil
		crashed := !p.expected && !p.stopping
		if crashed {
			p.crashes++
		}
		p.mu.Unlock()
		close(done)
		if crashed {
			// A supervisor (systemd's Restart=always) starts it again.
			f.logf("%s exited by itself (%v); restarting it in 1 s", p.name, err)
			time.Sleep(time.Second)
			f.start(p)
		}
	}()
}

// kill sends SIGKILL (count: a fault of the suite) and waits for the exit.
func (f *faultRig) kill(p *faultProc, count bool) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return false
	}
	p.expected = true
	if count {
		p.kills++
	}
	p.mu.Unlock()
	cmd.Process.Kill()
	<-done
	return true
}

func (f *faultRig) startAll() {
	for _, id := range f.order {
		f.start(f.procs[id])
	}
}

// stopAll stops every gateway with SIGTERM (each drains to InfluxDB on
// the way out) and then the simulator.
func (f *faultRig) stopAll() {
	var wg sync.WaitGroup
	for _, id := range f.order {
		p := f.procs[id]
		p.mu.Lock()
		p.stopping = true
		cmd, done := p.cmd, p.done
		p.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				f.t.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
				cmd.Process.Kill()
				<-done
			}
		}()
	}
	wg.Wait()
	sim := f.procs["sim"]
	sim.mu.Lock()
	sim.stopping = true
	sim.mu.Unlock()
	f.kill(sim, false)
}

// A faultEvent runs at a wall-clock moment.
type faultEvent struct {
	at   time.Time
	what string
	do   func()
}

// schedule lays out the run, interval k starting at epoch + k minutes:
// warm-up in intervals 0-1; faults in 2-15; faults over from 16, to see
// trading resume by itself.
func (f *faultRig) schedule(rng *rand.Rand) []faultEvent {
	iv := func(k float64) time.Duration { return time.Duration(k * float64(faultInterval)) }
	// gc is gate closure of interval k (it closes in interval k-1).
	gc := func(k int) time.Duration { return iv(float64(k)) - faultGate }
	var ev []faultEvent
	add := func(at time.Duration, what string, do func()) {
		ev = append(ev, faultEvent{at: f.wallAt(at), what: what, do: do})
	}
	killFor := func(id string, down time.Duration, why string) func() {
		return func() {
			p := f.procs[id]
			if !f.kill(p, true) {
				f.logf("%s: %s was not running", why, id)
				return
			}
			f.logf("SIGKILL %s (%s), restart in %s", id, why, down.Round(time.Millisecond))
			time.AfterFunc(down, func() { f.start(p); f.logf("restarted %s", id) })
		}
	}
	// The primary right after gate closure of interval 4: the standby
	// must clear it.
	add(gc(4)+time.Second, "kill primary after gate closure", killFor("operator", 3*time.Second, "primary, right after gate closure"))
	// The standby, a little before its turn on interval 7 (the primary
	// clears it).
	add(gc(7)+faultGrace/2, "kill standby", killFor("home1", 2*time.Second, "standby, before its turn"))
	// Both clearers, right after gate closure of interval 13, for more
	// than an interval.
	add(gc(13)+time.Second, "kill both clearers", func() {
		f.stamp(&f.both.from)
		killFor("operator", f.clock.Real(iv(1.5)), "both clearers down")()
		killFor("home1", f.clock.Real(iv(1.5)), "both clearers down")()
		time.AfterFunc(f.clock.Real(iv(1.5)), func() {
			f.stamp(&f.both.to)
		})
	})
	// Random kills of random gateways, clearers included, in intervals
	// 2-15, down for 1-30 s of the clock.
	for range faultRandomKill {
		at := iv(2) + time.Duration(rng.Int64N(int64(iv(14))))
		id := f.order[rng.IntN(len(f.order))]
		down := f.clock.Real(time.Second + time.Duration(rng.Int64N(int64(29*time.Second))))
		add(at, "random kill", killFor(id, down, "random"))
	}
	// The broker restarts in the middle of interval 5.
	add(iv(5.5), "broker restart", func() {
		f.stamp(&f.brokerOff.from)
		f.broker.Stop()
		f.logf("Mosquitto stopped (SIGTERM)")
		time.Sleep(2 * time.Second)
		f.broker.Restart()
		f.stamp(&f.brokerOff.to)
		f.logf("Mosquitto restarted")
	})
	// InfluxDB down from interval 7 to the middle of 10.
	add(iv(7), "influx down", func() {
		f.influx.Stop()
		f.stamp(&f.influxOff.from)
		f.logf("InfluxDB stopped")
	})
	add(iv(10.5), "influx up", func() {
		f.influx.Start()
		f.stamp(&f.influxOff.to)
		f.logf("InfluxDB started")
	})
	// home3's Modbus devices stop answering for 2.6 intervals.
	add(iv(9.2), "modbus silent", func() {
		f.proxy.silent(true)
		f.stamp(&f.silence.from)
		f.logf("home3's Modbus TCP stops answering")
	})
	add(iv(11.8), "modbus back", func() {
		f.proxy.silent(false)
		f.stamp(&f.silence.to)
		f.logf("home3's Modbus TCP answers again")
	})
	// home5's data directory fills up in interval 12, for two intervals.
	filler := filepath.Join(f.diskDir, "filler")
	add(iv(12), "disk full", func() {
		fillDisk(filler)
		f.stamp(&f.diskFull.from)
		f.logf("home5's data directory is full")
	})
	add(iv(14), "disk freed", func() {
		os.Remove(filler)
		f.stamp(&f.diskFull.to)
		f.logf("home5's data directory has room again")
	})
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].at.Before(ev[j].at) })
	return ev
}

// run plays the schedule, then lets the community run until interval
// faultIntervals has been settled.
func (f *faultRig) run(ev []faultEvent) {
	var wg sync.WaitGroup
	for _, e := range ev {
		time.Sleep(time.Until(e.at))
		wg.Add(1)
		go func() { defer wg.Done(); e.do() }()
	}
	wg.Wait()
	end := f.wallAt(time.Duration(faultIntervals)*faultInterval + faultGate + 2*faultGrace)
	time.Sleep(time.Until(end))
}

// fillDisk writes path until the filesystem is full.
func fillDisk(path string) {
	fh, err := os.Create(path)
	if err != nil {
		return
	}
	defer fh.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := fh.Write(buf); err != nil {
			break
		}
	}
	fh.Sync()
}

// ---- what the suite checks afterwards ----

type ledgerView struct {
	intervals map[string]bool
	trades    map[string]map[string]string // interval -> trade id -> "kwh@price seller>buyer"
	nTrades   int
}

func readLedger(t *testing.T, dir string) *ledgerView {
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Errorf("open ledger %s: %v", dir, err)
		return nil
	}
	defer l.Close()
	v := &ledgerView{intervals: map[string]bool{}, trades: map[string]map[string]string{}}
	for from := uint64(1); ; {
		recs, err := l.Read(from, 1000)
		if err != nil {
			t.Errorf("read ledger %s: %v", dir, err)
			return v
		}
		if len(recs) == 0 {
			return v
		}
		for _, r := range recs {
			switch r.Kind {
			case record.KindInterval:
				v.intervals[r.Key] = true
			case record.KindTrade:
				var d struct{ Interval, ID, Seller, Buyer, KWh, Price string }
				if err := json.Unmarshal(r.Data, &d); err != nil {
					t.Errorf("%s: trade record %d: %v", dir, r.Seq, err)
					continue
				}
				if v.trades[d.Interval] == nil {
					v.trades[d.Interval] = map[string]string{}
				}
				v.trades[d.Interval][d.ID] = fmt.Sprintf("%s@%s %s>%s", d.KWh, d.Price, d.Seller, d.Buyer)
				v.nTrades++
			}
			from = r.Seq + 1
		}
	}
}

// upOver reports whether p ran without a break over [a, b] (wall clock).
func upOver(p *faultProc, a, b time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.up {
		if !s.from.After(a) && (s.to.IsZero() || !s.to.Before(b)) {
			return true
		}
	}
	return false
}

// subscriptions are the times a gateway's log says it had subscribed
// (daemon's "gateway connected and subscribed", once a start), in order.
func subscriptions(t *testing.T, logPath string) []time.Time {
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, line := range strings.Split(string(b), "\n") {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "gateway connected and subscribed" {
			out = append(out, l.Time)
		}
	}
	return out
}

// subscribedOver reports whether p was up over [a, b] and had subscribed,
// in that run, by a.
func subscribedOver(p *faultProc, subs []time.Time, a, b time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.up {
		if !s.to.IsZero() && s.to.Before(b) {
			continue
		}
		for _, at := range subs {
			if !at.Before(s.from) {
				if !at.After(a) {
					return true
				}
				break
			}
		}
	}
	return false
}

func (f *faultRig) check() {
	t := f.t
	var report strings.Builder
	say := func(format string, a ...any) { fmt.Fprintf(&report, format+"\n", a...) }
	say("fault suite, seed %d (%s=%d repeats the schedule)", f.seed, faultSeedEnv, f.seed)
	say("clock: %s per interval of %s (speed %d), gate closure %s, grace %s, poll %s; home4's clock %+v ahead",
		f.clock.Real(faultInterval), faultInterval, faultSpeed, faultGate, faultGrace, faultPoll, faultSkew)

	// 1. Every ledger verifies.
	views := map[string]*ledgerView{}
	for _, id := range f.order {
		dir := filepath.Join(f.dataDir(id), "ledger")
		out, err := exec.Command(f.bin, "ledger", "verify", dir).CombinedOutput()
		if err != nil {
			t.Errorf("p2pgrid ledger verify %s: %v\n%s", dir, err, out)
		}
		views[id] = readLedger(t, dir)
	}
	if t.Failed() {
		return
	}

	// 2. Every ledger holds the same trades for every interval they share.
	shared, differ := 0, 0
	for i, a := range f.order {
		for _, b := range f.order[i+1:] {
			for iv := range views[a].intervals {
				if !views[b].intervals[iv] {
					continue
				}
				shared++
				if !equalTrades(views[a].trades[iv], views[b].trades[iv]) {
					differ++
					t.Errorf("interval %s: %s holds trades %v, %s holds %v", iv, a, views[a].trades[iv], b, views[b].trades[iv])
				}
			}
		}
	}

	// 3. Every interval that ended while a clearer was up is settled: a
	// clearer that ran over [end - gate closure, end + gate closure +
	// 2 grace] (it heard every gateway's figures, and its turn to settle
	// came) settled it, into its own ledger and every gateway's that ran
	// over the settlement's publication.
	clearers := []string{"operator", "home1"}
	subscribed := map[string][]time.Time{}
	for _, c := range clearers {
		subscribed[c] = subscriptions(t, f.procs[c].logPath)
	}
	var expected, settledAll, unsettled []string
	var bothMissed, lostToDisk, notCleared []string
	for k := 2; k <= faultIntervals-1; k++ {
		start := f.clock.Epoch.Add(time.Duration(k) * faultInterval)
		iv := market.IntervalID(start)
		end := time.Duration(k+1) * faultInterval
		a, b := f.wallAt(end-faultGate), f.wallAt(end+faultGate+2*faultGrace)
		up := false
		for _, c := range clearers {
			up = up || upOver(f.procs[c], a, b)
		}
		if !up {
			bothMissed = append(bothMissed, iv)
			continue
		}
		// An interval whose gate closed while no clearer had been up since
		// before it (and stayed up to the standby's turn) was never cleared:
		// a clearer that starts after gate closure has not seen the whole
		// book and leaves it. There is nothing to settle.
		// A clearer is up, here, from when it had subscribed: one started
		// while the broker was down subscribes only once it is back, and
		// may then be past the gate.
		gate := time.Duration(k)*faultInterval - faultGate
		canClear := false
		for _, c := range clearers {
			canClear = canClear || subscribedOver(f.procs[c], subscribed[c], f.wallAt(gate-time.Second), f.wallAt(gate+faultGrace+time.Second))
		}
		if !canClear {
			notCleared = append(notCleared, iv)
			continue
		}
		expected = append(expected, iv)
		all := true
		for _, id := range f.order {
			if views[id].intervals[iv] {
				continue
			}
			all = false
			late := f.wallAt(end + faultGate + 2*faultGrace + 10*time.Second)
			if id == "home5" && overlaps(f.diskFull, f.wallAt(end-faultGate), late) {
				lostToDisk = append(lostToDisk, iv)
				continue
			}
			if upOver(f.procs[id], f.wallAt(end-faultGate), late) {
				t.Errorf("interval %s ended while a clearer was up, and %s ran throughout its settlement, but its ledger does not hold it", iv, id)
			}
		}
		if all {
			settledAll = append(settledAll, iv)
		}
		if !views["operator"].intervals[iv] && !views["home1"].intervals[iv] {
			unsettled = append(unsettled, iv)
			t.Errorf("interval %s ended while a clearer was up and no clearer's ledger holds it", iv)
		}
	}

	// 4. InfluxDB holds exactly each clearer's ledger trades.
	influxTrades := map[string]int{}
	for _, c := range clearers {
		got := f.influxTrades("p2pgrid_" + c + "/")
		want := map[string]string{}
		for _, m := range views[c].trades {
			for id, s := range m {
				want[id] = strings.Fields(s)[0]
			}
		}
		influxTrades[c] = len(got)
		if !equalTrades(got, want) {
			var missing, extra []string
			for id := range want {
				if got[id] != want[id] {
					missing = append(missing, id)
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					extra = append(extra, id)
				}
			}
			t.Errorf("InfluxDB database p2pgrid_%s: %d trades, its ledger %d; missing or different %v, extra %v", c, len(got), len(want), missing, extra)
		}
	}

	// 5. No order was formed from stale readings: home3 published no order
	// while its meter had been silent for longer than the staleness limit
	// (3 polls), and did before and after.
	staleFrom := f.silence.from.Add(f.clock.Real(3*faultPoll) + time.Second)
	during, _, after := f.watch.ordersOf("home3", staleFrom, f.silence.to)
	_, preSilence, _ := f.watch.ordersOf("home3", f.silence.from, f.silence.from)
	postSilence, _, _ := f.watch.ordersOf("home3", f.silence.to, time.Now())
	if during > 0 {
		t.Errorf("home3 published %d orders while its meter had not answered for over 3 polls", during)
	}
	if preSilence == 0 || postSilence+after == 0 {
		t.Errorf("home3 published %d orders before its meter fell silent and %d after it answered again: the stale check proves nothing", preSilence, postSilence)
	}

	// 6. Trading resumed by itself: the last two intervals, after every
	// fault, are settled in every ledger.
	for k := faultIntervals - 2; k <= faultIntervals-1; k++ {
		iv := market.IntervalID(f.clock.Epoch.Add(time.Duration(k) * faultInterval))
		for _, id := range f.order {
			if !views[id].intervals[iv] {
				t.Errorf("trading did not resume: interval %s (after every fault) is not in %s's ledger", iv, id)
			}
		}
	}
	for _, id := range f.order {
		if n := f.logCount(id, "panic"); n > 0 {
			t.Errorf("%s's log has %d lines with \"panic\"", id, n)
		}
	}

	// The figures.
	kills, crashes, starts := 0, 0, 0
	for _, id := range f.order {
		p := f.procs[id]
		kills += p.kills
		crashes += p.crashes
		starts += p.starts
	}
	say("intervals run: %d (faults in intervals 2-15); SIGKILLs: %d; unplanned exits (restarted by the harness): %d; process starts: %d", faultIntervals, kills, crashes, starts)
	say("%-9s %6s %7s %9s %10s %7s", "GATEWAY", "KILLS", "CRASHES", "INTERVALS", "TRADES", "ORDERS")
	for _, id := range f.order {
		p := f.procs[id]
		say("%-9s %6d %7d %9d %10d %7d", id, p.kills, p.crashes, len(views[id].intervals), views[id].nTrades, f.watch.count(id))
	}
	say("intervals 2-%d that ended while a clearer was up: %d; settled in every ledger: %d; in no clearer's ledger: %d %v",
		faultIntervals-1, len(expected), len(settledAll), len(unsettled), unsettled)
	say("intervals both clearers missed (down at their end or settlement turn): %d %v; of them settled anyway: %d",
		len(bothMissed), bothMissed, countIn(bothMissed, views["operator"], views["home1"]))
	say("intervals never cleared (no clearer subscribed from before their gate closure to the standby's turn): %d %v", len(notCleared), notCleared)
	say("intervals home5 could not record while its disk was full: %d %v", len(lostToDisk), lostToDisk)
	say("ledger pairs x shared intervals compared: %d, differing: %d", shared, differ)
	say("results published: %d, settlements published: %d (as seen by a watcher on the broker)", f.watch.kinds(protocol.KindResult), f.watch.kinds(protocol.KindSettlement))
	say("InfluxDB trades: operator %d (ledger %d), home1 %d (ledger %d)", influxTrades["operator"], views["operator"].nTrades, influxTrades["home1"], views["home1"].nTrades)
	say("home3 orders: before its meter fell silent %d, while stale %d, after it answered %d", preSilence, during, postSilence)
	say("home5 (disk full for %s of wall clock): log lines about ledger appends %d, \"no space left\" %d", f.diskFull.to.Sub(f.diskFull.from).Round(time.Second), f.logCount("home5", "ledger append"), f.logCount("home5", "no space left"))
	say("events:")
	for _, e := range f.events {
		say("  %s", e)
	}
	t.Log("\n" + report.String())
	if p := os.Getenv(faultReportEnv); p != "" {
		os.WriteFile(p, []byte(report.String()), 0o644)
	}
}

// overlaps reports whether s (a finished span) meets [a, b].
func overlaps(s span, a, b time.Time) bool {
	return !s.from.IsZero() && !s.from.After(b) && !s.to.Before(a)
}

func countIn(ivs []string, views ...*ledgerView) int {
	n := 0
	for _, iv := range ivs {
		for _, v := range views {
			if v.intervals[iv] {
				n++
				break
			}
		}
	}
	return n
}

func equalTrades(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// influxTrades reads every trade point back: trade id -> "kwh@price".
func (f *faultRig) influxTrades(bucket string) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := influx.Query(ctx, influx.Options{URL: f.influx.URL, Bucket: bucket}, fmt.Sprintf(`from(bucket: %s)
  |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == "trade" and (r._field == "kwh" or r._field == "price"))`, influx.FluxString(bucket)))
	if err != nil {
		f.t.Errorf("query InfluxDB %s: %v", bucket, err)
		return nil
	}
	kwh, price := map[string]string{}, map[string]string{}
	for _, r := range rows {
		id, _ := r["trade"].(string)
		v, _ := r["_value"].(string)
		switch r["_field"] {
		case "kwh":
			kwh[id] = v
		case "price":
			price[id] = v
		}
	}
	out := map[string]string{}
	for id := range kwh {
		out[id] = kwh[id] + "@" + price[id]
	}
	return out
}

func (f *faultRig) logCount(id, s string) int {
	b, _ := os.ReadFile(f.procs[id].logPath)
	return strings.Count(strings.ToLower(string(b)), strings.ToLower(s))
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- a watcher on the broker ----

type seenOrder struct {
	gateway, interval string
	at                time.Time
}

type faultWatch struct {
	mu     sync.Mutex
	sigs   map[string]bool // orders seen, by signature
	orders []seenOrder
	kind   map[string]map[string]bool
	c      *mqtt.Client
}

func newFaultWatch(t *testing.T, broker string) *faultWatch {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := mqtt.Connect(ctx, mqtt.Options{Broker: broker, ClientID: "watcher", Username: "watcher", Password: "pw-watcher"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w := &faultWatch{sigs: map[string]bool{}, kind: map[string]map[string]bool{}, c: c}
	topics, _ := protocol.NewTopics("c1")
	err = c.Subscribe(topics.All(), func(topic string, p []byte) {
		kind, _, key, err := protocol.ParseTopic(topic)
		if err != nil || len(p) == 0 {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		switch kind {
		case protocol.KindOrders:
			o, err := protocol.DecodeOrder(p)
			if err != nil || w.sigs[string(o.Sig)] {
				return
			}
			w.sigs[string(o.Sig)] = true
			w.orders = append(w.orders, seenOrder{gateway: o.Gateway, interval: o.Interval, at: time.Now()})
		case protocol.KindResult, protocol.KindSettlement:
			if key == "latest" {
				return
			}
			if w.kind[kind] == nil {
				w.kind[kind] = map[string]bool{}
			}
			w.kind[kind][key] = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// ordersOf counts gw's orders first seen in [from, to], before from, after to.
func (w *faultWatch) ordersOf(gw string, from, to time.Time) (in, before, after int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.orders {
		if o.gateway != gw {
			continue
		}
		switch {
		case o.at.Before(from):
			before++
		case o.at.After(to):
			after++
		default:
			in++
		}
	}
	return
}

func (w *faultWatch) count(gw string) int {
	in, b, a := w.ordersOf(gw, time.Time{}, time.Now())
	return in + b + a
}

func (w *faultWatch) kinds(kind string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.kind[kind])
}

// ---- a Modbus TCP line that can stop answering ----

type silencer struct {
	addr   string
	target string
	mu     sync.Mutex
	quiet  bool
}

func newSilencer(t *testing.T, target string) *silencer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &silencer{addr: ln.Addr().String(), target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *silencer) silent(q bool) {
	s.mu.Lock()
	s.quiet = q
	s.mu.Unlock()
}

func (s *silencer) isQuiet() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quiet
}

// serve forwards requests to the device and its answers back, except that
// while quiet it swallows requests: the device does not answer.
func (s *silencer) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", s.target)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(c, up)
	r := bufio.NewReader(c)
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		if s.isQuiet() {
			continue
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
	}
}

// consecutivePorts returns the first of n consecutive free ports.
func consecutivePorts(t *testing.T, n int) int {
	for range 50 {
		base := testtool.FreePort(t)
		ok := true
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

func waitListening(t *testing.T, addr string) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
