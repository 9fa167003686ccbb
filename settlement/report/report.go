// Package report prints settlement statements the one way p2pgrid prints
// them: per participant and interval, then a total per participant for the
// period (settlement.Sum) and the community's totals, as a table, CSV or
// JSON lines, money rounded to the currency's minor unit or exact.
// `p2pgrid settlements` and the operator's dashboard (its CSV export)
// both write with it, so their columns and decimals are the same.
//
// It knows nothing of where the statements come from (a ledger, InfluxDB).
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/settlement"
)

// Row is one participant's statement for one interval (or, with interval
// "total", for the whole period).
type Row struct {
	Interval string
	settlement.Statement
	// Absent names the StatementFields the source did not record (InfluxDB
	// points written before a field existed); they print empty.
	Absent map[string]bool
}

// Value is the row's figure by its StatementFields name; false when the
// source did not record it.
func (r Row) Value(name string) (decimal.Decimal, bool) {
	if r.Absent[name] {
		return decimal.Decimal{}, false
	}
	v, ok := r.Fields()[name]
	return v, ok
}

// Totals sums each participant's rows over the period, exactly
// (settlement.Sum), one "total" row per participant sorted by participant.
// A figure no row recorded stays absent.
func Totals(rows []Row) []Row {
	by := map[string][]Row{}
	for _, r := range rows {
		by[r.Participant] = append(by[r.Participant], r)
	}
	var out []Row
	for _, rs := range by {
		sts := make([]settlement.Statement, len(rs))
		absent := map[string]bool{}
		for _, name := range settlement.StatementFields {
			absent[name] = true
		}
		for i, r := range rs {
			sts[i] = r.Statement
			for _, name := range settlement.StatementFields {
				if !r.Absent[name] {
					delete(absent, name)
				}
			}
		}
		out = append(out, Row{Interval: "total", Statement: settlement.Sum(sts...), Absent: absent})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Participant < out[j].Participant })
	return out
}

// Money formats an amount as the statements print it: exact, or rounded
// half to even to minor decimals (settlement.Format).
func Money(d decimal.Decimal, minor int32, exact bool) string {
	if exact {
		return d.String()
	}
	return settlement.Format(d, minor)
}

// Cell is the printed form of the row's figure col: kWh and counts as
// they are, money by Money; "" when the source did not record it.
func Cell(r Row, col string, minor int32, exact bool) string {
	v, ok := r.Value(col)
	switch {
	case !ok:
		return ""
	case strings.HasSuffix(col, "_kwh") || settlement.IsCountField(col):
		return v.String()
	}
	return Money(v, minor, exact)
}

// CSVHeader is the header of the CSV form: interval, participant, the
// StatementFields, currency.
func CSVHeader() []string {
	return append(append([]string{"interval", "participant"}, settlement.StatementFields...), "currency")
}

// Write prints rows in format "table", "csv" or "json" (one object per
// line); the table ends with the community's totals c, if given. The rows'
// money is printed as it is held, by Money: round them first
// (Statement.Rounded) unless exact.
func Write(w io.Writer, rows []Row, c *settlement.Community, format string, minor int32, exact bool, currency string) error {
	money := func(d decimal.Decimal) string { return Money(d, minor, exact) }
	cell := func(r Row, col string) string { return Cell(r, col, minor, exact) }
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for _, r := range rows {
			m := map[string]string{"interval": r.Interval, "participant": r.Participant, "currency": currency}
			for _, col := range settlement.StatementFields {
				if s := cell(r, col); s != "" {
					m[col] = s
				}
			}
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(CSVHeader())
		for _, r := range rows {
			rec := []string{r.Interval, r.Participant}
			for _, col := range settlement.StatementFields {
				rec = append(rec, cell(r, col))
			}
			cw.Write(append(rec, currency))
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "interval\tparticipant\tbought kWh\tsold kWh\tdelivered kWh\timport kWh\texport kWh\tpaid %[1]s\treceived %[1]s\tfees %[1]s\tcompensation %[1]s\tgrid %[1]s\tnet %[1]s\tsaving %[1]s\tno figures\t\n", currency)
	for _, r := range rows {
		comp := r.CompensationReceived.Sub(r.CompensationPaid)
		grid := r.GridCredit.Sub(r.GridCost)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Interval, r.Participant,
			cell(r, "bought_kwh"), cell(r, "sold_kwh"), cell(r, "delivered_kwh"), cell(r, "import_kwh"), cell(r, "export_kwh"),
			cell(r, "paid"), cell(r, "received"), cell(r, "fees"), money(comp), money(grid), cell(r, "net"), cell(r, "saving"),
			NoFigures(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c != nil {
		fmt.Fprintln(w)
		if c.MissingFigures > 0 {
			fmt.Fprintf(w, "%d participant-intervals were settled without metered figures (import and export 0, not measured)\n", c.MissingFigures)
		}
		fmt.Fprintf(w, "local exchange: possible %s kWh (per interval, the lesser of the homes' export and import), exchanged peer to peer %s kWh (%s%%)\n",
			decimal.New(c.PossibleLocalWh, -3), decimal.New(c.ExchangedWh(), -3), settlement.Format(c.ExchangeShare.Shift(2), 1))
		fmt.Fprintf(w, "community: %d intervals, consumption %s kWh, met locally %s kWh (%s%%), money kept locally %s %s\n",
			c.Intervals, decimal.New(c.ConsumptionWh, -3), decimal.New(c.ExchangedWh(), -3),
			settlement.Format(c.LocalShare.Shift(2), 1), settlement.Format(c.MoneyKeptLocally, minor), currency)
	}
	return nil
}

// NoFigures is the table's "no figures" cell: MISSING for an interval
// settled without the participant's metered figures, the number of such
// intervals in a total, "" when every figure arrived (and when the source
// does not record it).
func NoFigures(r Row) string {
	if _, ok := r.Value("missing_intervals"); !ok || r.MissingIntervals == 0 {
		return ""
	}
	if r.Interval != "total" {
		return "MISSING"
	}
	return fmt.Sprintf("%d of %d", r.MissingIntervals, r.Intervals)
}
