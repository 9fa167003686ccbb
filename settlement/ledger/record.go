package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits on what one record may hold.
const (
	MaxKindLen = 32      // bytes of Kind, each of [a-z_]
	MaxKeyLen  = 200     // bytes of Key, each printable ASCII (0x20-0x7e)
	MaxDataLen = 1 << 20 // bytes of Data, a compact JSON object
)

// ZeroHash is the Prev of the first record: 64 '0's.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ErrInvalidEntry is wrapped by every error Append returns for an entry it
// will not store (bad kind, key, time or data).
var ErrInvalidEntry = errors.New("invalid ledger entry")

// Record is one line of the ledger file, as stored. See the package
// documentation for the exact encoding and what Hash covers.
type Record struct {
	Seq  uint64          // 1, 2, 3, ... with no gaps
	Time time.Time       // when appended, as the caller said (UTC)
	Kind string          // 1-32 of [a-z_], e.g. "trade"
	Key  string          // idempotency key within Kind: 1-200 printable ASCII
	Data json.RawMessage // the payload: a compact JSON object, stored verbatim
	Prev string          // Hash of the previous record; ZeroHash for Seq 1
	Hash string          // hex SHA-256 of this record's line with "hash":""
}

// Entry is what a caller appends; the ledger numbers and chains it.
type Entry struct {
	Kind string
	Key  string
	Time time.Time
	Data []byte
}

// The fixed tail of every line: ,"prev":"<64 hex>","hash":"<64 hex>"}
const (
	prevLit = `,"prev":"`
	hashLit = `","hash":"`
	tailLen = len(prevLit) + 64 + len(hashLit) + 64 + len(`"}`)
)

// appendUnhashed appends the canonical line of a record with an empty hash
// value, `{"seq":..,"prev":"..","hash":""}`: the bytes Hash is taken over.
// time is already formatted; key is escaped here.
func appendUnhashed(b []byte, seq uint64, tm, kind, key string, data []byte, prev string) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = append(b, tm...)
	b = append(b, `","kind":"`...)
	b = append(b, kind...)
	b = append(b, `","key":"`...)
	for i := 0; i < len(key); i++ {
		if c := key[i]; c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = append(b, c)
		}
	}
	b = append(b, `","data":`...)
	b = append(b, data...)
	b = append(b, prevLit...)
	b = append(b, prev...)
	b = append(b, `","hash":""}`...)
	return b
}

// appendLine appends the full canonical line of a record (without the
// newline), computing its hash. It returns the extended slice and the hash.
func appendLine(b []byte, seq uint64, tm, kind, key string, data []byte, prev string) ([]byte, string) {
	start := len(b)
	b = appendUnhashed(b, seq, tm, kind, key, data, prev)
	sum := sha256.Sum256(b[start:])
	h := hex.EncodeToString(sum[:])
	b = b[:len(b)-2] // drop `"}`
	b = append(b, h...)
	b = append(b, `"}`...)
	return b, h
}

// encode returns the canonical line of r (without the newline) as stored,
// with r.Hash as written in it, right or wrong.
func (r Record) encode() []byte {
	b := appendUnhashed(nil, r.Seq, formatTime(r.Time), r.Kind, r.Key, r.Data, r.Prev)
	b = b[:len(b)-2]
	b = append(b, r.Hash...)
	return append(b, `"}`...)
}

// Line returns the record's line as the file holds it, without the
// newline. For a record that ParseRecord, Scan or Read returned it is byte
// for byte the stored line, since only the canonical form is accepted.
func (r Record) Line() []byte { return r.encode() }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseRecord parses one ledger line, without its newline, strictly: the
// line must be byte for byte the canonical encoding of the record it
// holds (field order, no spaces, the only escapes in key being \" and \\,
// compact data) and its hash must be right. It does not check the chain
// (Prev against the record before); Verify and Open do.
func ParseRecord(line []byte) (Record, error) {
	var scratch []byte
	f, err := parseFields(line, &scratch)
	if err != nil {
		return Record{}, err
	}
	return Record{
		Seq:  f.seq,
		Time: f.time,
		Kind: string(f.kind),
		Key:  string(unescapeKey(f.key)),
		Data: json.RawMessage(bytes.Clone(f.data)),
		Prev: string(f.prev),
		Hash: string(f.hash),
	}, nil
}

// fields are a parsed line: slices of it, key still escaped.
type fields struct {
	seq                         uint64
	time                        time.Time
	kind, key, data, prev, hash []byte
}

// parseFields does ParseRecord's work without copying: what it returns
// points into line. scratch is reused for the hash input.
func parseFields(line []byte, scratch *[]byte) (fields, error) {
	var f fields
	p := parser{b: line}
	p.lit(`{"seq":`)
	seqStart := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.err == nil {
		s := p.b[seqStart:p.i]
		n, err := strconv.ParseUint(string(s), 10, 64)
		switch {
		case err != nil:
			p.fail("seq %q is not a decimal number", s)
		case n == 0 || s[0] == '0':
			p.fail("seq %q: want 1 or more without leading zeros", s)
		}
		f.seq = n
	}
	p.lit(`,"time":"`)
	tm := p.until('"')
	p.lit(`","kind":"`)
	f.kind = p.until('"')
	p.lit(`","key":"`)
	f.key = p.key()
	p.lit(`","data":`)
	if p.err != nil {
		return fields{}, p.err
	}
	if len(p.b)-p.i < tailLen+2 {
		return fields{}, errors.New("line too short: want data, prev and hash after the key")
	}
	f.data = p.b[p.i : len(p.b)-tailLen]
	p.i = len(p.b) - tailLen
	p.lit(prevLit)
	f.prev = p.hex()
	p.lit(hashLit)
	hashAt := p.i
	f.hash = p.hex()
	p.lit(`"}`)
	if p.err != nil {
		return fields{}, p.err
	}
	t, err := parseTime(tm)
	if err != nil {
		return fields{}, err
	}
	f.time = t
	if err := checkKind(f.kind); err != nil {
		return fields{}, err
	}
	if err := checkData(f.data); err != nil {
		return fields{}, err
	}
	// Every field was checked to be in canonical form, so the line is the
	// canonical encoding; the hash input is the line with the hash emptied.
	in := append(append((*scratch)[:0], line[:hashAt]...), `"}`...)
	*scratch = in
	sum := sha256.Sum256(in)
	var h [64]byte
	hex.Encode(h[:], sum[:])
	if !bytes.Equal(h[:], f.hash) {
		return fields{}, fmt.Errorf("hash mismatch: the record hashes to %s, its hash field says %s", h[:], f.hash)
	}
	return f, nil
}

// unescapeKey undoes the key's two escapes; it returns key itself if it
// has none.
func unescapeKey(key []byte) []byte {
	if bytes.IndexByte(key, '\\') < 0 {
		return key
	}
	out := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		if key[i] == '\\' {
			i++
		}
		out = append(out, key[i])
	}
	return out
}

// parser walks a line; the first failure sticks and later steps do nothing.
type parser struct {
	b   []byte
	i   int
	err error
}

func (p *parser) fail(format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("at byte %d: "+format, append([]any{p.i}, a...)...)
	}
}

func (p *parser) lit(s string) {
	if p.err != nil {
		return
	}
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.fail("want %s", s)
		return
	}
	p.i += len(s)
}

// until returns the bytes up to (not including) c, which must follow
// within maxField bytes; c is not consumed. Used for time and kind, which
// contain no escapes.
func (p *parser) until(c byte) []byte {
	const maxField = 64
	if p.err != nil {
		return nil
	}
	j := bytes.IndexByte(p.b[p.i:min(len(p.b), p.i+maxField+1)], c)
	if j < 0 {
		p.fail("unterminated or overlong string")
		return nil
	}
	s := p.b[p.i : p.i+j]
	p.i += j
	return s
}

// key reads the key string up to its closing quote (not consumed) and
// returns it still escaped, having checked that it is 1-MaxKeyLen
// printable ASCII bytes once unescaped and escaped canonically.
func (p *parser) key() []byte {
	if p.err != nil {
		return nil
	}
	start, n := p.i, 0
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			if n == 0 {
				p.fail("key: empty")
				return nil
			}
			return p.b[start:p.i]
		case c == '\\':
			if p.i+1 >= len(p.b) || (p.b[p.i+1] != '"' && p.b[p.i+1] != '\\') {
				p.fail(`key: only \" and \\ escapes are allowed`)
				return nil
			}
			p.i++
		case c < 0x20 || c > 0x7e:
			p.fail("key: byte 0x%02x is not printable ASCII", c)
			return nil
		}
		p.i++
		if n++; n > MaxKeyLen {
			p.fail("key: longer than %d bytes", MaxKeyLen)
			return nil
		}
	}
	p.fail("key: unterminated string")
	return nil
}

var isHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// hex reads 64 lower-case hex digits.
func (p *parser) hex() []byte {
	if p.err != nil {
		return nil
	}
	if len(p.b)-p.i < 64 {
		p.fail("want 64 hex digits")
		return nil
	}
	for _, c := range p.b[p.i : p.i+64] {
		if !isHex[c] {
			p.fail("want 64 lower-case hex digits")
			return nil
		}
	}
	s := p.b[p.i : p.i+64]
	p.i += 64
	return s
}

func parseTime[S string | []byte](s S) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(s))
	var buf [64]byte
	if err != nil || string(t.UTC().AppendFormat(buf[:0], time.RFC3339Nano)) != string(s) {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 in UTC with Z, e.g. 2026-11-22T12:15:00.5Z", s)
	}
	return t.UTC(), nil
}

func checkKind[S string | []byte](k S) error {
	if len(k) == 0 || len(k) > MaxKindLen {
		return fmt.Errorf("kind %q: want 1-%d characters of a-z and _", k, MaxKindLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && c != '_' {
			return fmt.Errorf("kind %q: want 1-%d characters of a-z and _", k, MaxKindLen)
		}
	}
	return nil
}

func checkKey(k string) error {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return fmt.Errorf("key of %d bytes: want 1-%d printable ASCII characters", len(k), MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("key %q: byte %d (0x%02x) is not printable ASCII", k, i, c)
		}
	}
	return nil
}

// checkData accepts a compact JSON object in valid UTF-8: no space, tab,
// CR or LF outside strings (and so no newline at all, since JSON strings
// cannot hold a raw one).
func checkData(d []byte) error {
	switch {
	case len(d) == 0:
		return errors.New("data: empty; want a JSON object such as {}")
	case len(d) > MaxDataLen:
		return fmt.Errorf("data: %d bytes, more than the limit of %d", len(d), MaxDataLen)
	case d[0] != '{':
		return errors.New("data: not a JSON object (must start with '{', no leading space)")
	case !utf8.Valid(d):
		return errors.New("data: not valid UTF-8")
	case !json.Valid(d):
		return errors.New("data: not valid JSON")
	}
	inString := false
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case inString && c == '\\':
			i++ // skip the escaped byte (JSON is valid, so it exists)
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return fmt.Errorf("data: not compact (whitespace at byte %d); encode it with json.Marshal or json.Compact", i)
		}
	}
	return nil
}

// checkEntry validates an entry and returns its formatted time.
func checkEntry(e Entry) (string, error) {
	if err := checkKind(e.Kind); err != nil {
		return "", err
	}
	if err := checkKey(e.Key); err != nil {
		return "", err
	}
	if e.Time.IsZero() {
		return "", errors.New("time is zero; the caller supplies when the entry was made")
	}
	tm := formatTime(e.Time)
	if _, err := parseTime(tm); err != nil {
		return "", err // years outside 0000-9999
	}
	if err := checkData(e.Data); err != nil {
		return "", err
	}
	return tm, nil
}
