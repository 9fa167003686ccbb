package dashboard

import (
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

func TestOrderRows(t *testing.T) {
	v1 := &protocol.OrderMsg{Gateway: "home1", Side: auction.Sell, KWh: "1.234", Price: "0.12"}
	v2 := &protocol.OrderMsg{Gateway: "home2", Steps: []protocol.OrderStep{
		{Side: auction.Buy, KWh: "1", Price: "0.25"}, {Side: auction.Buy, KWh: "3", Price: "0.12"}}}
	got := append(orderRows(v1), orderRows(v2)...)
	want := []orderRow{{"home1", "sell", "1.234", "0.12"}, {"home2:1", "buy", "1", "0.25"}, {"home2:2", "buy", "3", "0.12"}}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %v, want %v", i, got[i], want[i])
		}
	}
}
