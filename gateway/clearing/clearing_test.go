package clearing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
)

var (
	sched = market.Calendar{Interval: 15 * time.Minute, GateClosure: 2 * time.Minute}
	// now is inside interval 12:00; the open delivery interval is 12:15,
	// whose gate closes at 12:13.
	now      = time.Date(2026, 11, 22, 12, 5, 0, 0, time.UTC)
	open     = "2026-11-22T12:15Z"
	gateways = []string{"home1", "home2", "home3", "operator"}
)

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}

type fixture struct {
	roster *protocol.Roster
	market *auction.Market
	c      *Clearer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	var ms []protocol.Member
	for _, g := range gateways {
		ms = append(ms, protocol.Member{ID: g, PublicKey: key(g).Public().(ed25519.PublicKey), Clearer: g == "operator"})
	}
	r, err := protocol.NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	rules := auction.DefaultRules()
	rules.MaxOrderKWh = decimal.NewFromInt(50)
	m, err := auction.NewMarket(rules)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{roster: r, market: m, c: NewClearer("operator", key("operator"), protocol.FixedRosters(r), m, sched)}
}

func (f *fixture) order(t *testing.T, gw, interval string, side auction.Side, wh, microPrice int64) []byte {
	t.Helper()
	raw, err := protocol.SignOrder(key(gw), "c1", interval, gw, side, wh, microPrice, f.market)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestOfferAcceptsAndSeals(t *testing.T) {
	f := newFixture(t)
	s1 := f.order(t, "home1", open, auction.Sell, 2000, 100_000)
	b2 := f.order(t, "home2", open, auction.Buy, 1500, 250_000)
	for _, o := range []struct {
		gw  string
		raw []byte
	}{{"home1", s1}, {"home2", b2}} {
		if gw, iv, err := f.c.Offer(now, o.gw, o.raw); err != nil || gw != o.gw || iv != open {
			t.Fatalf("offer from %s: %s %s %v", o.gw, gw, iv, err)
		}
	}
	if n := f.c.Orders(open); n != 2 {
		t.Fatalf("%d orders collected", n)
	}
	sealed, err := f.c.Seal(open)
	if err != nil {
		t.Fatal(err)
	}
	if !sealed.Cleared.Cleared || sealed.Cleared.Volume != 1500 || f.market.FormatPrice(sealed.Cleared.Price) != "0.1" {
		t.Errorf("cleared %+v", sealed.Cleared)
	}
	again, err := f.c.Seal(open)
	if err != nil || !bytes.Equal(again.Book, sealed.Book) || !bytes.Equal(again.Result, sealed.Result) {
		t.Errorf("sealing twice gave different messages: %v", err)
	}
	// A late order after sealing is rejected and does not change the book.
	if _, _, err := f.c.Offer(now, "home3", f.order(t, "home3", open, auction.Sell, 100, 1)); protocol.ReasonOf(err) != protocol.RejectLate {
		t.Errorf("order after sealing: %v", err)
	}

	// Every gateway verifies it; home1 sees its fill.
	v, err := Verify(f.roster, f.market, "home1", sealed.Book, sealed.Result, s1)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.OwnFills) != 1 || v.OwnFills[0].Qty != 1500 || v.Clearer != "operator" {
		t.Errorf("verdict %+v", v)
	}
	if _, err := Verify(f.roster, f.market, "home3", sealed.Book, sealed.Result, nil); err != nil {
		t.Errorf("a gateway without an order: %v", err)
	}
}

func TestOfferRejections(t *testing.T) {
	f := newFixture(t)
	good := f.order(t, "home1", open, auction.Sell, 1000, 100_000)
	if _, _, err := f.c.Offer(now, "home1", good); err != nil {
		t.Fatal(err)
	}
	forgedSig := f.order(t, "home2", open, auction.Sell, 1000, 100_000)
	forgedSig = bytes.Replace(forgedSig, []byte(`"kwh":"1"`), []byte(`"kwh":"9"`), 1)
	otherKey, _ := protocol.SignOrder(key("mallory"), "c1", open, "home3", auction.Sell, 1000, 1, f.market)
	nextInterval := "2026-11-22T12:30Z"
	for _, tc := range []struct {
		name, topic string
		raw         []byte
		at          time.Time
		want        protocol.RejectReason
	}{
		{"replayed", "home1", good, now, protocol.RejectReplayed},
		{"replayed, re-encoded", "home1", append([]byte(" "), good...), now, protocol.RejectReplayed},
		{"duplicate", "home1", f.order(t, "home1", open, auction.Buy, 500, 300_000), now, protocol.RejectDuplicate},
		{"tampered", "home2", forgedSig, now, protocol.RejectForged},
		{"signed by another key", "home3", otherKey, now, protocol.RejectForged},
		{"posted under another name", "home2", f.order(t, "home3", open, auction.Sell, 1000, 1), now, protocol.RejectForged},
		{"not in roster", "stranger", f.order(t, "stranger", open, auction.Sell, 1000, 1), now, protocol.RejectForged},
		{"late", "home2", f.order(t, "home2", open, auction.Sell, 1000, 1), now.Add(8 * time.Minute), protocol.RejectLate},
		{"old interval replayed", "home2", f.order(t, "home2", "2026-11-22T12:00Z", auction.Sell, 1000, 1), now, protocol.RejectLate},
		{"future interval", "home2", f.order(t, "home2", nextInterval, auction.Sell, 1000, 1), now, protocol.RejectWrongInterval},
		{"oversize kwh", "home2", bigOrder(t, "home2", open, 50_001), now, protocol.RejectOversize},
		{"oversize message", "home2", append(bytes.Repeat([]byte(" "), protocol.MaxOrderSize), '{', '}'), now, protocol.RejectOversize},
		{"malformed", "home2", []byte(`{"v":1,`), now, protocol.RejectMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.c.Offer(tc.at, tc.topic, tc.raw)
			if got := protocol.ReasonOf(err); got != tc.want {
				t.Errorf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	if n := f.c.Orders(open); n != 1 {
		t.Errorf("%d orders collected after rejections, want 1", n)
	}
}

func TestVerifyCatchesProblems(t *testing.T) {
	f := newFixture(t)
	s1 := f.order(t, "home1", open, auction.Sell, 2000, 100_000)
	b2 := f.order(t, "home2", open, auction.Buy, 1500, 250_000)
	f.c.Offer(now, "home1", s1)
	f.c.Offer(now, "home2", b2)
	sealed, err := f.c.Seal(open)
	if err != nil {
		t.Fatal(err)
	}

	// A result that differs from the book's clearing (a cheating clearer
	// that signs a different price).
	res := bytes.Replace(resultJSON(t, sealed.Cleared), []byte(`"price":"0.1"`), []byte(`"price":"0.2"`), -1)
	cheat, err := protocol.EncodeResult(key("operator"), "c1", open, "operator", res)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(f.roster, f.market, "home1", sealed.Book, cheat, s1); AlarmOf(err) != protocol.AlarmMismatch {
		t.Errorf("cheating result: %v", err)
	}

	// A book without this gateway's order.
	b3 := f.order(t, "home3", open, auction.Buy, 100, 250_000)
	// The clearing is still right; the verdict says the order is missing.
	if v, err := Verify(f.roster, f.market, "home3", sealed.Book, sealed.Result, b3); err != nil || !v.OwnOrderMissing {
		t.Errorf("missing own order: %+v %v", v, err)
	}
	if v, err := Verify(f.roster, f.market, "home1", sealed.Book, sealed.Result, s1); err != nil || v.OwnOrderMissing {
		t.Errorf("own order present: %+v %v", v, err)
	}

	// A result signed by a gateway that is not a clearer.
	byHome, err := protocol.EncodeResult(key("home2"), "c1", open, "home2", resultJSON(t, sealed.Cleared))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(f.roster, f.market, "home1", sealed.Book, byHome, s1); AlarmOf(err) != protocol.AlarmBadResult {
		t.Errorf("result by a non-clearer: %v", err)
	}

	// A book for another interval.
	other, _ := protocol.EncodeBook("c1", "2026-11-22T12:30Z", "operator", nil)
	if _, err := Verify(f.roster, f.market, "home1", other, sealed.Result, nil); AlarmOf(err) != protocol.AlarmBadBook {
		t.Errorf("book of another interval: %v", err)
	}
	var p *Problem
	if err := func() error { _, err := Verify(f.roster, f.market, "x", []byte("{"), sealed.Result, nil); return err }(); !errors.As(err, &p) || !strings.Contains(err.Error(), "bad_book") {
		t.Errorf("garbage book: %v", err)
	}
}

func TestScheduleAndForget(t *testing.T) {
	if got := sched.Open(now); market.IntervalID(got) != open {
		t.Errorf("open interval %s", got)
	}
	at, _ := market.ParseInterval(open)
	if got := sched.GateClose(at); !got.Equal(time.Date(2026, 11, 22, 12, 13, 0, 0, time.UTC)) {
		t.Errorf("gate closes %s", got)
	}
	f := newFixture(t)
	f.c.Offer(now, "home1", f.order(t, "home1", open, auction.Sell, 1000, 1))
	f.c.Forget(at.Add(time.Minute))
	if f.c.Orders(open) != 0 {
		t.Error("Forget kept the interval")
	}
}

func resultJSON(t *testing.T, r *auction.Result) []byte {
	t.Helper()
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bigOrder is signed under default rules, beyond the test market's 50 kWh.
func bigOrder(t *testing.T, gw, interval string, wh int64) []byte {
	t.Helper()
	m, _ := auction.NewMarket(auction.DefaultRules())
	raw, err := protocol.SignOrder(key(gw), "c1", interval, gw, auction.Sell, wh, 1, m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// operatorKey signs the tests' roster versions.
var operatorKey = key("community-operator")

// rosterVersion is version seq of the roster of ids (the operator the
// clearer), valid from from, signed by operatorKey.
func rosterVersion(t *testing.T, seq uint64, from time.Time, ids ...string) *protocol.RosterMsg {
	t.Helper()
	var ms []protocol.Member
	for _, g := range ids {
		ms = append(ms, protocol.Member{ID: g, PublicKey: key(g).Public().(ed25519.PublicKey), Clearer: g == "operator"})
	}
	r, err := protocol.NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	return gatewaytest.RosterVersion(t, operatorKey, r, seq, from)
}

// The clearer checks an order against the roster in effect for its
// interval: home4, added from 12:30 on, is a stranger in 12:15 and a
// member in 12:30; home3, removed from 12:30 on, is the reverse.
func TestOfferUsesTheRosterOfTheInterval(t *testing.T) {
	f := newFixture(t)
	signed := func(seq uint64, from time.Time, ids ...string) *protocol.RosterMsg {
		return rosterVersion(t, seq, from, ids...)
	}
	from := time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)
	h, err := protocol.NewRosters(operatorKey.Public().(ed25519.PublicKey), signed(1, now.Truncate(time.Hour), "home1", "home3", "operator"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Accept(signed(2, from, "home1", "home4", "operator"), sched.Open(now)); err != nil {
		t.Fatal(err)
	}
	c := NewClearer("operator", key("operator"), h, f.market, sched)
	later := now.Add(15 * time.Minute) // 12:20: the open interval is 12:30
	for _, o := range []struct {
		gw       string
		at       time.Time
		interval string
		want     protocol.RejectReason // "" accepted
	}{
		{"home4", now, open, protocol.RejectForged},
		{"home3", now, open, ""},
		{"home4", later, "2026-11-22T12:30Z", ""},
		{"home3", later, "2026-11-22T12:30Z", protocol.RejectForged},
	} {
		_, _, err := c.Offer(o.at, o.gw, f.order(t, o.gw, o.interval, auction.Buy, 100, 100_000))
		if got := protocol.ReasonOf(err); (err == nil) != (o.want == "") || (err != nil && got != o.want) {
			t.Errorf("order of %s for %s: %v, want %q", o.gw, o.interval, err, o.want)
		}
	}
}

// An order accepted before a version that removes its gateway from the
// interval is left out of the book, reported once, and the book verifies
// against the new version.
func TestSealDropsOrdersTheRosterNoLongerHolds(t *testing.T) {
	f := newFixture(t)
	version := func(seq uint64, ids ...string) *protocol.RosterMsg {
		return rosterVersion(t, seq, sched.Open(now), ids...)
	}
	h, err := protocol.NewRosters(operatorKey.Public().(ed25519.PublicKey), version(1, "home1", "home2", "operator"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClearer("operator", key("operator"), h, f.market, sched)
	for _, gw := range []string{"home1", "home2"} {
		if _, _, err := c.Offer(now, gw, f.order(t, gw, open, auction.Buy, 100, 100_000)); err != nil {
			t.Fatalf("order of %s: %v", gw, err)
		}
	}
	v2 := version(2, "home1", "operator") // home2 out from the open interval on
	if _, err := h.Accept(v2, sched.Open(now)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Seal(open)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Dropped, []string{"home2"}) || s.Cleared.Orders != 1 {
		t.Errorf("sealed with %d orders, dropped %v; want 1 order, home2 dropped", s.Cleared.Orders, s.Dropped)
	}
	if _, err := Verify(v2.Roster, f.market, "home1", s.Book, s.Result, nil); err != nil {
		t.Errorf("the book does not verify against the interval's roster: %v", err)
	}
	again, err := c.Seal(open)
	if err != nil || len(again.Dropped) != 0 || !bytes.Equal(again.Book, s.Book) {
		t.Errorf("sealing again: dropped %v, same book %v, %v; want none dropped, the same book", again.Dropped, bytes.Equal(again.Book, s.Book), err)
	}
}

func (f *fixture) steps(t *testing.T, m *auction.Market, gw string, steps ...protocol.Step) []byte {
	t.Helper()
	raw, err := protocol.SignOrderSteps(key(gw), "c1", open, gw, steps, m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A v2 order of two steps among v1 orders is accepted, sealed, cleared
// with a fill per step, and verified by every gateway.
func TestOfferStepsSealsAndVerifies(t *testing.T) {
	f := newFixture(t)
	s1 := f.order(t, "home1", open, auction.Sell, 2000, 100_000)
	s3 := f.order(t, "home3", open, auction.Sell, 1000, 200_000)
	b2 := f.steps(t, f.market, "home2", protocol.Step{Side: auction.Buy, Qty: 1000, Price: 250_000}, protocol.Step{Side: auction.Buy, Qty: 3000, Price: 150_000})
	for gw, raw := range map[string][]byte{"home1": s1, "home2": b2, "home3": s3} {
		if _, _, err := f.c.Offer(now, gw, raw); err != nil {
			t.Fatalf("offer from %s: %v", gw, err)
		}
	}
	if n := f.c.Orders(open); n != 3 {
		t.Errorf("%d orders collected, want 3 messages", n)
	}
	sealed, err := f.c.Seal(open)
	if err != nil {
		t.Fatal(err)
	}
	// Supply 2 kWh at 0.10 (1 more at 0.20), demand 1 kWh at 0.25 and 3 at
	// 0.15: 2 kWh trade at 0.15, both of home2's steps filled.
	res := sealed.Cleared
	if res.Orders != 4 || !res.Cleared || res.Price != 150_000 || res.Volume != 2000 {
		t.Fatalf("cleared %d orders, price %d, volume %d", res.Orders, res.Price, res.Volume)
	}
	fills := map[string]int64{}
	for _, fl := range res.Fills {
		fills[fl.ID] = fl.Qty
	}
	if fills["home2:1"] != 1000 || fills["home2:2"] != 1000 || fills["home1"] != 2000 {
		t.Errorf("fills %v", fills)
	}
	for gw, own := range map[string][]byte{"home1": s1, "home2": b2, "home3": s3, "operator": nil} {
		v, err := Verify(f.roster, f.market, gw, sealed.Book, sealed.Result, own)
		if err != nil {
			t.Fatalf("%s: %v", gw, err)
		}
		if v.OwnOrderMissing {
			t.Errorf("%s: own order missing", gw)
		}
		var qty int64
		for _, fl := range v.OwnFills {
			if fl.Participant != gw {
				t.Errorf("%s: own fill %+v", gw, fl)
			}
			qty += fl.Qty
		}
		if want := map[string]int64{"home1": 2000, "home2": 2000}[gw]; qty != want {
			t.Errorf("%s: own fills %v, %d Wh; want %d", gw, v.OwnFills, qty, want)
		}
		if gw == "home2" && len(v.OwnFills) != 2 {
			t.Errorf("home2: %d own fills, want one per step", len(v.OwnFills))
		}
	}
	// A tampered step in the published book fails every gateway's check.
	bad := bytes.Replace(sealed.Book, []byte(`"kwh":"3"`), []byte(`"kwh":"4"`), 1)
	if _, err := Verify(f.roster, f.market, "home1", bad, sealed.Result, s1); AlarmOf(err) != protocol.AlarmBadBook {
		t.Errorf("book with a tampered step: %v", err)
	}
}

// Bad v2 orders are rejected with the reasons bad v1 ones get.
func TestOfferStepsRejects(t *testing.T) {
	f := newFixture(t)
	loose := func() *auction.Market { // the clearer allows 50 kWh an order
		r := auction.DefaultRules()
		r.MaxOrderKWh = decimal.NewFromInt(100)
		m, err := auction.NewMarket(r)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}()
	good := f.steps(t, f.market, "home2", protocol.Step{Side: auction.Buy, Qty: 1000, Price: 250_000}, protocol.Step{Side: auction.Buy, Qty: 3000, Price: 150_000})
	for _, tc := range []struct {
		name string
		gw   string
		raw  []byte
		want protocol.RejectReason
	}{
		{"steps totalling beyond max_order_kwh", "home2", f.steps(t, loose, "home2", protocol.Step{Side: auction.Sell, Qty: 30_000, Price: 1}, protocol.Step{Side: auction.Sell, Qty: 30_000, Price: 2}), protocol.RejectOversize},
		{"tampered step", "home2", bytes.Replace(good, []byte(`"price":"0.15"`), []byte(`"price":"0.16"`), 1), protocol.RejectForged},
		{"on another gateway's topic", "home3", good, protocol.RejectForged},
		{"nine steps", "home2", bytes.Replace(good, []byte(`"steps":[`), []byte(`"steps":[`+strings.Repeat(`{"side":"buy","kwh":"1","price":"1"},`, 8)), 1), protocol.RejectMalformed},
		{"v1 keys in a v2 order", "home2", bytes.Replace(good, []byte(`"steps"`), []byte(`"kwh":"1","steps"`), 1), protocol.RejectMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := f.c.Offer(now, tc.gw, tc.raw); protocol.ReasonOf(err) != tc.want {
				t.Errorf("reason %q (%v), want %q", protocol.ReasonOf(err), err, tc.want)
			}
		})
	}
	if f.c.Orders(open) != 0 {
		t.Fatal("a bad order was collected")
	}
	if _, _, err := f.c.Offer(now, "home2", good); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.c.Offer(now, "home2", good); protocol.ReasonOf(err) != protocol.RejectReplayed {
		t.Errorf("the same v2 order again: %v", err)
	}
	other := f.steps(t, f.market, "home2", protocol.Step{Side: auction.Buy, Qty: 1000, Price: 250_000})
	if _, _, err := f.c.Offer(now, "home2", other); protocol.ReasonOf(err) != protocol.RejectDuplicate {
		t.Errorf("a second v2 order: %v", err)
	}
}

// A gateway named like a step id ("home2:1") and home2's v2 order cannot
// both be in a book: whichever comes second is a duplicate, and the book
// of the first seals and verifies.
func TestOfferStepIDClash(t *testing.T) {
	var ms []protocol.Member
	for _, g := range []string{"home2", "home2:1", "operator"} {
		ms = append(ms, protocol.Member{ID: g, PublicKey: key(g).Public().(ed25519.PublicKey), Clearer: g == "operator"})
	}
	r, err := protocol.NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	m := newFixture(t).market
	v2, err := protocol.SignOrderSteps(key("home2"), "c1", open, "home2", []protocol.Step{{Side: auction.Sell, Qty: 1000, Price: 100_000}}, m)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := protocol.SignOrder(key("home2:1"), "c1", open, "home2:1", auction.Buy, 1000, 200_000, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, first := range []string{"home2", "home2:1"} {
		c := NewClearer("operator", key("operator"), protocol.FixedRosters(r), m, sched)
		order := map[string][]byte{"home2": v2, "home2:1": v1}
		second := map[string]string{"home2": "home2:1", "home2:1": "home2"}[first]
		if _, _, err := c.Offer(now, first, order[first]); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Offer(now, second, order[second]); protocol.ReasonOf(err) != protocol.RejectDuplicate {
			t.Errorf("%s after %s: %v, want duplicate", second, first, err)
		}
		sealed, err := c.Seal(open)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(r, m, first, sealed.Book, sealed.Result, order[first]); err != nil {
			t.Errorf("book of %s alone: %v", first, err)
		}
	}
	// Both in one book: no gateway verifies it.
	book, err := protocol.EncodeBook("c1", open, "operator", [][]byte{v2, v1})
	if err != nil {
		t.Fatal(err)
	}
	bm, err := protocol.DecodeBook(book)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bm.Verify(r, m); !errors.Is(err, auction.ErrDuplicateID) {
		t.Errorf("book with clashing ids: %v", err)
	}
}
