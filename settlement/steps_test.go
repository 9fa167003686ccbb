package settlement

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
)

// Bid curves: a gateway's v2 order is several auction orders of one
// participant, with ids "<gateway>:<step>" (gateway/protocol.StepID). They
// settle as any participant's several fills do.

// stepsBook is an interval where bat sells a curve of two steps (1 kWh at
// 0.10, 2 kWh more at 0.14) and h2 and h3 buy 2 kWh each, h2 up to 0.20, h3
// up to 0.15; and ev buys a curve (1 kWh up to 0.25, 1 more up to 0.12)
// that the market serves only in part.
func stepsBook(t *testing.T) (*auction.Market, auction.Book) {
	t.Helper()
	m, _ := tariffMarket(t)
	book := auction.Book{Interval: testInterval}
	for _, o := range [][5]string{
		{"bat:1", "bat", "sell", "1", "0.10"}, {"bat:2", "bat", "sell", "2", "0.14"},
		{"h2", "h2", "buy", "2", "0.20"}, {"h3", "h3", "buy", "2", "0.15"},
		{"ev:1", "ev", "buy", "1", "0.25"}, {"ev:2", "ev", "buy", "1", "0.12"},
	} {
		ao, err := m.ParseOrder(o[0], o[1], o[2], o[3], o[4])
		if err != nil {
			t.Fatal(err)
		}
		book.Orders = append(book.Orders, ao)
	}
	return m, book
}

// A seller's shortfall is shared over all its trades, whichever step they
// came from, pro rata in whole Wh, the Wh left over by largest remainder
// (ties to the smaller buyer id, then trade id): the same figures whatever
// order the book lists the orders in.
func TestSettleStepsShortfallAcrossSteps(t *testing.T) {
	m, book := stepsBook(t)
	var first []byte
	for round := range 20 {
		b := auction.Book{Interval: book.Interval, Orders: slices.Clone(book.Orders)}
		rand.New(rand.NewPCG(uint64(round), 1)).Shuffle(len(b.Orders), func(i, j int) { b.Orders[i], b.Orders[j] = b.Orders[j], b.Orders[i] })
		r, err := m.Clear(b)
		if err != nil {
			t.Fatal(err)
		}
		// bat exports 1001 Wh of the 3000 it sold.
		s, err := Settle(testInterval, r, tariffs("0.30", "0.05"), []Metered{
			{Participant: "bat", ExportWh: 1001}, {Participant: "h2", ImportWh: 2000},
			{Participant: "h3", ImportWh: 2000}, {Participant: "ev", ImportWh: 1000},
		}, SellerBearsShortfall{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
		got, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if round > 0 {
			if string(got) != string(first) {
				t.Fatalf("book order %d settles otherwise:\n%s\nwant\n%s", round, got, first)
			}
			continue
		}
		first = got
		// ev's first step (0.25) and h2 (0.20) take the 3 kWh; h3 (0.15) and
		// ev's second step (0.12) are priced out. Cheapest step with the
		// highest bid first: bat:1 to ev:1, bat:2 to h2.
		var lines []string
		for _, tr := range s.Trades {
			lines = append(lines, tradeLine(tr))
		}
		var sold, delivered int64
		for _, tr := range s.Trades {
			if tr.Seller != "bat" {
				t.Errorf("trade %s from %s", tr.ID, tr.Seller)
			}
			sold += tr.Wh
			delivered += tr.DeliveredWh
			// Exact share 1001/3000 of each trade: floor, or one Wh more.
			if lo := tr.Wh * 1001 / 3000; tr.DeliveredWh != lo && tr.DeliveredWh != lo+1 {
				t.Errorf("trade %s: delivered %d of %d Wh, not its pro rata share", tr.ID, tr.DeliveredWh, tr.Wh)
			}
		}
		if sold != 3000 || delivered != 1001 {
			t.Errorf("sold %d, delivered %d; want 3000, 1001\n%v", sold, delivered, lines)
		}
		// 1001/3000 of 1000 and 2000 Wh: 333.67 and 667.33; the Wh left goes
		// to the larger remainder, across the two steps.
		want := map[string]int64{testInterval + "/bat:1/ev:1": 334, testInterval + "/bat:2/h2": 667}
		if len(s.Trades) != len(want) {
			t.Errorf("trades %v, want %v", lines, want)
		}
		for _, tr := range s.Trades {
			if w, ok := want[tr.ID]; !ok || tr.DeliveredWh != w {
				t.Errorf("trade %s delivered %d, want %d (of %v)", tr.ID, tr.DeliveredWh, w, want)
			}
		}
		// One statement per participant, the steps added up.
		for _, st := range s.Participants {
			switch st.Participant {
			case "bat":
				if st.SoldWh != 3000 || st.DeliveredWh != 1001 {
					t.Errorf("bat: %s", statementLine(st))
				}
			case "ev":
				if st.BoughtWh != 1000 || st.ReceivedWh != 334 || st.GridImportWh != 666 {
					t.Errorf("ev: %s", statementLine(st))
				}
			}
		}
	}
}

// The standing limits of a participant with a curve are its most
// demanding steps: the highest of its sell steps, the lowest of its buy
// steps, clamped into [FeedIn, Retail].
func TestStandingLimitsOfSteps(t *testing.T) {
	m, book := stepsBook(t)
	book.Orders = append(book.Orders,
		auction.Order{ID: "pv:1", Participant: "pv", Side: auction.Sell, Qty: 1000, Price: 20_000}, // below FeedIn 0.05
		auction.Order{ID: "pv:2", Participant: "pv", Side: auction.Sell, Qty: 1000, Price: 40_000}, // still below
		auction.Order{ID: "b:1", Participant: "b", Side: auction.Sell, Qty: 1000, Price: 280_000},  // a battery: sell high
		auction.Order{ID: "b:2", Participant: "b", Side: auction.Sell, Qty: 1000, Price: 350_000},  // above Retail 0.30
		auction.Order{ID: "b:3", Participant: "b", Side: auction.Buy, Qty: 1000, Price: 90_000},    // buy low
		auction.Order{ID: "b:4", Participant: "b", Side: auction.Buy, Qty: 1000, Price: 60_000},
	)
	limits, def, err := StandingLimits(book, tariffs("0.30", "0.05"), m)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]Limit{
		"bat": {Sell: 140_000, Buy: 300_000}, // highest sell step; no buy: Retail
		"ev":  {Sell: 50_000, Buy: 120_000},  // lowest buy step; no sell: FeedIn
		"h2":  {Sell: 50_000, Buy: 200_000},
		"pv":  {Sell: 50_000, Buy: 300_000}, // both steps below FeedIn: FeedIn
		"b":   {Sell: 300_000, Buy: 60_000}, // 0.35 clamped to Retail
	} {
		if got := limits[p]; got != want {
			t.Errorf("%s: limits %+v, want %+v", p, got, want)
		}
	}
	if def != (Limit{Sell: 50_000, Buy: 300_000}) {
		t.Errorf("defaults %+v", def)
	}
	// The limits do not depend on the order of the steps in the book.
	slices.Reverse(book.Orders)
	again, _, err := StandingLimits(book, tariffs("0.30", "0.05"), m)
	if err != nil {
		t.Fatal(err)
	}
	for p, l := range limits {
		if again[p] != l {
			t.Errorf("%s: %+v reversed, %+v before", p, again[p], l)
		}
	}
}
