// Package strictjson reads JSON strictly and fast, for the decoders whose
// every reader must agree on a message: package auction's book and
// gateway/protocol's messages. It finds keys and values; what a key may be
// called, whether it may repeat and what its value means is the caller's.
//
// It reads a []byte in place, without encoding/json's reflection or
// intermediate values, and it reports malformed input with the texts
// encoding/json's Decoder gives, so that replacing that decoder changed no
// error: an Object reads like Decoder.Token, a Value like Decoder.Decode
// into a json.RawMessage (io.EOF when only white space is left,
// io.ErrUnexpectedEOF inside a value).
//
// It knows nothing of books, orders or messages.
package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// SyntaxError is malformed JSON, worded as encoding/json words it.
type SyntaxError struct {
	msg    string
	Offset int // bytes of the input read before the error
}

func (e *SyntaxError) Error() string { return e.msg }

// maxDepth is encoding/json's bound on nesting.
const maxDepth = 10000

// Truncated says what io.EOF means inside a JSON value: the value was cut
// short (io.ErrUnexpectedEOF). Other errors pass through.
func Truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space, or len(data).
func SkipSpace(data []byte, i int) int { return skipSpace(data, i) }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(c))
	return "'" + s[1:len(s)-1] + "'"
}

func invalid(c byte, context string, off int) error {
	return &SyntaxError{"invalid character " + quoteChar(c) + context, off + 1}
}

// Value finds the JSON value that starts at data[i:] after white space and
// checks its syntax: the whole of an object or array, nested values
// included. It returns the value's bounds; nothing after end is looked at.
// At the end of data it returns io.EOF if the value had not begun and
// io.ErrUnexpectedEOF if it had.
func Value(data []byte, i int) (start, end int, err error) {
	start = skipSpace(data, i)
	if start == len(data) {
		return start, start, io.EOF
	}
	end, err = scanValue(data, start)
	return start, end, err
}

// eof is the error for data that ends inside a value.
var eof = io.ErrUnexpectedEOF

// Container states on scanValue's stack.
const (
	inArray  = 'a'
	inObject = 'o'
)

// scanValue checks the value beginning at data[i], a byte that is not
// white space, and returns its end.
func scanValue(data []byte, i int) (int, error) {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	for {
		// Begin a value at data[i] (after white space).
		i = skipSpace(data, i)
		if i == len(data) {
			return 0, eof
		}
		var err error
		switch c := data[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return 0, invalid(c, " exceeded max depth", i)
			}
			i = skipSpace(data, i+1)
			if i == len(data) {
				return 0, eof
			}
			if c == '[' {
				if data[i] == ']' {
					i++
					break // an empty array ends here; find what follows
				}
				stack = append(stack, inArray)
				continue // the first element
			}
			if data[i] == '}' {
				i++
				break
			}
			stack = append(stack, inObject)
			if i, err = scanKey(data, i); err != nil {
				return 0, err
			}
			continue // the key's value
		case c == '"':
			if i, err = scanString(data, i); err != nil {
				return 0, err
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i, err = scanNumber(data, i); err != nil {
				return 0, err
			}
		case c == 't':
			i, err = scanLiteral(data, i, "true")
		case c == 'f':
			i, err = scanLiteral(data, i, "false")
		case c == 'n':
			i, err = scanLiteral(data, i, "null")
		default:
			return 0, invalid(c, " looking for beginning of value", i)
		}
		if err != nil {
			return 0, err
		}
		// A value ended at i: close containers, or go on to the next
		// element or key.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(data, i)
			if i == len(data) {
				return 0, eof
			}
			c := data[i]
			top := stack[len(stack)-1]
			if top == inArray {
				if c == ',' {
					i++
					break
				}
				if c == ']' {
					stack = stack[:len(stack)-1]
					i++
					continue
				}
				return 0, invalid(c, " after array element", i)
			}
			if c == ',' {
				i = skipSpace(data, i+1)
				if i == len(data) {
					return 0, eof
				}
				if i, err = scanKey(data, i); err != nil {
					return 0, err
				}
				break
			}
			if c == '}' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return 0, invalid(c, " after object key:value pair", i)
		}
	}
}

// scanKey checks an object key at data[i] (not white space) and the colon
// after it, and returns the index after the colon.
func scanKey(data []byte, i int) (int, error) {
	if data[i] != '"' {
		return 0, invalid(data[i], " looking for beginning of object key string", i)
	}
	i, err := scanString(data, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(data, i)
	if i == len(data) {
		return 0, eof
	}
	if data[i] != ':' {
		return 0, invalid(data[i], " after object key", i)
	}
	return i + 1, nil
}

// scanString checks the string whose quote is at data[i] and returns the
// index after its closing quote.
func scanString(data []byte, i int) (int, error) {
	i++
	for {
		// The common run: bytes that need no thought.
		for i < len(data) && !special[data[i]] {
			i++
		}
		if i == len(data) {
			return 0, eof
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, invalid(c, " in string literal", i)
		}
		// An escape.
		i++
		if i == len(data) {
			return 0, eof
		}
		switch data[i] {
		case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
			i++
		case 'u':
			i++
			for k := 0; k < 4; k++ {
				if i == len(data) {
					return 0, eof
				}
				if !isHex(data[i]) {
					return 0, invalid(data[i], ` in \u hexadecimal character escape`, i)
				}
				i++
			}
		default:
			return 0, invalid(data[i], " in string escape code", i)
		}
	}
}

// special marks the bytes that end the common run of a string.
var special = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Number checks that a JSON number starts at data[i] and returns its end,
// as Value would bound it: "01" is the number 0 followed by something
// else, which the caller rejects. It is for a caller reading a value in
// place that it knows is a number or is malformed; the error is worded as
// encoding/json words it only when data[i] begins a number.
func Number(data []byte, i int) (end int, err error) {
	if i >= len(data) {
		return 0, eof
	}
	if c := data[i]; c != '-' && !isDigit(c) {
		return 0, invalid(c, " looking for beginning of value", i)
	}
	return scanNumber(data, i)
}

// scanNumber checks the number at data[i] and returns its end: JSON's
// grammar, so "01" is the number 0 followed by something else.
func scanNumber(data []byte, i int) (int, error) {
	if data[i] == '-' {
		i++
		if i == len(data) {
			return 0, eof
		}
		if !isDigit(data[i]) {
			return 0, invalid(data[i], " in numeric literal", i)
		}
	}
	if data[i] == '0' {
		i++
	} else {
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i == len(data) {
			return 0, eof
		}
		if !isDigit(data[i]) {
			return 0, invalid(data[i], " after decimal point in numeric literal", i)
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i == len(data) {
			return 0, eof
		}
		if !isDigit(data[i]) {
			return 0, invalid(data[i], " in exponent of numeric literal", i)
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i, nil
}

func scanLiteral(data []byte, i int, lit string) (int, error) {
	for k := 1; k < len(lit); k++ {
		if i+k == len(data) {
			return 0, eof
		}
		if data[i+k] != lit[k] {
			return 0, invalid(data[i+k], fmt.Sprintf(" in literal %s (expecting %s)", lit, quoteChar(lit[k])), i+k)
		}
	}
	return i + len(lit), nil
}

// Describe names the kind of the JSON value raw, a whole value as Value
// bounds it, for errors such as "want an array, got a string": "{", "[",
// "a string", "a number", "a boolean" or "null". A number beyond
// float64's range is an error, as it is when encoding/json's Decoder.Token
// reads it.
func Describe(raw []byte) (string, error) {
	if len(raw) == 0 {
		return "", io.EOF
	}
	switch c := raw[0]; {
	case c == '{' || c == '[':
		return string(c), nil
	case c == '"':
		return "a string", nil
	case c == 'n':
		return "null", nil
	case c == 't' || c == 'f':
		return "a boolean", nil
	}
	// Token yields a number as a float64. Only encoding/json knows which
	// numbers it rejects and how it says so; this runs only for an error.
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	return "a number", nil
}

// Unquote returns the text of the JSON string raw (quotes included, syntax
// checked by Value), unescaped as encoding/json does: invalid UTF-8 and
// lone surrogates become U+FFFD.
func Unquote(raw []byte) string {
	if s, ok := plain(raw); ok {
		return string(s)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		panic("strictjson: Unquote of a string Value did not check: " + err.Error())
	}
	return s
}

// UnquoteBytes is Unquote without an allocation for a string that has no
// escapes and is ASCII: the result may share raw's memory.
func UnquoteBytes(raw []byte) []byte {
	if s, ok := plain(raw); ok {
		return s
	}
	return []byte(Unquote(raw))
}

// plain returns the inside of the string raw if it is printable ASCII
// without escapes, which is its own text.
func plain(raw []byte) ([]byte, bool) {
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	return s, true
}

// PlainString reads the JSON string whose opening quote is data[i], if it
// is a plain one: ASCII without escapes (or control characters), whose text is its
// bytes, data[i+1:end-1]. It returns the index after the closing quote,
// or ok false if data[i] begins no string or a string that is not plain
// (escaped, not ASCII, malformed or cut short). A caller reading a
// document in place takes the plain strings' bytes as they are and gives
// anything else to Value and Unquote, which word its errors.
func PlainString(data []byte, i int) (end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(data); j++ {
		c := data[j]
		if !plainChar[c] {
			return j + 1, c == '"'
		}
	}
	return 0, false
}

// plainChar marks the bytes of a plain string's text: printable ASCII
// but '"' and '\\' (control characters are malformed in any string).
var plainChar = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Object reads a JSON object token by token, as encoding/json's
// Decoder.Token does and with its errors, for a caller that decides about
// each key before its value is read. Use it as
//
//	var o strictjson.Object
//	err := o.Open(data)
//	for err == nil {
//		key, ok, err := o.Next() // ok false: the closing '}'
//		raw, err := o.Value()
//	}
//	err = o.Close() // nothing but white space may follow
type Object struct {
	data  []byte
	pos   int
	state uint8
}

const (
	objStart = iota // after '{'
	objColon        // after a key
	objComma        // after a value
	objDone         // after '}'
)

// Open starts reading data, which must be one JSON object and nothing
// else. If data holds another value, the error names its kind ("want a
// JSON object, got null").
func (o *Object) Open(data []byte) error {
	*o = Object{data: data}
	i := skipSpace(data, 0)
	if i == len(data) {
		return io.EOF
	}
	switch c := data[i]; c {
	case '{':
		o.pos = i + 1
		return nil
	case '[': // a token of its own: what follows is not read
		return errors.New("want a JSON object, got [")
	case ']', '}', ':', ',':
		return invalid(c, " looking for beginning of value", i)
	}
	_, end, err := Value(data, i)
	if err != nil {
		return err
	}
	what, err := Describe(data[i:end])
	if err != nil {
		return err
	}
	return fmt.Errorf("want a JSON object, got %s", what)
}

// Next reads the next key, unescaped (it may share data's memory), or the
// closing '}' (ok false).
func (o *Object) Next() (key []byte, ok bool, err error) {
	if o.state == objColon {
		if _, err := o.Value(); err != nil {
			return nil, false, err
		}
	}
	data := o.data
	i := skipSpace(data, o.pos)
	if i == len(data) {
		return nil, false, io.EOF
	}
	context := ""
	if o.state == objComma {
		context = " after object key:value pair"
		switch data[i] {
		case ',':
			context = " looking for beginning of object key string"
			if i = skipSpace(data, i+1); i == len(data) {
				return nil, false, io.EOF
			}
		case '}':
			o.pos, o.state = i+1, objDone
			return nil, false, nil
		}
	} else if data[i] == '}' {
		o.pos, o.state = i+1, objDone
		return nil, false, nil
	}
	if c := data[i]; c != '"' || context == " after object key:value pair" {
		return nil, false, invalid(c, context, i)
	}
	end, err := scanString(data, i)
	if err != nil {
		return nil, false, err
	}
	o.pos, o.state = end, objColon
	return UnquoteBytes(data[i:end]), true, nil
}

// Value reads the colon after the key Next returned and the key's value,
// checked, and returns the value's bytes (without white space around it).
func (o *Object) Value() ([]byte, error) {
	if o.state != objColon {
		return nil, errors.New("strictjson: Value without a key")
	}
	data := o.data
	i := skipSpace(data, o.pos)
	if i == len(data) {
		return nil, io.EOF
	}
	if data[i] != ':' {
		return nil, &SyntaxError{"expected colon after object key", i}
	}
	start, end, err := Value(data, i+1)
	if err != nil {
		return nil, err
	}
	o.pos, o.state = end, objComma
	return data[start:end], nil
}

// End returns the index in data after the object's '}', for an object
// read from the start of a longer input (without Close).
func (o *Object) End() int { return o.pos }

// Close checks that nothing but white space follows the object's '}'.
func (o *Object) Close() error {
	if o.state != objDone {
		return errors.New("strictjson: Close before the end of the object")
	}
	if skipSpace(o.data, o.pos) != len(o.data) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// Array calls elem for each element of the JSON array raw, a whole value
// as Value returned it (so its syntax is checked), in order, with the
// element's index and bytes. A value other than an array is an error
// naming its kind ("want an array, got null").
func Array(raw []byte, elem func(i int, raw []byte) error) error {
	if len(raw) == 0 || raw[0] != '[' {
		what, err := Describe(raw)
		if err != nil {
			return err
		}
		return fmt.Errorf("want an array, got %s", what)
	}
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return nil
	}
	for n := 0; ; n++ {
		start, end, err := Value(raw, i)
		if err != nil {
			return err
		}
		if err := elem(n, raw[start:end]); err != nil {
			return err
		}
		i = skipSpace(raw, end)
		if i == len(raw) {
			return io.ErrUnexpectedEOF
		}
		switch raw[i] {
		case ',':
			i++
		case ']':
			return nil
		default:
			return invalid(raw[i], " after array element", i)
		}
	}
}
