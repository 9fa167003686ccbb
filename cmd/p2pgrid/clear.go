package main

import (
	"bufio"
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
			book, err := m.DecodeBookBytes(data)
			if err != nil {
				return badInput(fmt.Errorf("%s: %w", name, err))
			}
			if cmd.Flags().Changed("interval") {
				book.Interval = interval
			}
			res, err := m.Clear(book)
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

func writeResult(w io.Writer, res *auction.Result, format string) error {
	switch format {
	case "json":
		// Written in pieces: the result of a million orders is about 90 MB.
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := res.WriteJSON(bw); err != nil {
			return err
		}
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
		return bw.Flush()
	case "table":
		return res.WriteTable(w)
	}
	return badInput(fmt.Errorf("--format: unknown format %q (want json or table)", format))
}
