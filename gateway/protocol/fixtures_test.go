package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
)

// Fixed keys and a fixed community, so that tests and the documented
// examples are reproducible: Ed25519 signing is deterministic.

const (
	testCommunity = "c1"
	testInterval  = "2026-11-22T12:15Z"
)

// testKey returns the fixed key of a gateway name.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("p2pgrid example key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func testPub(name string) ed25519.PublicKey { return testKey(name).Public().(ed25519.PublicKey) }

// testMarket is the default market: kWh to 3 decimals, prices to 6.
var testMarket = func() *auction.Market {
	m, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		panic(err)
	}
	return m
}()

// newTestRoster is community's roster of home1 (the clearer), home2 and
// home3, with their fixed keys.
func newTestRoster(t testing.TB, community string) *Roster {
	t.Helper()
	r, err := NewRoster(community, []Member{
		{ID: "home3", PublicKey: testPub("home3")},
		{ID: "home1", PublicKey: testPub("home1"), Clearer: true},
		{ID: "home2", PublicKey: testPub("home2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testOrder is one order of the example interval.
type testOrder struct {
	gateway    string
	side       auction.Side
	qty, price int64 // quanta (Wh) and ticks (10^-6 per kWh)
}

// exampleOrders are the orders of the example interval: home1 sells
// 1.234 kWh at 0.12, home2 buys 2 kWh at 0.15, home3 sells 0.8 kWh at 0.10.
var exampleOrders = []testOrder{
	{"home1", auction.Sell, 1234, 120000},
	{"home2", auction.Buy, 2000, 150000},
	{"home3", auction.Sell, 800, 100000},
}

// sign signs o for the example community and interval with the gateway's
// own key.
func sign(t testing.TB, o testOrder) []byte {
	t.Helper()
	data, err := SignOrder(testKey(o.gateway), testCommunity, testInterval, o.gateway, o.side, o.qty, o.price, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// exampleBook seals the example orders, given in reverse order.
func exampleBook(t testing.TB) []byte {
	t.Helper()
	var orders [][]byte
	for i := len(exampleOrders) - 1; i >= 0; i-- {
		orders = append(orders, sign(t, exampleOrders[i]))
	}
	book, err := EncodeBook(testCommunity, testInterval, "home1", orders)
	if err != nil {
		t.Fatal(err)
	}
	return book
}

// exampleResult clears the example book and returns the auction result's
// JSON and the signed result message.
func exampleResult(t testing.TB) (result, msg []byte) {
	t.Helper()
	b, err := DecodeBook(exampleBook(t))
	if err != nil {
		t.Fatal(err)
	}
	book, err := b.Verify(newTestRoster(t, testCommunity), testMarket)
	if err != nil {
		t.Fatal(err)
	}
	r, err := testMarket.Clear(book)
	if err != nil {
		t.Fatal(err)
	}
	result, err = r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	msg, err = EncodeResult(testKey("home1"), testCommunity, testInterval, "home1", result)
	if err != nil {
		t.Fatal(err)
	}
	return result, msg
}

func exampleTelemetry() *Telemetry {
	grid, pv := -1234.5, 3000.0
	imp, exp := int64(1520340), int64(2210890)
	return &Telemetry{
		Gateway: "home1", Time: time.Date(2026, 11, 22, 12, 16, 5, 0, time.UTC),
		GridW: &grid, PVW: &pv, ImportWh: &imp, ExportWh: &exp,
	}
}

func exampleStatusOnline() *Status {
	return &Status{
		Gateway: "home2", State: StateOnline, Version: "v0.4.0",
		Time: time.Date(2026, 11, 22, 12, 31, 10, 0, time.UTC),
		Alarms: []Alarm{{
			Interval: "2026-11-22T12:00Z", Kind: AlarmMismatch,
			Detail: "the published result differs from this gateway's clearing of the published book",
		}},
		Verified: []Verification{
			{Interval: "2026-11-22T12:15Z", Clearing: VerdictOK},
			{Interval: "2026-11-22T12:00Z", Clearing: AlarmMismatch},
			{Interval: "2026-11-22T11:45Z", Clearing: VerdictOK, Settlement: VerdictOK},
		},
	}
}

// exampleStatusOffline is home1's last will, set when it connected.
func exampleStatusOffline() *Status {
	return &Status{
		Gateway: "home1", State: StateOffline, Version: "v0.4.0",
		Time: time.Date(2026, 11, 22, 8, 2, 41, 0, time.UTC),
	}
}

// sigOf returns the base64 signature of an order message.
func sigOf(t testing.TB, data []byte) string {
	t.Helper()
	msg, err := DecodeOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(msg.Sig)
}

// wantReason fails t unless err is a *RejectError with the reason.
func wantReason(t *testing.T, err error, want RejectReason) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejection %q", want)
	}
	if got := ReasonOf(err); got != want {
		t.Fatalf("reason %q, want %q; error: %v", got, want, err)
	}
}
