package settlement

import (
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
)

// pdmExample is docs/settlement.md's worked example of the post-delivery
// market: h1 sold 2 kWh at 0.15 but exported 1.5; h3's offer at 0.20
// went unfilled ex ante, and it exported 0.8 kWh.
// tariffMarket is the default market with the example tariffs, feed-in
// 0.05 and retail 0.30, as price floor and cap.
func tariffMarket(t *testing.T) (*auction.Market, auction.Rules) {
	t.Helper()
	rules := auction.DefaultRules()
	feedIn, retail := decimal.RequireFromString("0.05"), decimal.RequireFromString("0.30")
	rules.PriceFloor, rules.PriceCap = &feedIn, &retail
	m, err := auction.NewMarket(rules)
	if err != nil {
		t.Fatal(err)
	}
	return m, rules
}

func pdmExample(t *testing.T) (*IntervalSettlement, auction.Book, auction.Rules) {
	t.Helper()
	m, rules := tariffMarket(t)
	book := auction.Book{Interval: testInterval}
	for _, o := range [][5]string{{"h1", "h1", "sell", "2", "0.10"}, {"h2", "h2", "buy", "2", "0.25"}, {"h3", "h3", "sell", "1", "0.20"}} {
		ao, err := m.ParseOrder(o[0], o[1], o[2], o[3], o[4])
		if err != nil {
			t.Fatal(err)
		}
		book.Orders = append(book.Orders, ao)
	}
	r, err := m.Clear(book)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Settle("", r, tariffs("0.30", "0.05"), []Metered{
		{Participant: "h1", ExportWh: 1500}, {Participant: "h2", ImportWh: 2000}, {Participant: "h3", ExportWh: 800},
	}, SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	return s, book, rules
}

func TestPostDeliveryWorkedExample(t *testing.T) {
	ex, book, rules := pdmExample(t)
	s, err := SettlePostDelivery(ex, book, rules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range s.Trades {
		got = append(got, tradeLine(tr))
	}
	for _, st := range s.Participants {
		got = append(got, statementLine(st))
	}
	want := []string{
		"2026-11-22T12:00Z/h1/h2 h1->h2 wh=2000 d=1500 m=500 p=0.15 amount=0.225 fee=0 comp=0.025",
		"pdm/2026-11-22T12:00Z/h3/h2 h3->h2 wh=500 d=500 m=0 p=0.2 amount=0.1 fee=0 comp=0",
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("trade %d:\n got %s\nwant %s", i, got[i], w)
		}
	}
	if s.Policy != "seller-bears-shortfall+post-delivery" {
		t.Errorf("policy %q", s.Policy)
	}
	// Ex ante: h1 0.225 - 0.075 = 0.15, h2 -0.225 - 0.15 + 0.075 = -0.3,
	// h3 0.04 (feed-in). After: h1 0.2, h2 -0.3 (2 kWh at the agreed
	// 0.15), h3 0.115 (0.8 kWh: 0.5 at 0.20, 0.3 at feed-in).
	nets := map[string]string{"h1": "0.2", "h2": "-0.3", "h3": "0.115"}
	for _, st := range s.Participants {
		if w := nets[st.Participant]; canonical(st.Net) != w {
			t.Errorf("%s: net %s, want %s", st.Participant, canonical(st.Net), w)
		}
	}
	for _, st := range ex.Participants {
		if st.Participant == "h1" && canonical(st.Net) != "0.15" {
			t.Errorf("ex ante h1 net %s, want 0.15", canonical(st.Net))
		}
	}
}

func TestPostDeliveryNoSelfTrade(t *testing.T) {
	// h1 alone exports and imports: nothing to match.
	s, err := Settle(testInterval, buildResult("0.1", "0"), tariffs("0.30", "0.05"),
		[]Metered{{Participant: "h1", ExportWh: 700, ImportWh: 400}}, SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	post, err := SettlePostDelivery(s, auction.Book{Interval: testInterval}, auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	if len(post.Trades) != 0 {
		t.Fatalf("trades %v, want none", post.Trades)
	}
	// With a neighbour, h1's import is bought from h2, its export sold to h3.
	s, err = Settle(testInterval, buildResult("0.1", "0"), tariffs("0.30", "0.05"),
		[]Metered{{Participant: "h1", ExportWh: 700, ImportWh: 400}, {Participant: "h2", ExportWh: 400}, {Participant: "h3", ImportWh: 700}}, SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	if post, err = SettlePostDelivery(s, auction.Book{Interval: testInterval}, auction.DefaultRules()); err != nil {
		t.Fatal(err)
	}
	var vol int64
	for _, tr := range post.Trades {
		if tr.Seller == tr.Buyer {
			t.Errorf("self trade %s", tr.ID)
		}
		vol += tr.Wh
	}
	if vol == 0 {
		t.Errorf("nothing matched between neighbours")
	}
}

func TestPostDeliveryErrors(t *testing.T) {
	ex, book, rules := pdmExample(t)
	post, err := SettlePostDelivery(ex, book, rules)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		s    *IntervalSettlement
		book auction.Book
		want string
	}{
		"twice":         {post, book, "policy"},
		"other book":    {ex, auction.Book{Interval: "2026-11-22T12:15Z"}, "ex-ante book is for interval"},
		"no settlement": {nil, book, "no settlement"},
	} {
		if _, err := SettlePostDelivery(c.s, c.book, rules); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", name, err, c.want)
		}
	}
}

func TestPairOthers(t *testing.T) {
	f := func(p string, side auction.Side, qty int64) auction.Fill {
		return auction.Fill{ID: p + side.String(), Participant: p, Side: side, Qty: qty}
	}
	for _, c := range []struct {
		name  string
		fills []auction.Fill
		want  string
	}{
		{"the auction's pairing", []auction.Fill{f("x", auction.Sell, 3), f("z", auction.Sell, 4), f("y", auction.Buy, 5), f("w", auction.Buy, 2)},
			"x->y:3 z->y:2 z->w:2"},
		{"skip own", []auction.Fill{f("a", auction.Sell, 5), f("b", auction.Sell, 5), f("a", auction.Buy, 5), f("c", auction.Buy, 5)},
			"a->c:5 b->a:5"},
		{"swap into an earlier pair", []auction.Fill{f("x", auction.Sell, 5), f("a", auction.Sell, 5), f("y", auction.Buy, 5), f("a", auction.Buy, 5)},
			"x->a:5 a->y:5"},
		{"partly placed", []auction.Fill{f("x", auction.Sell, 2), f("a", auction.Sell, 5), f("y", auction.Buy, 2), f("a", auction.Buy, 5)},
			"x->a:2 a->y:2"},
		{"only itself", []auction.Fill{f("a", auction.Sell, 5), f("a", auction.Buy, 5)}, ""},
	} {
		var got []string
		for _, p := range pairOthers(c.fills) {
			got = append(got, p.seller+"->"+p.buyer+":"+decimal.NewFromInt(p.wh).String())
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s: pairs %q, want %q", c.name, g, c.want)
		}
	}
}
