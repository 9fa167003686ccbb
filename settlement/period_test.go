package settlement

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
)

func TestSum(t *testing.T) {
	s := settleOrFail(t, workedExample)
	h4 := s.Participants[2]
	if h4.Participant != "h4" {
		t.Fatalf("participant 2 is %s", h4.Participant)
	}
	missing := settleOrFail(t, settleCases[5]) // "missing metered figures": h4 flagged
	m4 := missing.Participants[1]
	if m4.Participant != "h4" || m4.MissingIntervals != 1 {
		t.Fatalf("missing case: %s", statementLine(m4))
	}
	// Worked example h4 + missing-figures h4, field by field:
	// b 1500+1000, r 1200+0, i 2000+0, gi 800+0, imb -500+1000;
	// paid 0.18+0, fees 0.012+0, crecv 0.045+0.15, gcost 0.24+0,
	// net -0.387+0.15, base -0.6+0, save 0.213+0.15.
	want := "h4 n=2 miss=1 | b=2500 s=0 r=1200 d=0 i=2000 e=0 gi=800 ge=0 sp=0 imb=500 | " +
		"paid=0.18 recv=0 fees=0.012 cpaid=0 crecv=0.195 gcost=0.24 gcred=0 | net=-0.237 base=-0.6 save=0.363"
	if got := statementLine(Sum(h4, m4)); got != want {
		t.Errorf("Sum:\n got %s\nwant %s", got, want)
	}
	if got := Sum(h4, s.Participants[0]); got.Participant != "" || got.Intervals != 2 {
		t.Errorf("Sum of two participants: participant %q, intervals %d", got.Participant, got.Intervals)
	}
	if got := Sum(s.Participants[0], h4, s.Participants[0]); got.Participant != "" {
		t.Errorf("Sum of mixed participants, first and last equal: participant %q", got.Participant)
	}
	if got := statementLine(Sum()); got != statementLine(Statement{}) {
		t.Errorf("Sum() = %s", got)
	}
}

func TestCommunityTotals(t *testing.T) {
	worked := settleOrFail(t, workedExample)
	noTrade := settleOrFail(t, settleCases[6])
	missing := settleOrFail(t, settleCases[5])
	exportsOnly := settleOrFail(t, settleCase{result: buildResult("0", "0"), tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h1", ExportWh: 800}}})
	importsOnly := settleOrFail(t, settleCase{result: buildResult("0", "0"), tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h4", ImportWh: 1200}}})
	if settleCases[6].name != "no trade" || settleCases[5].name != "missing metered figures" {
		t.Fatal("settleCases reordered")
	}
	cases := []struct {
		name string
		in   []*IntervalSettlement
		want Community
	}{
		{
			// Consumption 2000+1200+700 = 3900, delivered 1200+400+1000 =
			// 2600 of which h5 spilled 200: share 2400/3900 = 0.6153846...
			// Export 1600+1300 = 2900 < import 3900: possible 2900, exchange
			// share (2600 delivered - 200 spilled)/2900 = 0.82758620... -> 0.827586.
			name: "worked example",
			in:   []*IntervalSettlement{worked},
			want: Community{Intervals: 1, Participants: 5, ConsumptionWh: 3900, ExportWh: 2900, TradedWh: 3000,
				LocalWh: 2600, MissingWh: 400, SpilledWh: 200, GridImportWh: 1500, GridExportWh: 500,
				LocalShare: dec("0.615385"), PossibleLocalWh: 2900, ExchangeShare: dec("0.827586"), MoneyKeptLocally: dec("0.39"), Compensation: dec("0.06"),
				Fees: dec("0.026"), Grid: dec("0.425"), Saving: dec("0.574")},
		},
		{
			// Adds h1 exporting 800 and h4 importing 1200 without trading,
			// and the missing-figures interval (h1, h4 flagged; h6 500 Wh);
			// nil is skipped. Share (2600+0-200)/(3900+1200+500) = 2400/5600
			// = 0.428571428... -> 0.428571. Possible per interval:
			// min(2900, 3900) + min(800, 1200) + min(0, 500) = 2900 + 800 +
			// 0 = 3700; exchange share
			// (2600 - 200)/3700 = 0.6486486... -> 0.648649.
			name: "three intervals",
			in:   []*IntervalSettlement{worked, nil, noTrade, missing},
			want: Community{Intervals: 3, Participants: 5, MissingFigures: 2, ConsumptionWh: 5600, ExportWh: 3700,
				TradedWh: 4000, LocalWh: 2600, MissingWh: 1400, SpilledWh: 200, GridImportWh: 3200, GridExportWh: 1300,
				LocalShare: dec("0.428571"), PossibleLocalWh: 3700, ExchangeShare: dec("0.648649"), MoneyKeptLocally: dec("0.39"), Compensation: dec("0.21"),
				Fees: dec("0.026"), Grid: dec("0.895"), Saving: dec("0.574")},
		},
		{
			// No trade: in the first interval h1 exports 800 and nobody
			// imports, in the second h4 imports 1200 and nobody exports.
			// Nothing could have gone next door: possible min(800, 0) +
			// min(0, 1200) = 0 (over the period, min(800, 1200) would be
			// 800), exchange share 0. Grid: 1200*0.30 - 800*0.05 = 0.32.
			name: "per interval, not over the period",
			in:   []*IntervalSettlement{exportsOnly, importsOnly},
			want: Community{Intervals: 2, Participants: 2, ConsumptionWh: 1200, ExportWh: 800,
				GridImportWh: 1200, GridExportWh: 800, LocalShare: dec("0"), PossibleLocalWh: 0,
				ExchangeShare: dec("0"), Grid: dec("0.32")},
		},
		{name: "nothing", in: nil, want: Community{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CommunityTotals(c.in...)
			if g, w := communityLine(got), communityLine(c.want); g != w {
				t.Errorf("\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestRatioHalfEven(t *testing.T) {
	cases := []struct {
		num, den int64
		places   int32
		want     string
	}{
		{1, 8, 2, "0.12"}, // 0.125: tie to even
		{3, 8, 2, "0.38"}, // 0.375: tie to even
		{1, 3, 6, "0.333333"},
		{2, 3, 6, "0.666667"},
		{5, 5, 6, "1"},
		{0, 5, 6, "0"},
		{7, 0, 6, "0"},
	}
	for _, c := range cases {
		if got := canonical(ratioHalfEven(c.num, c.den, c.places)); got != c.want {
			t.Errorf("ratioHalfEven(%d, %d, %d) = %s, want %s", c.num, c.den, c.places, got, c.want)
		}
	}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// communityLine prints a Community with its decimals in shortest form.
func communityLine(c Community) string {
	return fmt.Sprintf("n=%d p=%d missing=%d cons=%d exp=%d traded=%d local=%d missingWh=%d spilled=%d gi=%d ge=%d share=%s possible=%d exchange=%s kept=%s comp=%s fees=%s grid=%s saving=%s",
		c.Intervals, c.Participants, c.MissingFigures, c.ConsumptionWh, c.ExportWh, c.TradedWh, c.LocalWh, c.MissingWh,
		c.SpilledWh, c.GridImportWh, c.GridExportWh, canonical(c.LocalShare), c.PossibleLocalWh, canonical(c.ExchangeShare),
		canonical(c.MoneyKeptLocally),
		canonical(c.Compensation), canonical(c.Fees), canonical(c.Grid), canonical(c.Saving))
}

// TestFieldsSayWhatWasMissing: the figures every consumer prints or stores
// carry the missing-figures flag, and Fields has exactly StatementFields.
func TestFieldsSayWhatWasMissing(t *testing.T) {
	missing := settleOrFail(t, settleCases[5]) // "missing metered figures": h4 flagged
	for _, st := range missing.Participants {
		f := st.Fields()
		if len(f) != len(StatementFields) {
			t.Errorf("%s: %d fields, StatementFields has %d", st.Participant, len(f), len(StatementFields))
		}
		for _, name := range StatementFields {
			if _, ok := f[name]; !ok {
				t.Errorf("%s: Fields lacks %q", st.Participant, name)
			}
		}
		want := "0"
		if st.MissingIntervals == 1 {
			want = "1"
		}
		if got := f["missing_intervals"].String(); got != want || f["intervals"].String() != "1" {
			t.Errorf("%s (MissingIntervals %d): missing_intervals %s, intervals %s; want %s and 1",
				st.Participant, st.MissingIntervals, got, f["intervals"], want)
		}
	}
	if m4 := missing.Participants[1]; m4.Participant != "h4" || m4.Fields()["missing_intervals"].String() != "1" {
		t.Fatalf("h4, settled without figures, is not flagged: %v", m4.Fields())
	}
	var counts []string
	for _, name := range StatementFields {
		if IsCountField(name) {
			counts = append(counts, name)
		}
	}
	if fmt.Sprint(counts) != fmt.Sprint(StatementCountFields) {
		t.Errorf("IsCountField picks %v of StatementFields, StatementCountFields is %v", counts, StatementCountFields)
	}
}
