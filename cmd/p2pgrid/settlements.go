package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/influx"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// statementRow is one participant's statement for one interval (or, with
// interval "total", for the whole period).
type statementRow struct {
	Interval string
	settlement.Statement
	// absent names the StatementFields the source did not record (InfluxDB
	// points written before a field existed); they print empty.
	absent map[string]bool
}

// value is the row's figure by its StatementFields name; false when the
// source did not record it.
func (r statementRow) value(name string) (decimal.Decimal, bool) {
	if r.absent[name] {
		return decimal.Decimal{}, false
	}
	v, ok := r.Fields()[name]
	return v, ok
}

func newSettlementsCmd() *cobra.Command {
	var (
		ledgerDir, format, participant, from, to string
		iopts                                    influx.Options
		minor                                    int32
		exact                                    bool
		currency                                 string
	)
	cmd := &cobra.Command{
		Use:   "settlements (--ledger DIR | --influx URL [--org O] --bucket B [--token T]) [flags]",
		Short: "Print settlement statements from a gateway's ledger or from InfluxDB",
		Long: `Print settlement statements: per participant and interval, what was bought and
sold peer to peer, delivered, metered, paid and received, fees, compensation for
missing energy, the grid's part, the net result and the saving against a
grid-only baseline; then a total per participant for the period and the
community's totals. A participant settled without its metered figures (they
did not arrive by settlement) is marked MISSING in the table ("no figures";
a total says how many of its intervals), and the csv and json fields
intervals and missing_intervals count them.

Money is exact in the ledger; statements round it to the currency's minor unit
(--minor, default 2 decimals) half to even (docs/settlement.md). --exact prints
the exact amounts.

The source is a gateway's ledger (its data_dir/ledger, the source of truth) or
InfluxDB, 2.x (org, bucket, token) or 1.8 (bucket "database/retention-policy",
token "user:password" or empty).`,
		Example: `  p2pgrid settlements --ledger /var/lib/p2pgrid/ledger
  p2pgrid settlements --ledger /tmp/p2pgrid-demo-1/operator/ledger --participant home1 --format csv
  p2pgrid settlements --influx http://127.0.0.1:8086 --bucket p2pgrid/ --from 2026-11-22T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (ledgerDir == "") == (iopts.URL == "") {
				return badInput(errors.New("give exactly one source: --ledger DIR or --influx URL"))
			}
			if format != "table" && format != "csv" && format != "json" {
				return badInput(fmt.Errorf("--format: unknown format %q (want table, csv or json)", format))
			}
			fromT, toT, err := timeRange(from, to)
			if err != nil {
				return badInput(err)
			}
			var rows []statementRow
			var community *settlement.Community
			recorded := ""
			if ledgerDir != "" {
				rows, community, recorded, err = ledgerStatements(ledgerDir, fromT, toT, participant)
			} else {
				rows, err = influxStatements(cmd.Context(), iopts, fromT, toT, participant)
			}
			if err != nil {
				return badInput(err)
			}
			if currency != "" && !config.ValidCurrency(currency) {
				return badInput(fmt.Errorf("--currency: %q is not an ISO 4217 currency code (three capital letters, as EUR)", currency))
			}
			if currency == "" {
				currency = recorded
			}
			if currency == "" {
				currency = config.DefaultCurrency
			}
			rows = append(rows, totals(rows)...)
			if !exact {
				for i := range rows {
					rows[i].Statement = rows[i].Rounded(minor)
				}
			}
			return writeStatements(cmd.OutOrStdout(), rows, community, format, minor, exact, currency)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ledgerDir, "ledger", "", "a gateway's ledger directory (data_dir/ledger)")
	f.StringVar(&iopts.URL, "influx", "", "InfluxDB URL")
	f.StringVar(&iopts.Org, "org", "", "InfluxDB 2.x organisation")
	f.StringVar(&iopts.Bucket, "bucket", "", `InfluxDB 2.x bucket, or 1.8 "database/retention-policy"`)
	f.StringVar(&iopts.Token, "token", "", `InfluxDB 2.x token, or 1.8 "user:password"`)
	f.StringVar(&from, "from", "", "first interval to include, RFC 3339 (default: all)")
	f.StringVar(&to, "to", "", "include intervals starting before this time, RFC 3339 (default: all)")
	f.StringVar(&participant, "participant", "", "only this participant (gateway id)")
	f.StringVar(&format, "format", "table", "output format: table, csv or json (one object per line)")
	f.Int32Var(&minor, "minor", 2, "decimals of the currency's minor unit for rounding money")
	f.BoolVar(&exact, "exact", false, "print exact amounts, unrounded")
	f.StringVar(&currency, "currency", "", "the currency money is in (ISO 4217 code); default: as the ledger records it (market.currency), else "+config.DefaultCurrency)
	return cmd
}

func timeRange(from, to string) (time.Time, time.Time, error) {
	var f, t time.Time
	var err error
	if from != "" {
		if f, err = time.Parse(time.RFC3339, from); err != nil {
			return f, t, fmt.Errorf("--from: %w", err)
		}
	}
	if to != "" {
		if t, err = time.Parse(time.RFC3339, to); err != nil {
			return f, t, fmt.Errorf("--to: %w", err)
		}
	} else {
		t = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return f, t, nil
}

// ledgerStatements reads the settled intervals from a ledger, read-only.
// currency is the currency the ledger's latest clearing record names ("" if
// none does).
func ledgerStatements(dir string, from, to time.Time, participant string) (rows []statementRow, c *settlement.Community, currency string, err error) {
	// A torn last record (a crash, or an append under way) is cut by the
	// gateway on its next start; the records before it are intact and are
	// read. Anything else broken in the chain is an error.
	var settled []*settlement.IntervalSettlement
	_, err = ledger.Scan(dir, 1, func(r ledger.Record) error {
		switch r.Kind {
		case record.KindClearing:
			if c, err := record.DecodeClearing(r.Data); err == nil && c.Currency != "" {
				currency = c.Currency
			}
		case record.KindInterval:
			v, err := record.Decode(r)
			if err != nil {
				return err
			}
			s := v.(*settlement.IntervalSettlement)
			at, err := market.ParseIntervalLoose(s.Interval)
			if err != nil || at.Before(from) || !at.Before(to) {
				return nil
			}
			settled = append(settled, s)
			for _, p := range s.Participants {
				if participant == "" || p.Participant == participant {
					rows = append(rows, statementRow{Interval: s.Interval, Statement: p})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, "", err
	}
	totals := settlement.CommunityTotals(settled...)
	return rows, &totals, currency, nil
}

func influxStatements(ctx context.Context, o influx.Options, from, to time.Time, participant string) ([]statementRow, error) {
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	if to.Year() == 9999 {
		to = time.Now().Add(24 * time.Hour)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := influx.Settlements(ctx, o, from, to, participant)
	if err != nil {
		return nil, err
	}
	var rows []statementRow
	for _, r := range res {
		rs, err := r.Statement()
		if err != nil {
			return nil, err
		}
		st, err := rs.Settlement()
		if err != nil {
			return nil, fmt.Errorf("influx: %w", err)
		}
		row := statementRow{Interval: r.Interval, Statement: st, absent: map[string]bool{}}
		for _, name := range settlement.StatementFields {
			row.absent[name] = true
		}
		for _, f := range rs.Figures() {
			delete(row.absent, f.Name)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// totals sums each participant's rows over the period, exactly
// (settlement.Sum). A figure no row recorded stays absent.
func totals(rows []statementRow) []statementRow {
	by := map[string][]statementRow{}
	for _, r := range rows {
		by[r.Participant] = append(by[r.Participant], r)
	}
	var out []statementRow
	for _, rs := range by {
		sts := make([]settlement.Statement, len(rs))
		absent := map[string]bool{}
		for _, name := range settlement.StatementFields {
			absent[name] = true
		}
		for i, r := range rs {
			sts[i] = r.Statement
			for _, name := range settlement.StatementFields {
				if !r.absent[name] {
					delete(absent, name)
				}
			}
		}
		out = append(out, statementRow{Interval: "total", Statement: settlement.Sum(sts...), absent: absent})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Participant < out[j].Participant })
	return out
}

func writeStatements(w io.Writer, rows []statementRow, c *settlement.Community, format string, minor int32, exact bool, currency string) error {
	money := func(d decimal.Decimal) string {
		if exact {
			return d.String()
		}
		return settlement.Format(d, minor)
	}
	cell := func(r statementRow, col string) string {
		v, ok := r.value(col)
		switch {
		case !ok:
			return ""
		case strings.HasSuffix(col, "_kwh") || settlement.IsCountField(col):
			return v.String()
		}
		return money(v)
	}
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
		cw.Write(append(append([]string{"interval", "participant"}, settlement.StatementFields...), "currency"))
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
			noFigures(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c != nil {
		fmt.Fprintln(w)
		if c.MissingFigures > 0 {
			fmt.Fprintf(w, "%d participant-intervals were settled without metered figures (import and export 0, not measured)\n", c.MissingFigures)
		}
		fmt.Fprintf(w, "local exchange: possible %s kWh (per interval, the lesser of the homes' export and import), delivered peer to peer %s kWh (%s%%)\n",
			decimal.New(c.PossibleLocalWh, -3), decimal.New(c.LocalWh, -3), settlement.Format(c.ExchangeShare.Shift(2), 1))
		fmt.Fprintf(w, "community: %d intervals, consumption %s kWh, met locally %s kWh (%s%%), money kept locally %s %s\n",
			c.Intervals, decimal.New(c.ConsumptionWh, -3), decimal.New(c.LocalWh, -3),
			settlement.Format(c.LocalShare.Shift(2), 1), settlement.Format(c.MoneyKeptLocally, minor), currency)
	}
	return nil
}

// noFigures is the table's "no figures" cell: MISSING for an interval
// settled without the participant's metered figures, the number of such
// intervals in a total, "" when every figure arrived (and when the source
// does not record it).
func noFigures(r statementRow) string {
	if _, ok := r.value("missing_intervals"); !ok || r.MissingIntervals == 0 {
		return ""
	}
	if r.Interval != "total" {
		return "MISSING"
	}
	return fmt.Sprintf("%d of %d", r.MissingIntervals, r.Intervals)
}
