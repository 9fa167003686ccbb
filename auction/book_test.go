package auction

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// TestCheckUniqueNamesFirstRepeat: CheckBook names the first order, in book
// order, whose id an earlier order has, whatever the ids' hashes (drawn
// from a small pool, ids repeat often; a long run of one id is one group
// of equal hashes).
func TestCheckUniqueNamesFirstRepeat(t *testing.T) {
	m := defaultTestMarket(t)
	rapid.Check(t, func(t *rapid.T) {
		pool := rapid.IntRange(1, 5000).Draw(t, "pool")
		n := rapid.IntRange(0, 3000).Draw(t, "orders")
		b := Book{Orders: make([]Order, n)}
		for i := range b.Orders {
			id := fmt.Sprintf("o%d", rapid.IntRange(0, pool-1).Draw(t, "id"))
			b.Orders[i] = Order{ID: id, Participant: "p", Side: Buy, Qty: 1, Price: 1}
		}
		want := -1
		seen := make(map[string]bool)
		for i, o := range b.Orders {
			if seen[o.ID] {
				want = i
				break
			}
			seen[o.ID] = true
		}
		err := m.CheckBook(b)
		var oe *OrderError
		switch {
		case want < 0 && err != nil:
			t.Fatalf("ids are unique, CheckBook: %v", err)
		case want >= 0 && (!errors.As(err, &oe) || !errors.Is(err, ErrDuplicateID) || oe.Index != want || oe.ID != b.Orders[want].ID):
			t.Fatalf("first repeat is #%d %q, CheckBook: %v", want, b.Orders[want].ID, err)
		}
	})
}

func TestCheckUniqueOneIDThroughout(t *testing.T) {
	b := Book{Orders: make([]Order, 100_000)}
	for i := range b.Orders {
		b.Orders[i] = Order{ID: "same", Participant: "p", Side: Sell, Qty: 1, Price: 1}
	}
	var oe *OrderError
	if err := defaultTestMarket(t).CheckBook(b); !errors.As(err, &oe) || oe.Index != 1 || !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("CheckBook = %v, want order #1 a duplicate", err)
	}
}
