package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Check and inspect the local settlement ledger",
		Long: `The ledger is the gateway's tamper-evident, append-only record of clearings,
trades, metered deliveries and settlements: DIR/ledger.jsonl, one JSON record
per line, each carrying the SHA-256 of the one before (docs/ledger.md).

These commands only read the ledger; they are safe to run while the gateway
is writing to it.`,
	}
	cmd.AddCommand(newLedgerVerifyCmd(), newLedgerShowCmd())
	return cmd
}

func newLedgerVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check the whole hash chain of a ledger",
		Long: `Verify reads every record of DIR/ledger.jsonl and checks that each line is in
canonical form with a correct hash, that sequence numbers run 1, 2, 3, ...,
that each record's prev is the hash of the record before, and that no
(kind, key) repeats. It changes nothing.

Exit status: 0 and "DIR: N records, chain intact" if all is well; 2 with the
first bad record named if not (a torn last record, which the gateway cuts
when it next opens the ledger, is reported too); 1 on an I/O error.`,
		Example: `  p2pgrid ledger verify /var/lib/p2pgrid/ledger
  p2pgrid ledger verify ./data/ledger && echo intact`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			n, err := ledger.Verify(dir)
			var ve *ledger.VerifyError
			switch {
			case errors.As(err, &ve):
				return badInput(fmt.Errorf("%s: %d records intact, then %w", dir, n, err))
			case errors.Is(err, fs.ErrNotExist):
				return badInput(fmt.Errorf("%s: no ledger here (%s missing)", dir, ledger.FileName))
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d records, chain intact\n", dir, n)
			return nil
		},
	}
}

func newLedgerShowCmd() *cobra.Command {
	var from uint64
	var kind string
	cmd := &cobra.Command{
		Use:   "show DIR",
		Short: "Print ledger records as JSON lines",
		Long: `Show prints the records of DIR/ledger.jsonl, one JSON object per line exactly
as stored: {"seq":..,"time":..,"kind":..,"key":..,"data":{..},"prev":..,"hash":..}.
The kinds, and the shape of each one's data, are in docs/ledger.md: clearing,
trade, settlement (a participant's statement), interval (the whole settlement)
and reading.

Every line is checked as "p2pgrid ledger verify" checks it (canonical form,
its hash, the chain to the record before). A bad line stops the listing with
an error naming it (exit status 2); a torn last line left by a crash is
skipped with a note on stderr.`,
		Example: `  p2pgrid ledger show /var/lib/p2pgrid/ledger
  p2pgrid ledger show /var/lib/p2pgrid/ledger --from 1200 --kind trade
  p2pgrid ledger show ./data/ledger --kind settlement | jq -c .data`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "" {
				if err := record.CheckKind(kind); err != nil {
					return badInput(fmt.Errorf("--kind: %w", err))
				}
			}
			return showLedger(args[0], from, kind, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 1, "first sequence number to print")
	cmd.Flags().StringVar(&kind, "kind", "", "print only records of this kind: "+strings.Join(record.Kinds, ", ")+" (default all)")
	return cmd
}

func showLedger(dir string, from uint64, kind string, stdout, stderr io.Writer) error {
	out := bufio.NewWriterSize(stdout, 256<<10)
	torn, err := ledger.Scan(dir, from, func(r ledger.Record) error {
		if kind != "" && r.Kind != kind {
			return nil
		}
		out.Write(r.Line())
		return out.WriteByte('\n')
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	var ve *ledger.VerifyError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return badInput(fmt.Errorf("%s: no ledger here (%s missing)", dir, ledger.FileName))
	case errors.As(err, &ve):
		return badInput(fmt.Errorf("%s: %w (run 'p2pgrid ledger verify %s')", dir, err, dir))
	case err != nil:
		return err
	}
	if torn != nil {
		fmt.Fprintf(stderr, "%s: bad last %s skipped: a torn write, which the gateway cuts when it next opens the ledger\n", dir, torn)
	}
	return nil
}
