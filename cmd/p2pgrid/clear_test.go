package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
)

// TestClearWriteBehindKeepsOrder: every piece arrives, in order, whatever
// the sizes, and a piece's buffer may be reused as soon as Write returns.
func TestClearWriteBehindKeepsOrder(t *testing.T) {
	var out, want bytes.Buffer
	wb := newWriteBehind(&out)
	piece := make([]byte, 0, 70<<10)
	for i := range 500 {
		piece = fmt.Appendf(piece[:0], "piece %d;", i)
		for range i % 7 * 1000 {
			piece = append(piece, byte('a'+i%26))
		}
		want.Write(piece)
		if n, err := wb.Write(piece); n != len(piece) || err != nil {
			t.Fatalf("piece %d: Write = %d, %v", i, n, err)
		}
		clear(piece) // the caller's buffer is its own again
	}
	if err := wb.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes unlike the %d given", out.Len(), want.Len())
	}
}

// TestClearWriteBehindReportsFailure: a failed write is Close's error, and
// later Writes fail with it instead of piling up.
func TestClearWriteBehindReportsFailure(t *testing.T) {
	full := errors.New("no space left on device")
	w := &failingWriter{after: 2, err: full}
	wb := newWriteBehind(w)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		_, err = wb.Write([]byte("x"))
	}
	if !errors.Is(err, full) {
		t.Errorf("Write after a failed write: %v, want %v", err, full)
	}
	if err := wb.Close(); !errors.Is(err, full) {
		t.Errorf("Close = %v, want %v", err, full)
	}
	if w.writes != 3 {
		t.Errorf("%d writes reached the writer, want 3 (none after the failure)", w.writes)
	}
}

type failingWriter struct {
	after, writes int
	err           error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.after {
		return 0, w.err
	}
	return len(p), nil
}

// TestClearIntervalFlag: --interval names the trades instead of the book's
// interval, and is checked as the book's would be.
func TestClearIntervalFlag(t *testing.T) {
	const book = "../../configs/examples/book.json"
	code, out, errOut := runCLI(t, "", "clear", "--interval", "2030-01-01T00:00Z", book)
	if code != 0 || !strings.Contains(out, `"trades":[{"id":"2030-01-01T00:00Z/`) {
		t.Errorf("exit %d, stderr %q, output %.300s", code, errOut, out)
	}
	_, plain, _ := runCLI(t, "", "clear", book)
	if plain == out || strings.Contains(plain, "2030-01-01T00:00Z") {
		t.Errorf("without --interval the output is %.300s", plain)
	}
	code, _, errOut = runCLI(t, "", "clear", "--interval", "a b", book)
	if code != 2 || !strings.Contains(errOut, `book interval "a b"`) {
		t.Errorf("--interval 'a b': exit %d, stderr %q", code, errOut)
	}
}

// TestClearLargeBookOutput: a book whose result takes many pieces comes out
// of the command byte for byte as Result.MarshalJSON encodes it, plus the
// newline.
func TestClearLargeBookOutput(t *testing.T) {
	var book strings.Builder
	book.WriteString(`{"interval":"2026-11-22T12:00Z","orders":[`)
	for i := range 10_000 {
		if i > 0 {
			book.WriteByte(',')
		}
		side, price := "sell", 50+i*7%300
		if i%2 == 1 {
			side, price = "buy", 100+i*11%300
		}
		fmt.Fprintf(&book, `{"id":"o%05d","participant":"h%03d","side":%q,"kwh":"%d.%03d","price":"0.%03d"}`,
			i, i%500, side, 1+i%9, i%1000, price)
	}
	book.WriteString("]}\n")
	m, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Clear(mustDecode(t, m, book.String()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := res.MarshalJSON()
	if len(want) < 10*64<<10 || len(res.Trades) == 0 {
		t.Fatalf("the result is %d bytes, %d trades: too small a test", len(want), len(res.Trades))
	}
	code, out, errOut := runCLI(t, book.String(), "clear")
	if code != 0 || out != string(want)+"\n" {
		t.Fatalf("exit %d, stderr %q; %d bytes out, want %d", code, errOut, len(out), len(want)+1)
	}
}

func mustDecode(t *testing.T, m *auction.Market, book string) auction.Book {
	t.Helper()
	b, err := m.DecodeBookBytes([]byte(book))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
