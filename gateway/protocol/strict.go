package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/p2pgrid/p2pgrid/internal/strictjson"
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
// is an error; so is an error of fn, which is wrapped with the key. The
// reading is internal/strictjson's; io.EOF inside a message means it was
// cut short (io.ErrUnexpectedEOF).
func walkObject(data []byte, fn func(key string, raw []byte) error) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty payload")
	}
	var o strictjson.Object
	if err := o.Open(data); err != nil {
		return strictjson.Truncated(err)
	}
	seen := make(map[string]bool)
	for {
		k, ok, err := o.Next()
		if err != nil {
			return strictjson.Truncated(err)
		}
		if !ok {
			return o.Close()
		}
		key := string(k)
		if seen[key] {
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		raw, err := o.Value()
		if err != nil {
			return fmt.Errorf("key %q: %w", key, strictjson.Truncated(err))
		}
		if err := fn(key, raw); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
}

// walkArray calls fn for every element of the JSON array data, a value
// walkObject gave.
func walkArray(data []byte, fn func(i int, raw []byte) error) error {
	return strictjson.Array(data, fn)
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
