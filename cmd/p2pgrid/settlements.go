package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/influx"
	"github.com/p2pgrid/p2pgrid/settlement/report"
)

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
			var rows []report.Row
			var community *settlement.Community
			recorded := ""
			if ledgerDir != "" {
				rows, community, recorded, err = report.FromLedger(ledgerDir, fromT, toT, participant)
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
			rows = append(rows, report.Totals(rows)...)
			if !exact {
				for i := range rows {
					rows[i].Statement = rows[i].Rounded(minor)
				}
			}
			return report.Write(cmd.OutOrStdout(), rows, community, format, minor, exact, currency)
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

func influxStatements(ctx context.Context, o influx.Options, from, to time.Time, participant string) ([]report.Row, error) {
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
	var rows []report.Row
	for _, r := range res {
		rs, err := r.Statement()
		if err != nil {
			return nil, err
		}
		st, err := rs.Settlement()
		if err != nil {
			return nil, fmt.Errorf("influx: %w", err)
		}
		row := report.Row{Interval: r.Interval, Statement: st, Absent: map[string]bool{}}
		for _, name := range settlement.StatementFields {
			row.Absent[name] = true
		}
		for _, f := range rs.Figures() {
			delete(row.Absent, f.Name)
		}
		rows = append(rows, row)
	}
	return rows, nil
}
