package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// The reference: the encoding/json walker this package replaced (in
// package auction and gateway/protocol), reading every key and value.
func referenceWalk(data []byte) (steps []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return steps, err
	} else if tok != json.Delim('{') {
		return steps, fmt.Errorf("want a JSON object, got %s", referenceDescribe(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return steps, err
		}
		steps = append(steps, "key "+tok.(string))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return steps, err
		}
		steps = append(steps, "value "+string(raw))
		if raw[0] == '[' {
			err := referenceArray(raw, func(i int, raw []byte) { steps = append(steps, fmt.Sprintf("[%d] %s", i, raw)) })
			if err != nil {
				return steps, err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return steps, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return steps, errors.New("trailing data after the JSON object")
	}
	return steps, nil
}

func referenceArray(data []byte, elem func(i int, raw []byte)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		if i == 0 {
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
		if !dec.More() {
			return nil
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		elem(i, raw)
	}
}

func referenceDescribe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return string(v)
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

func walk(data []byte) (steps []string, err error) {
	var o Object
	if err := o.Open(data); err != nil {
		return steps, err
	}
	for {
		key, ok, err := o.Next()
		if err != nil {
			return steps, err
		}
		if !ok {
			break
		}
		steps = append(steps, "key "+string(key))
		raw, err := o.Value()
		if err != nil {
			return steps, err
		}
		steps = append(steps, "value "+string(raw))
		if raw[0] == '[' {
			err := Array(raw, func(i int, raw []byte) error {
				steps = append(steps, fmt.Sprintf("[%d] %s", i, raw))
				return nil
			})
			if err != nil {
				return steps, err
			}
		}
	}
	return steps, o.Close()
}

var walkSeeds = []string{
	``, ` `, `{}`, ` {} `, `{} x`, `{}}`, `{`, `{"a"`, `{"a":`, `{"a": `, `{"a":1`, `{"a":1,`, `{"a":1,}`,
	`{"a":1 "b":2}`, `{"a" 1}`, `{"a":1]`, `{]`, `{,}`, `{:}`, `{1:2}`, `{"a":[1,2,{"b":[]}],"c":"d"}`,
	`{"a":01}`, `{"a":-}`, `{"a":-x}`, `{"a":1.}`, `{"a":1.x}`, `{"a":1e}`, `{"a":1e+}`, `{"a":1ex}`,
	`{"a":tru}`, `{"a":trux}`, `{"a":nul`, `{"a":falsy}`, `{"a":"\x01"}`, `{"a":"\q"}`, `{"a":"\u12g4"}`,
	`{"a":"\u00e9\ud800","\u0062":"\xff"}`, `{"a":[1,2}`, `{"a":{"b" 1}}`, `{"a":{"b":1,}}`, `{"a":{,}}`,
	`{"a":[,]}`, `{"a":[1 2]}`, `{"a":[]}`, `{"a":[ ]}`, `{"a":{}}`, `{"a":1e999}`, `null`, `true`, `"s"`,
	`"s`, `12`, `1e999`, `[`, `[1,`, `]`, `}`, `:`, `,`, `x`, `{"a":1}{}`, "{\"a\"\t:\n1\r}",
	`{"a":1,"a":2}`, `{"a":"b"}` + " \n", `{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
}

func TestObjectAsEncodingJSON(t *testing.T) {
	for _, s := range walkSeeds {
		compareWalks(t, []byte(s))
	}
}

func compareWalks(t *testing.T, data []byte) {
	t.Helper()
	wantSteps, wantErr := referenceWalk(data)
	gotSteps, gotErr := walk(data)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || strings.Join(gotSteps, "\n") != strings.Join(wantSteps, "\n") {
		t.Fatalf("%.200q:\n got %.300q, %v\nwant %.300q, %v", data, gotSteps, gotErr, wantSteps, wantErr)
	}
}

// FuzzObject: the walker reads every input as encoding/json's Decoder
// did, to the same keys, values and error text.
func FuzzObject(f *testing.F) {
	for _, s := range walkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(compareWalks)
}

func TestUnquote(t *testing.T) {
	for _, s := range []string{`""`, `"abc"`, `"a\"b"`, `"\u00e9"`, `"\ud800x"`, "\"\xff\xfe\"", `"\ud83d\ude00"`, `"\/\b\f\n\r\t"`} {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		if got := Unquote([]byte(s)); got != want {
			t.Errorf("Unquote(%s) = %q, want %q", s, got, want)
		}
		if got := string(UnquoteBytes([]byte(s))); got != want {
			t.Errorf("UnquoteBytes(%s) = %q, want %q", s, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	for raw, want := range map[string]string{`{}`: "{", `[1]`: "[", `"x"`: "a string", `-1.5e3`: "a number",
		`true`: "a boolean", `false`: "a boolean", `null`: "null",
		`1e999`: "json: cannot unmarshal number 1e999 into Go value of type float64"} {
		got, err := Describe([]byte(raw))
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("Describe(%s) = %q, want %q", raw, got, want)
		}
	}
}

// checkInPlace holds PlainString and Number, at every offset of data, to
// Value and Unquote: whatever they accept, Value bounds the same way and
// Unquote reads as the same text.
func checkInPlace(t *testing.T, data []byte) {
	t.Helper()
	for i := range data {
		if end, ok := PlainString(data, i); ok {
			start, vend, err := Value(data, i)
			if err != nil || start != i || vend != end {
				t.Fatalf("%.200q at %d: PlainString ends at %d, Value gives %d-%d, %v", data, i, end, start, vend, err)
			}
			if got, want := string(data[i+1:end-1]), Unquote(data[i:end]); got != want {
				t.Fatalf("%.200q at %d: PlainString's text %q, Unquote's %q", data, i, got, want)
			}
		}
		c := data[i]
		if c != '-' && (c < '0' || c > '9') {
			if _, err := Number(data, i); err == nil {
				t.Fatalf("%.200q at %d: Number accepted %q", data, i, c)
			}
			continue
		}
		end, err := Number(data, i)
		start, vend, verr := Value(data, i)
		if fmt.Sprint(err) != fmt.Sprint(verr) || (err == nil && (start != i || vend != end)) {
			t.Fatalf("%.200q at %d: Number %d, %v; Value %d-%d, %v", data, i, end, err, start, vend, verr)
		}
	}
}

var inPlaceSeeds = []string{`"abc"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", "\"a\x01\"", `"a`, `"~` + "\x7f" + `"`, `""`,
	`0`, `-`, `-x`, `01`, `1.`, `1.5e`, `1.5e+7,`, `-0.25E-3}`, `12 `, `"`, `x`}

func TestPlainStringAndNumber(t *testing.T) {
	for _, s := range inPlaceSeeds {
		checkInPlace(t, []byte(s))
	}
	for s, want := range map[string]bool{`"abc"`: true, `""`: true, `"a\"b"`: false, "\"\xff\"": false, "\"a\x01\"": false, `"a`: false, `x`: false} {
		if _, ok := PlainString([]byte(s), 0); ok != want {
			t.Errorf("PlainString(%q) ok = %v, want %v", s, ok, want)
		}
	}
	if end, err := Number([]byte(`-0.25E-3}`), 0); end != 8 || err != nil {
		t.Errorf("Number(-0.25E-3}) = %d, %v, want 8, nil", end, err)
	}
}

// FuzzInPlace: PlainString and Number agree with Value and Unquote.
func FuzzInPlace(f *testing.F) {
	for _, s := range append(inPlaceSeeds, walkSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(checkInPlace)
}
