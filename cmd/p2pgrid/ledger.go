package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
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

Each line is checked on its own (canonical form, its hash); the chain between
records is not: use "p2pgrid ledger verify" for that. A bad line stops the
listing with an error naming it (exit status 2); a torn last line left by a
crash is skipped with a note on stderr.`,
		Example: `  p2pgrid ledger show /var/lib/p2pgrid/ledger
  p2pgrid ledger show /var/lib/p2pgrid/ledger --from 1200 --kind trade
  p2pgrid ledger show ./data/ledger --kind settlement | jq -c .data`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return showLedger(args[0], from, kind, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 1, "first sequence number to print")
	cmd.Flags().StringVar(&kind, "kind", "", "print only records of this kind, e.g. trade (default all)")
	return cmd
}

func showLedger(dir string, from uint64, kind string, stdout, stderr io.Writer) error {
	f, err := os.Open(filepath.Join(dir, ledger.FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return badInput(fmt.Errorf("%s: no ledger here (%s missing)", dir, ledger.FileName))
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				fmt.Fprintf(stderr, "%s: line %d: incomplete last line (%d bytes) skipped: a torn write\n", dir, n, len(line))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: line %d: %w", dir, n, err)
		}
		body := line[:len(line)-1]
		r, err := ledger.ParseRecord(body)
		if err != nil {
			if _, perr := br.Peek(1); perr == io.EOF {
				fmt.Fprintf(stderr, "%s: line %d: bad last record skipped: %v\n", dir, n, err)
				return nil
			}
			return badInput(fmt.Errorf("%s: line %d: %w (run 'p2pgrid ledger verify %s')", dir, n, err, dir))
		}
		if r.Seq < from || (kind != "" && r.Kind != kind) {
			continue
		}
		if _, err := out.Write(line); err != nil {
			return err
		}
	}
}
