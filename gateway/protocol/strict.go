package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/p2pgrid/p2pgrid/market"
)

// Strict JSON decoding. Every gateway must read a message the same way, so a
// message is rejected, with the key named, when a key is unknown (matched
// exactly: encoding/json alone would take "KWH" for "kwh"), repeated, missing
// or of the wrong type, or when anything follows the object.

// field is one key of a JSON object and how to decode its value.
type field struct {
	key      string
	required bool
	decode   func(raw []byte) error
}

// decodeObject decodes the JSON object data into fields.
func decodeObject(data []byte, fields ...field) error {
	got := make([]bool, len(fields))
	err := walkObject(data, func(key string, raw []byte) error {
		for i, f := range fields {
			if f.key == key {
				got[i] = true
				return f.decode(raw)
			}
		}
		keys := make([]string, len(fields))
		for i, f := range fields {
			keys[i] = f.key
		}
		return fmt.Errorf("unknown key (want one of %s)", strings.Join(keys, ", "))
	})
	if err != nil {
		return err
	}
	for i, f := range fields {
		if f.required && !got[i] {
			return fmt.Errorf("key %q is missing", f.key)
		}
	}
	return nil
}

// walkObject calls fn for every key of the JSON object data, in order, with
// the raw bytes of its value. A repeated key, or anything after the object,
// is an error; so is an error of fn, which is wrapped with the key.
func walkObject(data []byte, fn func(key string, raw []byte) error) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty payload")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return truncated(err)
	} else if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object, got %s", describe(tok))
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return truncated(err)
		}
		key := tok.(string) // inside an object, encoding/json yields string keys
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("key %q: %w", key, truncated(err))
		}
		if err := fn(key, raw); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return truncated(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// walkArray calls fn for every element of the JSON array data.
func walkArray(data []byte, fn func(i int, raw []byte) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return truncated(err)
	} else if tok != json.Delim('[') {
		return fmt.Errorf("want an array, got %s", describe(tok))
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return truncated(err)
		}
		if err := fn(i, raw); err != nil {
			return err
		}
	}
	return nil
}

// truncated says what io.EOF means inside a JSON value.
func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func describe(tok json.Token) string {
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

// The value decoders below check the JSON type first, so that a number is
// never taken for a string or null for anything.

func str(dst *string) func([]byte) error {
	return func(raw []byte) error {
		if raw[0] != '"' {
			return fmt.Errorf("want a string, got %.20s", raw)
		}
		return json.Unmarshal(raw, dst)
	}
}

// checkText checks free text: at most max bytes of valid UTF-8 without
// control characters.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes (at most %d)", len(s), max)
	}
	for i, r := range s {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return fmt.Errorf("character %q at %d is not allowed", r, i)
		}
	}
	return nil
}

func id(dst *string) func([]byte) error {
	return func(raw []byte) error {
		if err := str(dst)(raw); err != nil {
			return err
		}
		return CheckID(*dst)
	}
}

func interval(dst *string) func([]byte) error {
	return func(raw []byte) error {
		if err := str(dst)(raw); err != nil {
			return err
		}
		_, err := market.ParseInterval(*dst)
		return err
	}
}

// version accepts only the protocol version this package speaks.
func version(raw []byte) error {
	if string(raw) != "1" {
		return fmt.Errorf("unsupported version %.20s (want 1)", raw)
	}
	return nil
}

func number(dst **float64) func([]byte) error {
	return func(raw []byte) error {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return fmt.Errorf("want a number, got %.20s", raw)
		}
		*dst = new(float64)
		return json.Unmarshal(raw, *dst)
	}
}

func integer(dst **int64) func([]byte) error {
	return func(raw []byte) error {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return fmt.Errorf("want an integer, got %.20s", raw)
		}
		*dst = new(int64)
		if err := json.Unmarshal(raw, *dst); err != nil {
			return fmt.Errorf("want an integer, got %.20s", raw)
		}
		return nil
	}
}

func boolean(dst *bool) func([]byte) error {
	return func(raw []byte) error {
		switch string(raw) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			return fmt.Errorf("want true or false, got %.20s", raw)
		}
		return nil
	}
}

// signature decodes an Ed25519 signature in standard base64; the empty string
// leaves dst empty (unsigned), which the caller rejects.
func signature(dst *[]byte) func([]byte) error {
	return func(raw []byte) error {
		var s string
		if err := str(&s)(raw); err != nil {
			return err
		}
		if s == "" {
			*dst = nil
			return nil
		}
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != sigSize || base64.StdEncoding.EncodeToString(b) != s {
			return fmt.Errorf("want a %d-byte Ed25519 signature in standard base64, got %.20q", sigSize, s)
		}
		*dst = b
		return nil
	}
}

const sigSize = 64 // ed25519.SignatureSize

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// appendField appends `,"key":` and s as a JSON string.
func appendField(dst []byte, key, s string) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return appendString(dst, s)
}
