package dashboard

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// bookView is an interval's sealed book, as the interval page shows it.
type bookView struct {
	Digest  string // hex SHA-256 of the canonical book (auction.Result.BookSHA256)
	Clearer string
	Orders  int64 // in the book
	// Omitted: the book was too large for a ledger record; only its
	// digest is kept, and Rows is empty.
	Omitted bool
	Rows    []orderRow
}

// resultView is an interval's signed result, as the interval page shows
// it.
type resultView struct {
	Clearer    string
	BookSHA256 string
	Signature  string // hex; "" if unsigned
	Result     string // the result, indented
}

// decodeBookResult decodes the book and result records of d, each nil if
// the ledger has none.
func decodeBookResult(d Detail) (*bookView, *resultView, error) {
	var bv *bookView
	var rv *resultView
	if d.Book != nil {
		rec, err := record.DecodeBook(d.Book)
		if err != nil {
			return nil, nil, fmt.Errorf("book record: %w", err)
		}
		bv = &bookView{Digest: rec.BookSHA256, Orders: rec.Orders, Omitted: rec.MessageOmitted}
		if !rec.MessageOmitted {
			msg, err := protocol.DecodeBook(rec.Message)
			if err != nil {
				return nil, nil, fmt.Errorf("book record: %w", err)
			}
			bv.Clearer = msg.Clearer
			for i, raw := range msg.Orders {
				o, err := protocol.DecodeOrder(raw)
				if err != nil {
					return nil, nil, fmt.Errorf("book record: order %d: %w", i+1, err)
				}
				bv.Rows = append(bv.Rows, orderRows(o)...)
			}
		}
	}
	if d.Result != nil {
		rec, err := record.DecodeResult(d.Result)
		if err != nil {
			return bv, nil, fmt.Errorf("result record: %w", err)
		}
		msg, err := protocol.DecodeResult(rec.Message)
		if err != nil {
			return bv, nil, fmt.Errorf("result record: %w", err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, msg.Result, "", "  "); err != nil {
			pretty.Reset()
			pretty.Write(msg.Result)
		}
		rv = &resultView{Clearer: msg.Clearer, BookSHA256: msg.BookSHA256, Signature: hex.EncodeToString(msg.Sig), Result: pretty.String()}
	}
	return bv, rv, nil
}

// orderRows are the rows of an order message: one for a v1 order, named
// by its gateway, one per step for a v2 order, named by the step's order
// id (protocol.StepID: "home2:1", ...).
func orderRows(o *protocol.OrderMsg) []orderRow {
	if o.Steps == nil {
		return []orderRow{{Gateway: o.Gateway, Side: o.Side.String(), KWh: o.KWh, Price: o.Price}}
	}
	rows := make([]orderRow, len(o.Steps))
	for i, s := range o.Steps {
		rows[i] = orderRow{Gateway: protocol.StepID(o.Gateway, i), Side: s.Side.String(), KWh: s.KWh, Price: s.Price}
	}
	return rows
}
