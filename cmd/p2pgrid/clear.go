package main

import (
	"fmt"
	"io"
	"os"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/auction"
)

// marketFlags are the market rules as command-line flags.
type marketFlags struct {
	k, fee, floor, cap         string
	qtyDecimals, priceDecimals int
}

func (f *marketFlags) register(cmd *cobra.Command) {
	d := auction.DefaultRules()
	fs := cmd.Flags()
	fs.StringVar(&f.k, "k", d.K.String(), "where the price sits in the intersection interval [lo, hi]: lo + k*(hi-lo), 0..1")
	fs.StringVar(&f.fee, "fee", "0", "network fee per kWh, paid by buyers (cleared as a wedge)")
	fs.StringVar(&f.floor, "price-floor", "", "lowest allowed price per kWh, e.g. the feed-in tariff (default none)")
	fs.StringVar(&f.cap, "price-cap", "", "highest allowed price per kWh, e.g. the retail tariff (default none)")
	fs.IntVar(&f.qtyDecimals, "qty-decimals", d.QtyDecimals, "kWh resolution in decimals (3 = 1 Wh)")
	fs.IntVar(&f.priceDecimals, "price-decimals", d.PriceDecimals, "price resolution in decimals")
}

func (f *marketFlags) market() (*auction.Market, error) {
	r := auction.DefaultRules()
	r.QtyDecimals, r.PriceDecimals = f.qtyDecimals, f.priceDecimals
	var err error
	parse := func(flag, s string) decimal.Decimal {
		d, e := decimal.NewFromString(s)
		if e != nil && err == nil {
			err = fmt.Errorf("--%s: %q is not a decimal number", flag, s)
		}
		return d
	}
	r.K = parse("k", f.k)
	r.Fee = parse("fee", f.fee)
	if f.floor != "" {
		v := parse("price-floor", f.floor)
		r.PriceFloor = &v
	}
	if f.cap != "" {
		v := parse("price-cap", f.cap)
		r.PriceCap = &v
	}
	if err != nil {
		return nil, err
	}
	return auction.NewMarket(r)
}

func newClearCmd() *cobra.Command {
	var mf marketFlags
	var format, interval string
	cmd := &cobra.Command{
		Use:   "clear [flags] [FILE|-]",
		Short: "Clear one interval's order book and print the result",
		Long: `Clear reads an order book and clears it with the uniform-price double auction
(docs/auction.md), then prints the result.

The book is JSON, from FILE or standard input ("-" or no argument):

  {"interval": "2026-11-22T10:15Z",
   "orders": [{"id":"o1","participant":"h1","side":"sell","kwh":"2.5","price":"0.12"}, ...]}

kwh and price may be JSON strings or numbers; both are parsed exactly. The
result is one JSON object on standard output:

  {"price":"0.15"|null,"volume_kwh":"..","welfare":"..","book_sha256":"..",
   "fills":[{"id":"o1","side":"sell","kwh":"2.5"}],
   "trades":[{"id":"..","sell":"o1","buy":"o7","kwh":"2.5","price":"0.15"}]}

With --fee, a "fee" field follows "price"; the price is what sellers receive
and buyers pay price + fee. A book with any bad order is rejected whole: exit
status 2 and a one-line error naming the order and the field.`,
		Example: `  p2pgrid clear configs/examples/book.json
  p2pgrid clear --k 0 --fee 0.01 --format table configs/examples/book.json
  cat book.json | p2pgrid clear -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := mf.market()
			if err != nil {
				return badInput(err)
			}
			// The book is read whole, in one read for a file, and decoded
			// in place: a million orders are about 100 MB.
			// (The book keeps no reference to data, which is dead once
			// decoded.)
			var data []byte
			name := "standard input"
			if len(args) == 1 && args[0] != "-" {
				name = args[0]
				if data, err = os.ReadFile(name); err != nil {
					return badInput(err)
				}
			} else if data, err = io.ReadAll(cmd.InOrStdin()); err != nil {
				return badInput(fmt.Errorf("%s: book: %w", name, err))
			}
			res, err := clearBook(m, data, interval, cmd.Flags().Changed("interval"))
			if err != nil {
				return badInput(fmt.Errorf("%s: %w", name, err))
			}
			return writeResult(cmd.OutOrStdout(), res, format)
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVar(&format, "format", "json", "output format: json or table")
	cmd.Flags().StringVar(&interval, "interval", "", "name of the delivery interval (overrides the book's)")
	return cmd
}

// clearBook decodes and clears the book data, named interval instead of
// its own if override. The book is checked once, unless its interval is
// replaced after decoding.
func clearBook(m *auction.Market, data []byte, interval string, override bool) (*auction.Result, error) {
	if !override {
		return m.ClearBookBytes(data)
	}
	book, err := m.DecodeBookBytes(data)
	if err != nil {
		return nil, err
	}
	book.Interval = interval
	return m.Clear(book)
}

func writeResult(w io.Writer, res *auction.Result, format string) error {
	switch format {
	case "json":
		// Encoded here while a goroutine writes the piece before: the
		// result of a million orders is about 90 MB.
		wb := newWriteBehind(w)
		err := res.WriteJSON(wb)
		if err == nil {
			_, err = wb.Write([]byte{'\n'})
		}
		if cerr := wb.Close(); err == nil {
			err = cerr
		}
		return err
	case "table":
		return res.WriteTable(w)
	}
	return badInput(fmt.Errorf("--format: unknown format %q (want json or table)", format))
}

// writeBehind is an io.Writer that hands each piece to a goroutine of its
// own, which writes it to the underlying writer, so that a large output
// is produced on one core while the piece before goes out on another.
// Close waits for the last piece.
type writeBehind struct {
	pieces chan []byte   // to the writing goroutine, in order
	free   chan []byte   // buffers back from it
	done   chan error    // its first error, once pieces is closed
	failed chan struct{} // closed when a write has failed
	err    error         // that write's error, set before failed is closed
}

// writeBehindPieces is how many pieces are in flight at most.
const writeBehindPieces = 3

func newWriteBehind(w io.Writer) *writeBehind {
	wb := &writeBehind{
		pieces: make(chan []byte, writeBehindPieces),
		free:   make(chan []byte, writeBehindPieces),
		done:   make(chan error, 1),
		failed: make(chan struct{}),
	}
	for range writeBehindPieces {
		wb.free <- nil
	}
	go func() {
		for p := range wb.pieces {
			if wb.err == nil {
				if _, err := w.Write(p); err != nil {
					wb.err = err
					close(wb.failed)
				}
			}
			wb.free <- p[:0]
		}
		wb.done <- wb.err
	}()
	return wb
}

// Write copies p to be written; it fails once an earlier write has.
func (wb *writeBehind) Write(p []byte) (int, error) {
	select {
	case <-wb.failed:
		return 0, wb.err
	case buf := <-wb.free:
		wb.pieces <- append(buf, p...)
		return len(p), nil
	}
}

// Close writes what is left and returns the first error of any write.
func (wb *writeBehind) Close() error {
	close(wb.pieces)
	return <-wb.done
}
