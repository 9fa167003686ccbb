package settling

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzLoadBoundaries: the boundaries file a gateway reads at start, through
// its store. It must
// never panic; an error says what it is about and leaves the boundaries empty; a
// file it accepts is written back (as at the next boundary) to one it reads
// as the same boundaries.
func FuzzLoadBoundaries(f *testing.F) {
	f.Add([]byte(`{"v":1,"boundaries":[{"start":"2026-11-22T12:15:00Z","at":"2026-11-22T12:15:04Z","import_wh":1000,"export_wh":500,"near":true,"figures":"sent"}]}` + "\n"))
	f.Add([]byte(`{"v":1,"boundaries":[{"start":"2026-11-22T12:15:00Z","at":"2026-11-22T12:15:04+01:00","import_wh":1,"export_wh":2,"near":false},{"start":"2026-11-22T12:15:00Z","at":"2026-11-22T12:15:09Z","import_wh":3,"export_wh":4,"near":true}]}`))
	f.Add([]byte(`{"v":2,"boundaries":[]}`))
	f.Add([]byte(`{"v":1,"boundaries":[],"extra":1}`))
	f.Add([]byte(`{"v":1,"boundaries":null}`))
	f.Add([]byte(`{"v":1}{"v":2}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := &memStore{data: data}
		if len(data) == 0 {
			st.data = nil // no file yet
		}
		b, err := NewBoundaries(st)
		if b == nil {
			t.Fatal("no boundaries returned")
		}
		if err != nil {
			if !strings.Contains(err.Error(), "boundary counters") {
				t.Fatalf("error does not say what it is about: %v", err)
			}
			if len(b.byStart) != 0 {
				t.Fatalf("a corrupt file left %d boundaries", len(b.byStart))
			}
			return
		}
		for start, x := range b.byStart {
			if x.Start != start || start.Location().String() != "UTC" || x.At.Location().String() != "UTC" {
				t.Fatalf("boundary %v kept under %v", x.Start, start)
			}
		}
		b.mu.Lock()
		err = b.saveLocked()
		b.mu.Unlock()
		if err != nil {
			t.Fatalf("accepted boundaries cannot be written back: %v", err)
		}
		again, err := NewBoundaries(st)
		if err != nil {
			t.Fatalf("boundaries written back are refused: %v", err)
		}
		if !reflect.DeepEqual(again.byStart, b.byStart) {
			t.Fatalf("boundaries do not round-trip:\n%v\n%v", b.byStart, again.byStart)
		}
	})
}
