package ledger

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseRecord: ParseRecord never panics, and a line it accepts is
// exactly the canonical encoding of the record it returns, with a right
// hash.
func FuzzParseRecord(f *testing.F) {
	dir := f.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	odd := entry(1)
	odd.Key = `q"uo\te \\ " `
	odd.Data = []byte(`{"a":[1,2.5e3,{"b":null}],"s":"\u00e9\n\"x\"","t":true}`)
	if _, err := l.Append(entry(0), odd, Entry{Kind: "z", Key: "~", Time: t0.Add(123456789), Data: []byte(`{}`)}); err != nil {
		f.Fatal(err)
	}
	l.Close()
	for _, line := range splitLines(readFile(f, dir)) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		f.Add(line)
		f.Add(bytes.Replace(line, []byte(`"data":{`), []byte(`"data": {`), 1))
		f.Add(line[:len(line)/2])
	}
	f.Add([]byte(`{"seq":01,"time":"x","kind":"a","key":"b","data":{},"prev":"` + ZeroHash + `","hash":"` + ZeroHash + `"}`))
	f.Add([]byte(`{"seq":18446744073709551616,"time":"2026-11-22T12:15:00Z","kind":"a","key":"b","data":{},"prev":"` + strings.Repeat("0", 64) + `","hash":""}`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			if r.Seq != 0 || r.Hash != "" || r.Data != nil {
				t.Fatalf("rejected line returned a non-zero record: %+v", r)
			}
			return
		}
		if enc := r.encode(); !bytes.Equal(enc, line) {
			t.Fatalf("accepted line does not re-encode to itself:\n got %s\nwant %s", enc, line)
		}
		if _, h := appendLine(nil, r.Seq, formatTime(r.Time), r.Kind, r.Key, r.Data, r.Prev); h != r.Hash {
			t.Fatalf("accepted a wrong hash %s, want %s", r.Hash, h)
		}
		if _, err := checkEntry(Entry{Kind: r.Kind, Key: r.Key, Time: r.Time, Data: r.Data}); err != nil {
			t.Fatalf("accepted a record Append would refuse: %v", err)
		}
	})
}
