package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// operatorKey signs the test community's roster versions: the operator's
// community key, not any gateway's.
var operatorKey = func() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("community operator"))
	return ed25519.NewKeyFromSeed(seed[:])
}()

func operatorPub() ed25519.PublicKey { return operatorKey.Public().(ed25519.PublicKey) }

// signRoster is version seq of r, valid from from, signed with key.
func signRoster(t *testing.T, key ed25519.PrivateKey, r *protocol.Roster, seq uint64, from time.Time) []byte {
	t.Helper()
	data, err := protocol.EncodeRoster(key, r, seq, from)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rosterOf is community c1's roster of ids, clearers marked.
func rosterOf(t *testing.T, clearers []string, ids ...string) *protocol.Roster {
	t.Helper()
	var ms []protocol.Member
	for _, id := range ids {
		ms = append(ms, protocol.Member{ID: id, PublicKey: testKey(id).Public().(ed25519.PublicKey), Clearer: slices.Contains(clearers, id)})
	}
	r, err := protocol.NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signedCommunity is a community with operator_key set: each gateway has
// its own roster file (dir/<id>/roster-given.json, version 1 of c.roster,
// valid from t0) and state directory (dir/<id>).
type signedCommunity struct {
	*community
	dir string
	v1  []byte
}

func newSignedCommunity(t *testing.T, homes map[string]int64, clearers map[string]config.ClearerRole) *signedCommunity {
	t.Helper()
	return newSignedCommunityOn(t, gatewaytest.NewHub(), homes, clearers)
}

// newSignedCommunityOn is newSignedCommunity on the given hub.
func newSignedCommunityOn(t *testing.T, hub *gatewaytest.Hub, homes map[string]int64, clearers map[string]config.ClearerRole) *signedCommunity {
	t.Helper()
	s := &signedCommunity{dir: t.TempDir()}
	s.community = newCommunityWith(t, hub, homes, clearers, func(c *community, id string, o *Options) {
		if s.v1 == nil {
			s.v1 = signRoster(t, operatorKey, c.roster, 1, t0)
		}
		s.signed(t, id, o, s.v1)
	})
	return s
}

// signed sets up gateway id's options for signed rosters, its roster file
// holding version.
func (s *signedCommunity) signed(t *testing.T, id string, o *Options, version []byte) {
	t.Helper()
	s.writeFile(t, id, version)
	o.Config.OperatorKey = protocol.PublicKeyString(operatorPub())
	o.Config.Roster = s.file(id)
	o.StateDir = filepath.Join(s.dir, id)
	o.Roster = nil
	var err error
	if o.Rosters, err = ReadRosterFile(s.file(id), operatorPub(), "c1"); err != nil {
		t.Fatal(err)
	}
}

func (s *signedCommunity) file(id string) string {
	return filepath.Join(s.dir, id, "roster-given.json")
}

// writeFile replaces gateway id's roster file, as the operator's tool does.
func (s *signedCommunity) writeFile(t *testing.T, id string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.file(id), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// join starts a new home whose roster file is version (which lists it),
// as `p2pgrid join` leaves it.
func (s *signedCommunity) join(t *testing.T, id string, exportW int64, version []byte) *Gateway {
	t.Helper()
	h := &home{exportW: exportW, clock: &s.clock, impWh: 1_000_000, expWh: 500_000}
	o := Options{Config: testConfig(id, config.ClearerNone), Key: testKey(id), MQTT: s.hub.Client(id),
		Devices: []Device{{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: h}},
		Now:     s.now, Version: "test", SyncPolls: true, Observer: s.community}
	s.signed(t, id, &o, version)
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.homes[id], s.gws[id] = h, g
	s.mu.Unlock()
	return g
}

// bookGateways returns the gateways whose orders the retained book of
// interval holds.
func bookGateways(t *testing.T, c *community, interval string) []string {
	t.Helper()
	bm, err := protocol.DecodeBook(c.hub.Retained(c.gws["operator"].Topics().Book(interval)))
	if err != nil {
		t.Fatalf("book of %s: %v", interval, err)
	}
	var out []string
	for _, raw := range bm.Orders {
		o, err := protocol.DecodeOrder(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Gateway)
	}
	slices.Sort(out)
	return out
}

// checkVersion fails unless every gateway holds version seq as its newest,
// keeps it in its state directory, and counted no roster message bad.
func checkVersion(t *testing.T, s *signedCommunity, seq uint64, bad float64) {
	t.Helper()
	for id, g := range s.gws {
		if got := g.rosters.Newest().Seq; got != seq {
			t.Errorf("%s holds roster version %d, want %d", id, got, seq)
		}
		kept, err := os.ReadFile(filepath.Join(s.dir, id, RosterFile))
		if err != nil || !bytes.Equal(kept, g.rosters.Newest().Encode()) {
			t.Errorf("%s keeps %.60q (%v), want its newest version", id, kept, err)
		}
		if got := testutil.ToFloat64(g.metrics.badMessages.WithLabelValues(protocol.KindRoster)); got != bad {
			t.Errorf("%s counted %v bad roster messages, want %v", id, got, bad)
		}
	}
}

// newVersion has the operator's tool write version seq (of ids, the
// operator the clearer) into the clearer's roster file at 12:05, and runs
// the community one tick: every gateway holds it then, and keeps it.
func (s *signedCommunity) newVersion(t *testing.T, seq uint64, from time.Time, ids ...string) []byte {
	t.Helper()
	return s.newVersionAt(t, t0.Add(5*time.Minute), seq, from, ids...)
}

// newVersionAt is newVersion at another time.
func (s *signedCommunity) newVersionAt(t *testing.T, at time.Time, seq uint64, from time.Time, ids ...string) []byte {
	t.Helper()
	s.run(at, 5*time.Second)
	v := signRoster(t, operatorKey, rosterOf(t, []string{"operator"}, ids...), seq, from)
	s.writeFile(t, "operator", v)
	s.run(at.Add(5*time.Second), 5*time.Second)
	checkVersion(t, s, seq, 0)
	return v
}

// newTrio is the signed community of home1 (selling), home2 (buying) and
// the operator (the primary clearer).
func newTrio(t *testing.T) *signedCommunity {
	t.Helper()
	return newSignedCommunity(t, map[string]int64{"home1": 4000, "home2": -2000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
}

// A fourth home, added by a version valid from the next open interval,
// trades from that interval on, on every gateway, none restarted: the
// operator's tool rewrites the clearer's roster file, the clearer takes
// it at its next tick and publishes it, the others take it from the
// roster topic.
func TestRosterAddsAHomeLive(t *testing.T) {
	s := newTrio(t)
	// At 12:05 (the open interval is 12:15), valid from the one after.
	v2 := s.newVersion(t, 2, t0.Add(30*time.Minute), "home1", "home2", "home3", "operator")
	home3 := s.join(t, "home3", -1500, v2) // the operator's tool wrote its roster file
	checkVersion(t, s, 2, 0)
	if got := s.hub.Retained(s.gws["operator"].Topics().Roster()); !bytes.Equal(got, v2) {
		t.Errorf("retained roster %.80q, want version 2", got)
	}

	s.run(t0.Add(45*time.Minute), 5*time.Second)
	if got := bookGateways(t, s.community, "2026-11-22T12:15Z"); !slices.Equal(got, []string{"home1", "home2"}) {
		t.Errorf("book of 12:15 (before home3's version): orders of %v, want home1 and home2", got)
	}
	if got := bookGateways(t, s.community, "2026-11-22T12:30Z"); !slices.Equal(got, []string{"home1", "home2", "home3"}) {
		t.Errorf("book of 12:30: orders of %v, want home1, home2 and home3", got)
	}
	for _, interval := range []string{"2026-11-22T12:15Z", "2026-11-22T12:30Z"} {
		got := s.verified[interval]
		if len(got) != 4 {
			t.Errorf("%s verified by %v, want all 4", interval, got)
		}
		for gw, err := range got {
			if err != nil {
				t.Errorf("%s: %s: %v", interval, gw, err)
			}
		}
	}
	// home3 placed no order for, and published no figures of, 12:15,
	// where it is no member: nothing of it was rejected.
	if got := testutil.ToFloat64(home3.metrics.ordersSkipped.WithLabelValues("not_member")); got != 1 {
		t.Errorf("home3 skipped %v intervals as not a member, want 1 (12:15)", got)
	}
	op := s.gws["operator"]
	if got := testutil.ToFloat64(op.metrics.ordersRejected.WithLabelValues(string(protocol.RejectForged))); got != 0 {
		t.Errorf("the clearer rejected %v orders as forged, want 0", got)
	}
	if got := testutil.ToFloat64(op.metrics.badMessages.WithLabelValues(protocol.KindMetered)); got != 0 {
		t.Errorf("the clearer rejected %v metered figures, want 0", got)
	}
	if h := home3.Health(); h.RosterVersion != 2 {
		t.Errorf("home3's health says roster version %d, want 2", h.RosterVersion)
	}
}

// A home removed from 12:30 on: its order for 12:15 is in the book and
// its figures in the settlement, its order for 12:30 is rejected and
// counted, and the others clear and verify 12:30 without it.
func TestRosterRemovesAHome(t *testing.T) {
	s := newSignedCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	s.newVersion(t, 2, t0.Add(30*time.Minute), "home1", "home3", "operator")
	s.run(t0.Add(27*time.Minute), 5*time.Second)

	// home2 knows it is out, and orders nothing for 12:30; an order it
	// signs all the same (old software) is rejected.
	if own := s.gws["home2"].OwnOrder("2026-11-22T12:30Z"); own != nil {
		t.Errorf("home2 placed an order for 12:30, from which it is removed: %s", own)
	}
	op := s.gws["operator"]
	raw, err := protocol.SignOrder(testKey("home2"), "c1", "2026-11-22T12:30Z", "home2", auction.Buy, 400, 250_000, op.market)
	if err != nil {
		t.Fatal(err)
	}
	s.hub.Client("home2").Publish(context.Background(), op.Topics().Orders("home2"), raw, true)
	if got := testutil.ToFloat64(op.metrics.ordersRejected.WithLabelValues(string(protocol.RejectForged))); got != 1 {
		t.Errorf("home2's order for 12:30: %v rejected as forged, want 1", got)
	}

	s.run(t0.Add(45*time.Minute), 5*time.Second)
	if got := bookGateways(t, s.community, "2026-11-22T12:15Z"); !slices.Equal(got, []string{"home1", "home2", "home3"}) {
		t.Errorf("book of 12:15 (before the removal): orders of %v, want home1, home2 and home3", got)
	}
	if got := bookGateways(t, s.community, "2026-11-22T12:30Z"); !slices.Equal(got, []string{"home1", "home3"}) {
		t.Errorf("book of 12:30: orders of %v, want home1 and home3", got)
	}
	for gw, err := range s.verified["2026-11-22T12:30Z"] {
		if err != nil {
			t.Errorf("12:30: %s: %v", gw, err)
		}
	}
	if n := len(s.verified["2026-11-22T12:30Z"]); n != 4 {
		t.Errorf("12:30 verified by %d gateways, want 4", n)
	}
	if meteredOf(t, s.community, "2026-11-22T12:15Z", "home2") == nil {
		t.Error("the settlement of 12:15 lacks home2's figures: it was a member then")
	}
	if got := testutil.ToFloat64(s.gws["home2"].metrics.ordersSkipped.WithLabelValues("not_member")); got != 2 {
		t.Errorf("home2 skipped %v intervals as not a member, want 2 (12:30 and 12:45)", got)
	}
}

// Forged, older, unsigned, wrong-community and malformed versions on the
// roster topic are rejected, counted by reason, and change nothing; so
// are a forged version and one valid from a closed gate in the roster
// file.
func TestRosterRejectsBadVersions(t *testing.T) {
	s := newTrio(t)
	members := []string{"home1", "home2", "operator"}
	v2 := s.newVersion(t, 2, t0.Add(15*time.Minute), members...)

	withHome9 := rosterOf(t, []string{"operator"}, append(members, "home9")...)
	v3 := signRoster(t, operatorKey, withHome9, 3, t0.Add(30*time.Minute))
	unsigned := append(v3[:bytes.Index(v3, []byte(`,"sig":`))], '}')
	c2, err := protocol.NewRoster("c2", withHome9.Gateways)
	if err != nil {
		t.Fatal(err)
	}
	intruder := s.hub.Client("intruder")
	topic := s.gws["home1"].Topics().Roster()
	for _, msg := range [][]byte{
		signRoster(t, testKey("intruder"), withHome9, 3, t0.Add(30*time.Minute)), // forged
		s.v1, // older
		unsigned,
		signRoster(t, operatorKey, c2, 3, t0.Add(30*time.Minute)), // wrong community
		[]byte(`{"v":1}`),      // malformed
		s.roster.Encode(),      // a plain roster: malformed
		[]byte(`not a roster`), // malformed
	} {
		intruder.Publish(context.Background(), topic, msg, true)
	}
	want := map[protocol.RejectReason]float64{protocol.RejectForged: 1, protocol.RejectReplayed: 1, protocol.RejectUnsigned: 1,
		protocol.RejectWrongCommunity: 1, protocol.RejectMalformed: 3}
	for id, g := range s.gws {
		for reason, n := range want {
			if got := testutil.ToFloat64(g.metrics.rosterRejected.WithLabelValues(string(reason))); got != n {
				t.Errorf("%s: %v roster versions rejected as %s, want %v", id, got, reason, n)
			}
		}
		if _, ok := g.rosters.At(t0.Add(time.Hour)).Key("home9"); ok {
			t.Errorf("%s: home9 is a member", id)
		}
	}
	s.run(t0.Add(5*time.Minute+10*time.Second), 5*time.Second)
	checkVersion(t, s, 2, 7)
	// At its next tick the clearer put version 2 back over the junk retained.
	if got := s.hub.Retained(topic); !bytes.Equal(got, v2) {
		t.Errorf("retained roster %.80q, want version 2 back", got)
	}

	// In the clearer's roster file: a forged version, then (at 12:14, the
	// gate of 12:15 closed) one valid from 12:15.
	op := s.gws["operator"]
	before := testutil.ToFloat64(op.metrics.rosterRejected.WithLabelValues(string(protocol.RejectForged)))
	s.writeFile(t, "operator", signRoster(t, testKey("intruder"), withHome9, 3, t0.Add(30*time.Minute)))
	s.run(t0.Add(5*time.Minute+15*time.Second), 5*time.Second)
	if got := testutil.ToFloat64(op.metrics.rosterRejected.WithLabelValues(string(protocol.RejectForged))); got != before+1 {
		t.Errorf("a forged roster file: %v rejected as forged, want %v", got, before+1)
	}
	s.run(t0.Add(14*time.Minute), 5*time.Second)
	s.writeFile(t, "operator", signRoster(t, operatorKey, withHome9, 3, t0.Add(15*time.Minute)))
	s.run(t0.Add(14*time.Minute+5*time.Second), 5*time.Second)
	if got := testutil.ToFloat64(op.metrics.rosterRejected.WithLabelValues(string(protocol.RejectLate))); got != 1 {
		t.Errorf("a roster file valid from a closed gate: %v rejected as late, want 1", got)
	}
	checkVersion(t, s, 2, 7)
	if got := s.hub.Retained(topic); !bytes.Equal(got, v2) {
		t.Errorf("retained roster %.80q after the bad files, want version 2", got)
	}
}

// A restarted gateway starts from the newest version it kept, not from
// its older roster file, with the file's version still governing the
// intervals before; a kept copy that does not verify is ignored.
func TestRosterRestartStartsFromTheKeptVersion(t *testing.T) {
	s := newTrio(t)
	s.newVersion(t, 2, t0.Add(30*time.Minute), "home1", "home2", "home3", "operator")
	// The broker forgets the retained roster: only the kept copy has it.
	s.hub.Client("broker").Publish(context.Background(), s.gws["home1"].Topics().Roster(), nil, true)

	restart := func() *Gateway {
		t.Helper()
		old := s.gws["home1"]
		o := Options{SyncPolls: true, Config: old.cfg, Key: testKey("home1"), MQTT: s.hub.Client("home1-restarted"), Now: s.now}
		s.signed(t, "home1", &o, s.v1) // its roster file is still version 1
		g, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := restart()
	if got := g.rosters.Newest().Seq; got != 2 {
		t.Fatalf("restarted on version %d, want the kept version 2", got)
	}
	if _, ok := g.rosters.At(t0.Add(30 * time.Minute)).Key("home3"); !ok {
		t.Error("home3 is not a member of 12:30 after the restart")
	}
	if _, ok := g.rosters.At(t0.Add(15 * time.Minute)).Key("home3"); ok {
		t.Error("home3 is a member of 12:15 after the restart: version 1 no longer governs it")
	}

	kept := filepath.Join(s.dir, "home1", RosterFile)
	if err := os.WriteFile(kept, signRoster(t, testKey("intruder"), rosterOf(t, []string{"operator"}, "home1", "home9", "operator"), 9, t0.Add(30*time.Minute)), 0o644); err != nil {
		t.Fatal(err)
	}
	g = restart()
	if got := g.rosters.Newest().Seq; got != 1 {
		t.Errorf("restarted on version %d with a forged kept copy, want the roster file's version 1", got)
	}
	if data, _ := os.ReadFile(kept); !bytes.Equal(data, s.v1) {
		t.Errorf("kept copy after the restart: %.60q, want version 1 in place of the forged one", data)
	}
}

// The roster file must be of the kind operator_key says, and signed by
// the operator; errors say what to do.
func TestReadRosterFile(t *testing.T) {
	dir := t.TempDir()
	plain := rosterOf(t, []string{"operator"}, "home1", "operator")
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	plainFile := write("plain.json", plain.Encode())
	signedFile := write("signed.json", signRoster(t, operatorKey, plain, 1, t0))
	if h, err := ReadRosterFile(plainFile, nil, "c1"); err != nil || !h.Fixed() {
		t.Errorf("a plain roster without operator_key: %v", err)
	}
	if h, err := ReadRosterFile(signedFile, operatorPub(), "c1"); err != nil || h.Fixed() || h.Newest().Seq != 1 {
		t.Errorf("a signed roster with operator_key: %v", err)
	}
	for _, c := range []struct {
		name, path string
		op         ed25519.PublicKey
		community  string
		want       string
	}{
		{"plain with operator_key", plainFile, operatorPub(), "c1", "a plain roster, but operator_key is set"},
		{"signed without operator_key", signedFile, nil, "c1", "operator_key is not set"},
		{"another operator", signedFile, testKey("intruder").Public().(ed25519.PublicKey), "c1", "forged"},
		{"another community", signedFile, operatorPub(), "c2", "wrong_community"},
	} {
		if _, err := ReadRosterFile(c.path, c.op, c.community); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// The gateway refuses a plain roster with operator_key set.
	cfg := testConfig("home1", config.ClearerNone)
	cfg.OperatorKey = protocol.PublicKeyString(operatorPub())
	if _, err := New(Options{Config: cfg, Key: testKey("home1"), Roster: plain, MQTT: gatewaytest.NewHub().Client("home1")}); err == nil ||
		!strings.Contains(err.Error(), "operator_key") {
		t.Errorf("a plain roster with operator_key: %v", err)
	}
}

// On a hub that delivers on goroutines, as gateway/mqtt does, a new
// version taken from the roster topic while the gateways tick and verify
// (what -race needs to see) reaches every gateway, and 12:30 clears with
// the added home's order.
func TestRosterAddsAHomeConcurrently(t *testing.T) {
	hub := gatewaytest.NewConcurrentHub()
	t.Cleanup(hub.Close)
	s := newSignedCommunityOn(t, hub, map[string]int64{"home1": 4000, "home2": -2000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	v2 := s.newVersion(t, 2, t0.Add(30*time.Minute), "home1", "home2", "home3", "operator")
	s.join(t, "home3", -1500, v2)
	hub.Wait()
	s.run(t0.Add(29*time.Minute), 5*time.Second)
	checkVersion(t, s, 2, 0)
	if got := bookGateways(t, s.community, "2026-11-22T12:30Z"); !slices.Equal(got, []string{"home1", "home2", "home3"}) {
		t.Errorf("book of 12:30: orders of %v, want home1, home2 and home3", got)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for gw, err := range s.verified["2026-11-22T12:30Z"] {
		if err != nil {
			t.Errorf("12:30: %s: %v", gw, err)
		}
	}
}

// A home removed from the open interval on, after its order for it was
// accepted: the clearer leaves the order out of the book (counted as
// forged), and every gateway verifies the book against the new version.
func TestRosterRemovesAHomeFromTheOpenInterval(t *testing.T) {
	s := newSignedCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	// At 12:10 the homes have ordered for 12:15, whose gate is open till 12:13.
	s.newVersionAt(t, t0.Add(10*time.Minute), 2, t0.Add(15*time.Minute), "home1", "home3", "operator")
	if s.gws["home2"].OwnOrder("2026-11-22T12:15Z") == nil {
		t.Fatal("home2 placed no order for 12:15 before its removal: the test tests nothing")
	}
	s.run(t0.Add(20*time.Minute), 5*time.Second)
	if got := bookGateways(t, s.community, "2026-11-22T12:15Z"); !slices.Equal(got, []string{"home1", "home3"}) {
		t.Errorf("book of 12:15: orders of %v, want home1 and home3", got)
	}
	op := s.gws["operator"]
	if got := testutil.ToFloat64(op.metrics.ordersRejected.WithLabelValues(string(protocol.RejectForged))); got != 1 {
		t.Errorf("%v orders rejected as forged, want 1 (home2's, left out of the book)", got)
	}
	verified := s.verified["2026-11-22T12:15Z"]
	for gw, err := range verified {
		if err != nil {
			t.Errorf("12:15: %s: %v", gw, err)
		}
	}
	if len(verified) != 4 {
		t.Errorf("12:15 verified by %v, want all 4", verified)
	}
}
