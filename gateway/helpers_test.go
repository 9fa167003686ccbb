package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/p2pgrid/p2pgrid/auction"
)

const auctionBuy = auction.Buy

// counter reads one labelled counter of a gateway's metrics.
func counter(t *testing.T, g *Gateway, name, label string) float64 {
	t.Helper()
	switch name {
	case "p2pgrid_clearer_orders_rejected_total":
		return testutil.ToFloat64(g.metrics.ordersRejected.WithLabelValues(label))
	case "p2pgrid_orders_skipped_total":
		return testutil.ToFloat64(g.metrics.ordersSkipped.WithLabelValues(label))
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func testutilCount(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
