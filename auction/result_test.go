package auction

import (
	"bytes"
	"errors"
	"testing"
)

// TestWriteJSON: WriteJSON writes MarshalJSON's bytes, in pieces, and stops
// at the first write that fails.
func TestWriteJSON(t *testing.T) {
	m := defaultTestMarket(t)
	for _, n := range []int{0, 1, 20_000} {
		res, err := m.Clear(benchBook(n))
		if err != nil {
			t.Fatal(err)
		}
		want, err := res.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var w piecesWriter
		if err := res.WriteJSON(&w); err != nil {
			t.Fatal(err)
		}
		if got := w.buf.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("n=%d: WriteJSON wrote %d bytes unlike MarshalJSON's %d", n, len(got), len(want))
		}
		if len(want) > 3*jsonPiece && (w.writes < 3 || w.largest > jsonPiece+1024) {
			t.Errorf("n=%d: %d bytes in %d writes, the largest %d", n, len(want), w.writes, w.largest)
		}
		if n > 0 {
			w = piecesWriter{fail: true}
			if err := res.WriteJSON(&w); !errors.Is(err, errWriteFailed) || w.writes != 1 {
				t.Errorf("n=%d: a failing writer: %v after %d writes", n, err, w.writes)
			}
		}
	}
}

var errWriteFailed = errors.New("disk full")

type piecesWriter struct {
	buf             bytes.Buffer
	writes, largest int
	fail            bool
}

func (w *piecesWriter) Write(p []byte) (int, error) {
	w.writes++
	w.largest = max(w.largest, len(p))
	if w.fail {
		return 0, errWriteFailed
	}
	return w.buf.Write(p)
}
