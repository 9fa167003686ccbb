package dashboard

import "github.com/p2pgrid/p2pgrid/dashboard/dashboardtest"

// Short names for the test ledgers of package dashboardtest.
var (
	testLedger    = dashboardtest.Ledger
	appendSettled = dashboardtest.Append
	twoIntervals  = dashboardtest.TwoIntervals
	t0            = dashboardtest.T0
)

type testTrade = dashboardtest.Trade
