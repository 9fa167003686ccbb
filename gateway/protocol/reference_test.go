package protocol

// The encoding/json walker this package had before internal/strictjson,
// kept as the reference FuzzWalkObjectAsBefore holds walkObject to.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// walkObject calls fn for every key of the JSON object data, in order, with
// the raw bytes of its value. A repeated key, or anything after the object,
// is an error; so is an error of fn, which is wrapped with the key.
func oldWalkObject(data []byte, fn func(key string, raw []byte) error) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty payload")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return oldTruncated(err)
	} else if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object, got %s", oldDescribe(tok))
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return oldTruncated(err)
		}
		key := tok.(string) // inside an object, encoding/json yields string keys
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("key %q: %w", key, oldTruncated(err))
		}
		if err := fn(key, raw); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return oldTruncated(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// walkArray calls fn for every element of the JSON array data.
func oldWalkArray(data []byte, fn func(i int, raw []byte) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return oldTruncated(err)
	} else if tok != json.Delim('[') {
		return fmt.Errorf("want an array, got %s", oldDescribe(tok))
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return oldTruncated(err)
		}
		if err := fn(i, raw); err != nil {
			return err
		}
	}
	return nil
}

// truncated says what io.EOF means inside a JSON value.
func oldTruncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func oldDescribe(tok json.Token) string {
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

// walkAll reads every key and value of data, and the elements of array
// values, with walk and walkArr, recording what it sees.
func walkAll(data []byte, walk func([]byte, func(string, []byte) error) error, walkArr func([]byte, func(int, []byte) error) error) (string, error) {
	var steps []string
	err := walk(data, func(key string, raw []byte) error {
		steps = append(steps, key+"="+string(raw))
		if raw[0] == '[' {
			return walkArr(raw, func(i int, raw []byte) error {
				steps = append(steps, fmt.Sprintf("[%d]%s", i, raw))
				return nil
			})
		}
		if key == "stop" {
			return errors.New("stopped")
		}
		return nil
	})
	return strings.Join(steps, "\n"), err
}

// FuzzWalkObjectAsBefore: walkObject and walkArray see the same keys and
// values as the encoding/json walker did, and fail with the same text.
func FuzzWalkObjectAsBefore(f *testing.F) {
	for _, s := range []string{``, ` `, `{}`, `{"v":1,"v":2}`, `{"v":1,"a":[1,{"b":2}],"c":"d"}`, `{"v":`, `{"v":1`,
		`{"v":1,`, `{"v" 1}`, `{"v":1]`, `[]`, `null`, `"s`, `{"stop":1,"x":`, `{"a":1} x`, "\xc2\xa0", `{"\u0076":1}`,
		`{"a":[1,2}`, `{"a":01}`, `{"a":tru}`, `1e999`, `{"a":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := walkAll(data, oldWalkObject, oldWalkArray)
		got, gotErr := walkAll(data, walkObject, walkArray)
		if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%.200q:\n got %.300q, %v\nwant %.300q, %v", data, got, gotErr, want, wantErr)
		}
	})
}
