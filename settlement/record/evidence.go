package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// Book is the data of a KindBook record: the sealed book an interval was
// cleared from, kept so that anyone holding the ledger can check every
// order's signature and clear the book again.
type Book struct {
	// BookSHA256 is the digest of the book's canonical encoding, in hex:
	// what the signed result names (auction.Result.BookSHA256).
	BookSHA256 string `json:"book_sha256"`
	Interval   string `json:"interval"`
	// Message is the book message as published on book/<interval>
	// (compacted), to decode with gateway/protocol.DecodeBook. It is null
	// when the message is larger than a ledger record may be
	// (MessageOmitted); the digest still names it.
	Message        json.RawMessage `json:"message"`
	MessageOmitted bool            `json:"message_omitted,omitempty"`
	Orders         int64           `json:"orders"`
}

// Result is the data of a KindResult record: the clearer's signed result
// of an interval, as published on result/<interval> (compacted), to decode
// with gateway/protocol.DecodeResult.
type Result struct {
	Interval string          `json:"interval"`
	Message  json.RawMessage `json:"message"`
}

// evidenceRoom is what a Book record's fields other than the message take
// at most: the message is kept when it fits in the rest of a record.
const evidenceRoom = 512

// EvidenceEntries are the ledger entries of the messages an interval was
// verified from: its book and its result, as the gateway received them.
// Messages that are not JSON objects (which cannot have verified) are
// left out; a book too large for a ledger record keeps its digest only.
func EvidenceEntries(interval string, at time.Time, res *auction.Result, book, result []byte) []ledger.Entry {
	var out []ledger.Entry
	b := Book{Interval: interval, BookSHA256: hex.EncodeToString(res.BookSHA256[:]), Orders: int64(res.Orders)}
	if msg, ok := compact(book); ok && len(msg) <= ledger.MaxDataLen-evidenceRoom {
		b.Message = msg
	} else if ok {
		b.MessageOmitted = true
	}
	if b.Message != nil || b.MessageOmitted {
		out = append(out, ledger.Entry{Kind: KindBook, Key: interval, Time: at, Data: marshal(b)})
	}
	if msg, ok := compact(result); ok && len(msg) <= ledger.MaxDataLen-evidenceRoom {
		out = append(out, ledger.Entry{Kind: KindResult, Key: interval, Time: at, Data: marshal(Result{Interval: interval, Message: msg})})
	}
	return out
}

// compact returns msg compacted, if it is a JSON object.
func compact(msg []byte) (json.RawMessage, bool) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, msg); err != nil || buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, false
	}
	return buf.Bytes(), true
}

// DecodeBook reads the data of a book record: its interval must name an
// interval, its digest be 32 bytes of hex, and its message be there unless
// it says it was omitted.
func DecodeBook(data []byte) (Book, error) {
	var b Book
	if err := decode(data, &b); err != nil {
		return Book{}, err
	}
	if _, err := market.ParseIntervalLoose(b.Interval); err != nil {
		return Book{}, err
	}
	if d, err := hex.DecodeString(b.BookSHA256); err != nil || len(d) != 32 {
		return Book{}, fmt.Errorf("book_sha256 %q: not a SHA-256 digest in hex", b.BookSHA256)
	}
	if !b.MessageOmitted && (len(b.Message) == 0 || string(b.Message) == "null") {
		return Book{}, fmt.Errorf("message is missing")
	}
	return b, nil
}

// DecodeResult reads the data of a result record; interval and message
// must be there.
func DecodeResult(data []byte) (Result, error) {
	var r Result
	if err := decode(data, &r); err != nil {
		return Result{}, err
	}
	if _, err := market.ParseIntervalLoose(r.Interval); err != nil {
		return Result{}, err
	}
	if len(r.Message) == 0 || string(r.Message) == "null" {
		return Result{}, fmt.Errorf("message is missing")
	}
	return r, nil
}
