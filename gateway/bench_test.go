package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
)

// BenchmarkGateClosureToResult measures, on loopback through the embedded
// broker, the time from gate closure (the clearer seals a book of one
// order per gateway) to the result having arrived at every gateway's MQTT
// client; with verify, until every gateway has also verified it
// (signatures, clearing, byte comparison). All gateways share this
// machine's 2 cores; on a real community each verifies on its own Pi.
func BenchmarkGateClosureToResult(b *testing.B) {
	for _, tc := range []struct {
		n      int
		verify bool
	}{{100, false}, {100, true}, {1000, false}} {
		name := fmt.Sprintf("gateways=%d", tc.n)
		if tc.verify {
			name += "/verify"
		}
		b.Run(name, func(b *testing.B) { benchGateClosure(b, tc.n, tc.verify) })
	}
}

func benchGateClosure(b *testing.B, n int, verify bool) {
	brk, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer brk.Close()
	m, _ := auction.NewMarket(auction.DefaultRules())
	sched := market.Calendar{Interval: 15 * time.Minute, GateClosure: 2 * time.Minute}
	now := time.Date(2026, 11, 22, 12, 5, 0, 0, time.UTC)
	interval := market.IntervalID(sched.Open(now))
	members := []protocol.Member{{ID: "operator", PublicKey: testKey("operator").Public().(ed25519.PublicKey), Clearer: true}}
	var orders [][]byte
	var ids []string
	for i := range n {
		id := fmt.Sprintf("gw%04d", i)
		side, price := auction.Sell, int64(60_000+i%50*1000)
		if i%2 == 1 {
			side, price = auction.Buy, int64(90_000+i%70*1000)
		}
		raw, err := protocol.SignOrder(testKey(id), "c1", interval, id, side, int64(100+i%2000), price, m)
		if err != nil {
			b.Fatal(err)
		}
		members = append(members, protocol.Member{ID: id, PublicKey: testKey(id).Public().(ed25519.PublicKey)})
		orders, ids = append(orders, raw), append(ids, id)
	}
	roster, err := protocol.NewRoster("c1", members)
	if err != nil {
		b.Fatal(err)
	}
	topics, _ := protocol.NewTopics("c1")
	ctx := context.Background()

	// n gateways' MQTT clients, each keeping the book and counting results.
	var arrived atomic.Int64
	var books = make([]atomic.Pointer[[]byte], n)
	for i := range n {
		c, err := mqtt.Connect(ctx, mqtt.Options{Broker: brk.URL(), ClientID: ids[i]})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		c.Subscribe(topics.Book(interval), func(_ string, p []byte) { books[i].Store(&p) })
		c.Subscribe(topics.Result(interval), func(_ string, p []byte) {
			if verify {
				for books[i].Load() == nil {
					time.Sleep(time.Millisecond)
				}
				if _, err := clearing.Verify(roster, m, ids[i], *books[i].Load(), p, orders[i]); err != nil {
					panic(err)
				}
			}
			arrived.Add(1)
		})
	}
	pub, err := mqtt.Connect(ctx, mqtt.Options{Broker: brk.URL(), ClientID: "operator"})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()

	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := clearing.NewClearer("operator", testKey("operator"), protocol.FixedRosters(roster), m, sched)
		for k, raw := range orders {
			if _, _, err := c.Offer(now, ids[k], raw); err != nil {
				b.Fatal(err)
			}
		}
		arrived.Store(0)
		b.StartTimer()
		start := time.Now()
		s, err := c.Seal(interval)
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.Publish(ctx, topics.Book(interval), s.Book, false); err != nil {
			b.Fatal(err)
		}
		if err := pub.Publish(ctx, topics.Result(interval), s.Result, false); err != nil {
			b.Fatal(err)
		}
		for arrived.Load() < int64(n) {
			time.Sleep(100 * time.Microsecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/interval")
}
