package clearing

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// benchCommunity returns a roster of n gateways (plus the operator) and
// each gateway's signed order for the open interval.
func benchCommunity(b *testing.B, n int) (*protocol.Roster, *auction.Market, [][]byte, []string) {
	b.Helper()
	m, _ := auction.NewMarket(auction.DefaultRules())
	members := []protocol.Member{{ID: "operator", PublicKey: key("operator").Public().(ed25519.PublicKey), Clearer: true}}
	var orders [][]byte
	var ids []string
	for i := range n {
		id := fmt.Sprintf("gw%05d", i)
		k := key(id)
		members = append(members, protocol.Member{ID: id, PublicKey: k.Public().(ed25519.PublicKey)})
		side, price := auction.Sell, int64(60_000+i%50*1000)
		if i%2 == 1 {
			side, price = auction.Buy, int64(90_000+i%70*1000)
		}
		raw, err := protocol.SignOrder(k, "c1", open, id, side, int64(100+i%2000), price, m)
		if err != nil {
			b.Fatal(err)
		}
		orders, ids = append(orders, raw), append(ids, id)
	}
	r, err := protocol.NewRoster("c1", members)
	if err != nil {
		b.Fatal(err)
	}
	return r, m, orders, ids
}

// BenchmarkClearerAccept: orders per second the clearer accepts: decode,
// verify the signature against the roster, validate, check the interval,
// replays and duplicates, store.
func BenchmarkClearerAccept(b *testing.B) {
	const n = 1000
	r, m, orders, ids := benchCommunity(b, n)
	b.ReportAllocs()
	accepted := 0
	for b.Loop() {
		c := NewClearer("operator", key("operator"), protocol.FixedRosters(r), m, sched)
		for i, raw := range orders {
			if _, _, err := c.Offer(now, ids[i], raw); err != nil {
				b.Fatal(err)
			}
		}
		accepted += n
	}
	b.ReportMetric(float64(accepted)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(accepted)*1e6, "µs/order")
}

// BenchmarkSealAndVerify: the clearer sealing a book of n orders (clear,
// sign), and one gateway verifying it (every order signature, the result
// signature, clearing the book again, comparing bytes).
func BenchmarkSealAndVerify(b *testing.B) {
	for _, n := range []int{100, 1000} {
		r, m, orders, ids := benchCommunity(b, n)
		c := NewClearer("operator", key("operator"), protocol.FixedRosters(r), m, sched)
		for i, raw := range orders {
			if _, _, err := c.Offer(now, ids[i], raw); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("seal/orders=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Seal(open); err != nil {
					b.Fatal(err)
				}
			}
		})
		s, _ := c.Seal(open)
		b.Run(fmt.Sprintf("verify/orders=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Verify(r, m, ids[0], s.Book, s.Result, orders[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
