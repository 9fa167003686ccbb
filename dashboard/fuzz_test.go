package dashboard

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// Whatever a record's data holds, Ingest and the interval's detail never
// panic: a record that does not decode is an error naming it, and the
// model stays as it was.
func FuzzIngest(f *testing.F) {
	dir, _ := testLedger(f, twoIntervals[0])
	if _, err := ledger.Scan(dir, 1, func(r ledger.Record) error {
		f.Add(r.Kind, []byte(r.Data))
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(record.KindBook, []byte(`{"book_sha256":"`+string(make([]byte, 0))+`","interval":"2026-11-22T12:00Z","message":{"v":1}}`))
	f.Add(record.KindResult, []byte(`{"interval":"2026-11-22T12:00Z","message":{}}`))
	f.Add(record.KindInterval, []byte(`{}`))
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		m := NewModel(2)
		id, err := m.Ingest(ledger.Record{Seq: 1, Time: time.Unix(0, 0), Kind: kind, Key: "k", Data: data})
		if err != nil {
			if m.Intervals() != 0 {
				t.Errorf("a record that did not decode (%v) changed the model", err)
			}
			return
		}
		if id == "" {
			return
		}
		d, _, known := m.Detail(id)
		if !known {
			t.Fatalf("Ingest returned %q, which the model does not know", id)
		}
		decodeBookResult(d) // must not panic; errors are shown on the page
	})
}

// ReadUsers never panics and never accepts a line without a user and a
// password.
func FuzzReadUsers(f *testing.F) {
	for _, s := range []string{"op:pw\n", "# c\n\na:b:c\n", ":\n", "a:b\na:c\n", "\r\n"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "users")
	f.Fuzz(func(t *testing.T, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := ReadUsers(path)
		if err != nil {
			return
		}
		for u, p := range users {
			if u == "" || p == "" {
				t.Errorf("accepted user %q with password %q from %q", u, p, body)
			}
		}
	})
}
