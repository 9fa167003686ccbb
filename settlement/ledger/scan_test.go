package ledger

import (
	"bytes"
	"errors"
	"io/fs"
	"reflect"
	"testing"
)

func TestScan(t *testing.T) {
	dir := t.TempDir()
	want := fill(t, dir, 5)
	lines := splitLines(readFile(t, dir))

	var got []Record
	torn, err := Scan(dir, 3, func(r Record) error { got = append(got, r); return nil })
	if err != nil || torn != nil {
		t.Fatalf("Scan from 3: torn %v, err %v", torn, err)
	}
	if !reflect.DeepEqual(got, want[2:]) {
		t.Fatalf("Scan from 3 gave %+v, want %+v", got, want[2:])
	}
	for i, r := range got {
		if line := bytes.TrimSuffix(lines[i+2], []byte("\n")); !bytes.Equal(r.Line(), line) {
			t.Errorf("record %d: Line() = %s, the file holds %s", r.Seq, r.Line(), line)
		}
	}

	// A torn last line is reported, and the records before it delivered.
	writeFile(t, dir, append(readFile(t, dir), `{"seq":6,"time":"2026`...))
	var seqs []uint64
	torn, err = Scan(dir, 0, func(r Record) error { seqs = append(seqs, r.Seq); return nil })
	if err != nil || torn == nil || torn.Line != 6 || len(seqs) != 5 || seqs[4] != 5 {
		t.Fatalf("Scan of a torn ledger: seqs %v, torn %v, err %v; want 1-5 and line 6 torn", seqs, torn, err)
	}

	// fn's error stops the scan and comes back as it is.
	stop := errors.New("enough")
	n := 0
	if _, err := Scan(dir, 1, func(Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan with fn failing: %d calls, err %v; want 1 call and %v", n, err, stop)
	}

	// Damage before the last line is a *VerifyError naming it.
	b := readFile(t, dir)
	writeFile(t, dir, bytes.Replace(b, []byte(`home1/home2`), []byte(`home1/homeX`), 1))
	seqs = nil
	torn, err = Scan(dir, 0, func(r Record) error { seqs = append(seqs, r.Seq); return nil })
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 2 || torn != nil || len(seqs) != 1 {
		t.Fatalf("Scan of a ledger damaged at line 2: seqs %v, torn %v, err %v", seqs, torn, err)
	}

	if _, err := Scan(t.TempDir(), 0, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Scan of an empty directory: %v, want fs.ErrNotExist", err)
	}
}
