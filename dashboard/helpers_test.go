package dashboard

import (
	"strings"

	"github.com/p2pgrid/p2pgrid/dashboard/dashboardtest"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// Short names for the test ledgers of package dashboardtest.
var (
	testLedger    = dashboardtest.Ledger
	appendSettled = dashboardtest.Append
	twoIntervals  = dashboardtest.TwoIntervals
	t0            = dashboardtest.T0
)

type testTrade = dashboardtest.Trade

func testTariffs() settlement.Tariffs { return dashboardtest.Tariffs }

func replaceAll(s, old, new string) string { return strings.ReplaceAll(s, old, new) }
