package settling

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
)

var (
	cal      = market.Calendar{Interval: 15 * time.Minute, GateClosure: 2 * time.Minute, Grace: 30 * time.Second}
	interval = "2026-11-22T12:15Z"
	start    = time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
	after    = start.Add(16 * time.Minute) // the interval is over
	rules    = Rules{Calendar: cal, MaxConnectionKW: decimal.NewFromInt(100),
		Tariffs: settlement.Tariffs{Retail: decimal.RequireFromString("0.30"), FeedIn: decimal.RequireFromString("0.05")}}
)

func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("settling:" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func roster(t *testing.T) *protocol.Roster {
	t.Helper()
	return rosterOf(t, "home1", "home2", "operator")
}

// rosterOf is the roster of community c1 with gateways gws, "operator"
// its clearer.
func rosterOf(t *testing.T, gws ...string) *protocol.Roster {
	t.Helper()
	var ms []protocol.Member
	for _, g := range gws {
		ms = append(ms, protocol.Member{ID: g, PublicKey: key(g).Public().(ed25519.PublicKey), Clearer: g == "operator"})
	}
	r, err := protocol.NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cleared is the clearing of interval, and its book: home1 sells 1 kWh
// at 0.10, home2 buys 0.5 kWh at 0.25.
func cleared(t *testing.T, r *protocol.Roster) (*auction.Result, auction.Book) {
	t.Helper()
	m, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	c := clearing.NewClearer("operator", key("operator"), protocol.FixedRosters(r), m, cal)
	at := start.Add(-7 * time.Minute)
	book := auction.Book{Interval: interval}
	for _, o := range []struct {
		gw    string
		side  auction.Side
		wh    int64
		price int64
	}{{"home1", auction.Sell, 1000, 100_000}, {"home2", auction.Buy, 500, 250_000}} {
		raw, err := protocol.SignOrder(key(o.gw), "c1", interval, o.gw, o.side, o.wh, o.price, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Offer(at, o.gw, raw); err != nil {
			t.Fatal(err)
		}
		book.Orders = append(book.Orders, auction.Order{ID: o.gw, Participant: o.gw, Side: o.side, Qty: o.wh, Price: o.price})
	}
	s, err := c.Seal(interval)
	if err != nil {
		t.Fatal(err)
	}
	return s.Cleared, book
}

func metered(t *testing.T, gw, iv string, imp, exp int64) []byte {
	t.Helper()
	raw, err := protocol.SignMetered(key(gw), "c1", iv, gw, imp, exp)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestBound(t *testing.T) {
	if got := rules.Bound(); got != 25_000 {
		t.Errorf("100 kW over 15 minutes: %d Wh, want 25000", got)
	}
	r := rules
	r.MaxConnectionKW = decimal.RequireFromString("11.04")
	r.Calendar.Interval = time.Hour
	if got := r.Bound(); got != 11_040 {
		t.Errorf("11.04 kW over an hour: %d Wh", got)
	}
}

func TestFigures(t *testing.T) {
	s := Boundary{Start: start, At: start.Add(3 * time.Second), ImportWh: 100, ExportWh: 2000, Near: true}
	e := Boundary{Start: start.Add(15 * time.Minute), At: start.Add(15*time.Minute + 2*time.Second), ImportWh: 150, ExportWh: 2900, Near: true}
	if imp, exp, err := Figures(Due{Start: &s, End: e}); err != nil || imp != 50 || exp != 900 {
		t.Errorf("figures %d %d %v, want 50 900", imp, exp, err)
	}
	late, reset := e, e
	late.Near = false
	reset.ExportWh = 10
	for _, tc := range []struct {
		name string
		d    Due
		want string
	}{
		{"not running at the start", Due{End: e}, NoFiguresNotRunning},
		{"late reading", Due{Start: &s, End: late}, NoFiguresLateReading},
		{"counter reset", Due{Start: &s, End: reset}, NoFiguresCounterReset},
	} {
		_, _, err := Figures(tc.d)
		var nf *NoFigures
		if !errors.As(err, &nf) || nf.Reason != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}

// memStore is a Store in memory.
type memStore struct{ data []byte }

func (m *memStore) Load() ([]byte, error)  { return m.data, nil }
func (m *memStore) Save(data []byte) error { m.data = append([]byte(nil), data...); return nil }

// The boundaries survive a restart through their store, keep the first
// reading of a boundary, and hand out each due interval until settled.
func TestBoundariesAcrossRestart(t *testing.T) {
	st := &memStore{}
	b, err := NewBoundaries(st)
	if err != nil {
		t.Fatal(err)
	}
	first := Boundary{Start: start, At: start.Add(time.Second), ImportWh: 1, ExportWh: 2, Near: true}
	if added, err := b.Add(first); !added || err != nil {
		t.Fatalf("add: %v %v", added, err)
	}
	if added, _ := b.Add(Boundary{Start: start, At: start.Add(time.Minute), ImportWh: 9, ExportWh: 9}); added {
		t.Error("a later reading replaced the boundary")
	}
	// Restart: a new value from the same store.
	b, err = NewBoundaries(st)
	if err != nil || b.Len() != 1 {
		t.Fatalf("after restart: %d boundaries, %v", b.Len(), err)
	}
	end := start.Add(15 * time.Minute)
	b.Add(Boundary{Start: end, At: end.Add(time.Second), ImportWh: 1, ExportWh: 500, Near: true})
	due := b.Due(15 * time.Minute)
	if len(due) != 2 || due[1].Start == nil || due[1].Start.ImportWh != 1 || due[1].End.ExportWh != 500 {
		t.Fatalf("due %+v", due)
	}
	if err := b.Settle(end, FiguresSent); err != nil || !b.Sent(end) {
		t.Fatalf("settle: %v, sent %v", err, b.Sent(end))
	}
	b.Settle(start, FiguresNone)
	if d := b.Due(15 * time.Minute); len(d) != 0 {
		t.Errorf("due after settling both: %+v", d)
	}
	if _, err := NewBoundaries(&memStore{data: []byte(`{"v":2,"boundaries":[]}`)}); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("a file of another version: %v", err)
	}
}

func TestCollector(t *testing.T) {
	r := roster(t)
	c := NewCollector(protocol.FixedRosters(r), rules)
	good := metered(t, "home1", interval, 0, 1000)
	if _, _, err := c.Offer(after, "home1", good); err != nil {
		t.Fatal(err)
	}
	var refused *RefusedError
	for _, tc := range []struct {
		name, topic string
		raw         []byte
		at          time.Time
		refused     bool
		tooOld      bool
	}{
		{"on another gateway's topic", "home2", good, after, false, false},
		{"forged", "home2", func() []byte { b, _ := protocol.SignMetered(key("home1"), "c1", interval, "home2", 1, 1); return b }(), after, false, false},
		{"an interval not over", "home2", metered(t, "home2", interval, 500, 0), start.Add(10 * time.Minute), true, false},
		{"beyond the connection", "home2", metered(t, "home2", interval, 1<<62, 0), after, true, false},
		{"an interval long gone", "home2", metered(t, "home2", "2026-11-22T10:00Z", 1, 1), after, false, true},
		{"malformed", "home2", []byte(`{"v":1}`), after, false, false},
	} {
		_, _, err := c.Offer(tc.at, tc.topic, tc.raw)
		if err == nil || errors.As(err, &refused) != tc.refused || errors.Is(err, ErrTooOld) != tc.tooOld {
			t.Errorf("%s: %v (refused %v, too old %v)", tc.name, err, tc.refused, tc.tooOld)
		}
	}
	// A second, different set of figures does not replace the first.
	c.Offer(after, "home1", metered(t, "home1", interval, 0, 7))
	c.Offer(after, "home2", metered(t, "home2", interval, 500, 0))
	fs := c.Figures(interval)
	if len(fs) != 2 || string(fs[0]) != string(good) {
		t.Fatalf("figures %q", fs)
	}
	c.Forget(start.Add(time.Minute))
	if len(c.Figures(interval)) != 0 {
		t.Error("figures kept after Forget")
	}
}

// The clearer's settlement verifies on every gateway; a tampered one, one
// of another interval, and junk do not, each for its own reason.
func TestSealAndVerify(t *testing.T) {
	r := roster(t)
	res, book := cleared(t, r)
	raws := [][]byte{metered(t, "home1", interval, 0, 1000), metered(t, "home2", interval, 500, 0)}
	msg, s, err := Seal(key("operator"), "c1", "operator", interval, res, book, rules, raws)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(r, interval, res, book, rules, msg)
	if err != nil || !v.Gateways["home1"] || !v.Gateways["home2"] || v.Clearer != "operator" {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if js, _ := s.MarshalJSON(); string(js) != string(v.JSON) {
		t.Error("the verdict's settlement is not the sealed one")
	}
	// Figures beyond the bound count as missing, on both sides alike.
	absurd := [][]byte{metered(t, "home1", interval, 0, 1<<62), raws[1]}
	msg2, s2, err := Seal(key("operator"), "c1", "operator", interval, res, book, rules, absurd)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(r, interval, res, book, rules, msg2); err != nil || !v.Gateways["home1"] {
		t.Fatalf("verify with absurd figures: %v", err)
	}
	for _, p := range s2.Participants {
		if p.Participant == "home1" && p.MissingIntervals != 1 {
			t.Errorf("home1's absurd figures were used: %+v", p)
		}
	}
	// A settlement that is not the settlement of its figures.
	lie, err := protocol.EncodeSettlement(key("operator"), "c1", interval, "operator", raws, []byte(strings.Replace(string(v.JSON), `"sold_wh":`, `"sold_wh":1`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(r, interval, res, book, rules, lie); !errors.Is(err, ErrMismatch) {
		t.Errorf("a tampered settlement: %v, want a mismatch", err)
	}
	if _, err := Verify(r, "2026-11-22T12:30Z", res, book, rules, msg); !errors.Is(err, ErrNotASettlement) {
		t.Errorf("another interval's settlement: %v", err)
	}
	byHome, _ := protocol.EncodeSettlement(key("home1"), "c1", interval, "home1", raws, v.JSON)
	if _, err := Verify(r, interval, res, book, rules, byHome); !errors.Is(err, ErrNotASettlement) {
		t.Errorf("a settlement by a non-clearer: %v", err)
	}
	if _, err := Verify(r, interval, res, book, rules, []byte(`{"v":1}`)); !errors.Is(err, ErrNotASettlement) {
		t.Errorf("junk: %v", err)
	}
}

// removeHome2 is the history of version 1 of roster(t), valid from
// start, and version 2, without home2, valid from from, for the caller to
// accept.
func removeHome2(t *testing.T, from time.Time) (*protocol.Rosters, *protocol.RosterMsg) {
	t.Helper()
	op := key("community-operator")
	h, err := protocol.NewRosters(op.Public().(ed25519.PublicKey), gatewaytest.RosterVersion(t, op, roster(t), 1, start))
	if err != nil {
		t.Fatal(err)
	}
	var ms []protocol.Member
	for _, m := range roster(t).Gateways {
		if m.ID != "home2" {
			ms = append(ms, m)
		}
	}
	without, err := protocol.NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	return h, gatewaytest.RosterVersion(t, op, without, 2, from)
}

// The collector checks figures against the roster in effect for their
// interval: home2, removed from the interval after this one, is counted
// in this one and a stranger in the next.
func TestCollectorUsesTheRosterOfTheInterval(t *testing.T) {
	next := start.Add(15 * time.Minute)
	h, v2 := removeHome2(t, next)
	if _, err := h.Accept(v2, next); err != nil {
		t.Fatal(err)
	}
	c := NewCollector(h, rules)
	if _, _, err := c.Offer(after, "home2", metered(t, "home2", interval, 500, 0)); err != nil {
		t.Errorf("home2's figures of %s, when it was a member: %v", interval, err)
	}
	if got := len(c.Figures(interval)); got != 1 {
		t.Errorf("%d figures of %s, want home2's", got, interval)
	}
	nextID := market.IntervalID(next)
	if _, _, err := c.Offer(after.Add(15*time.Minute), "home2", metered(t, "home2", nextID, 500, 0)); protocol.ReasonOf(err) != protocol.RejectForged {
		t.Errorf("home2's figures of %s, after its removal: %v, want forged", nextID, err)
	}
	if got := len(c.Figures(nextID)); got != 0 {
		t.Errorf("%d figures kept for %s, want none", got, nextID)
	}
}

// Figures accepted before a version that removes their gateway from the
// interval are left out of what the collector hands to the settlement.
func TestCollectorLeavesOutFiguresTheRosterNoLongerHolds(t *testing.T) {
	h, v2 := removeHome2(t, start)
	c := NewCollector(h, rules)
	for _, gw := range []string{"home1", "home2"} {
		if _, _, err := c.Offer(after, gw, metered(t, gw, interval, 500, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Accept(v2, time.Time{}); err != nil { // late, from the broker
		t.Fatal(err)
	}
	fs := c.Figures(interval)
	if len(fs) != 1 || !strings.Contains(string(fs[0]), `"home1"`) {
		t.Errorf("figures after home2's removal from %s: %q, want home1's alone", interval, fs)
	}
	if c.Figures("not an interval") != nil {
		t.Error("figures of a non-interval")
	}
}

// With the post-delivery market on, home1's export beyond its 0.5 kWh
// trade goes to home3's import; every gateway that runs it verifies the
// settlement, one that does not refuses it, and a settlement sealed
// without it still verifies (sealed before the community turned it on).
func TestSealAndVerifyPostDelivery(t *testing.T) {
	r, r3 := roster(t), rosterOf(t, "home1", "home2", "home3", "operator")
	res, book := cleared(t, r)
	market := auction.DefaultRules()
	on := rules
	on.PostDelivery = &market
	raws := [][]byte{metered(t, "home1", interval, 0, 1000), metered(t, "home2", interval, 500, 0), metered(t, "home3", interval, 300, 0)}
	msg, s, err := Seal(key("operator"), "c1", "operator", interval, res, book, on, raws)
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy != "seller-bears-shortfall"+settlement.PostDeliverySuffix {
		t.Errorf("policy %q", s.Policy)
	}
	var pdm []settlement.TradeSettlement
	for _, tr := range s.Trades {
		if settlement.IsPostDelivery(tr.ID) {
			pdm = append(pdm, tr)
		}
	}
	// home1 sells its residual 500 Wh at its limit 0.10; home3 buys 300
	// Wh paying up to retail (it placed no order): price 0.10, home1
	// marginal with more to sell.
	if len(pdm) != 1 || pdm[0].Seller != "home1" || pdm[0].Buyer != "home3" || pdm[0].Wh != 300 || !pdm[0].Price.Equal(decimal.RequireFromString("0.1")) {
		t.Fatalf("post-delivery trades %+v, want home1 -> home3 300 Wh at 0.1", pdm)
	}
	v, err := Verify(r3, interval, res, book, on, msg)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if js, _ := s.MarshalJSON(); string(js) != string(v.JSON) {
		t.Error("the verdict's settlement is not the sealed one")
	}
	if _, err := Verify(r3, interval, res, book, rules, msg); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "post-delivery") {
		t.Errorf("verified without the post-delivery market: %v, want a mismatch naming it", err)
	}
	// Another book (other limits) gives other figures: a mismatch.
	other := auction.Book{Interval: interval, Orders: append([]auction.Order(nil), book.Orders...)}
	other.Orders[0].Price = 200_000
	if _, err := Verify(r3, interval, res, other, on, msg); !errors.Is(err, ErrMismatch) {
		t.Errorf("verified against another book: %v", err)
	}
	old, _, err := Seal(key("operator"), "c1", "operator", interval, res, book, rules, raws)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(r3, interval, res, book, on, old); err != nil || strings.HasSuffix(v.Settlement.Policy, settlement.PostDeliverySuffix) {
		t.Errorf("a settlement sealed without the post-delivery market: %v", err)
	}
	// A clearer held back (market.post_delivery: false) seals as one
	// without it, byte for byte, and every gateway verifies that.
	held := on
	held.SealPlain = true
	plain, s2, err := Seal(key("operator"), "c1", "operator", interval, res, book, held, raws)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != string(old) || strings.HasSuffix(s2.Policy, settlement.PostDeliverySuffix) {
		t.Errorf("sealed with SealPlain: policy %q, and not the bytes of a settlement without the post-delivery market", s2.Policy)
	}
	if _, err := Verify(r3, interval, res, book, held, msg); err != nil {
		t.Errorf("SealPlain keeps a gateway from verifying a post-delivery settlement: %v", err)
	}
}
