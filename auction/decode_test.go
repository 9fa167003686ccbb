package auction

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// errAny in a test table means: rejected, for whichever reason.
var errAny = errors.New("any of errSyntax, errPrecision, ErrOutOfRange")

func TestParseFixed(t *testing.T) {
	const maxInt = math.MaxInt64
	long := "1." + strings.Repeat("0", maxNumberLen-2) // maxNumberLen characters
	tests := []struct {
		s     string
		scale int
		limit int64
		want  int64
		err   error // nil: success
	}{
		// Plain numbers, signs, zero.
		{"0", 3, maxInt, 0, nil},
		{"-0", 3, maxInt, 0, nil},
		{"-0.000", 3, maxInt, 0, nil},
		{"1", 3, maxInt, 1000, nil},
		{"-1.5", 3, maxInt, -1500, nil},
		{"0.001", 3, maxInt, 1, nil},
		{"-0.001", 3, maxInt, -1, nil},
		{"123.456", 3, maxInt, 123456, nil},
		{"42", 0, maxInt, 42, nil},
		// Trailing zeros do not count as decimals.
		{"1.500", 3, maxInt, 1500, nil},
		{"1.5000000000", 3, maxInt, 1500, nil},
		{"0.0010", 3, maxInt, 1, nil},
		{"100", 0, maxInt, 100, nil},
		{"2.0000", 0, maxInt, 2, nil},
		// Leading zeros are accepted (in strings; JSON numbers cannot have them).
		{"007", 3, maxInt, 7000, nil},
		{"-007.50", 3, maxInt, -7500, nil},
		{"00.001", 3, maxInt, 1, nil},
		// Exponents.
		{"1e3", 3, maxInt, 1000000, nil},
		{"1E3", 3, maxInt, 1000000, nil},
		{"1e+3", 3, maxInt, 1000000, nil},
		{"1e-3", 3, maxInt, 1, nil},
		{"1e-0", 3, maxInt, 1000, nil},
		{"10e-4", 3, maxInt, 1, nil},
		{"1000e-6", 3, maxInt, 1, nil},
		{"1.5e2", 0, maxInt, 150, nil},
		{"-2.5E-1", 6, maxInt, -250000, nil},
		{"0.0000000000000000001e19", 0, maxInt, 1, nil},
		{"0e1000", 3, maxInt, 0, nil},
		{"0e-1000", 3, maxInt, 0, nil},
		{"1e-4", 3, maxInt, 0, errPrecision},
		{"1.0001", 3, maxInt, 0, errPrecision},
		{"2.0001", 3, maxInt, 0, errPrecision},
		{"0.1234567", 6, maxInt, 0, errPrecision},
		{"0.5", 0, maxInt, 0, errPrecision},
		{"1e-1000", 3, maxInt, 0, errPrecision},
		{"1e1000", 3, maxInt, 0, ErrOutOfRange},
		{"1e99999999", 3, maxInt, 0, ErrOutOfRange},
		{"1e-99999999", 3, maxInt, 0, errAny},
		{"123456789012345678901234567890.0001", 3, maxInt, 0, errAny},
		// Near the top of int64 and uint64.
		{"9223372036854775807", 0, maxInt, math.MaxInt64, nil},
		{"-9223372036854775807", 0, maxInt, -math.MaxInt64, nil},
		{"9223372036854775808", 0, maxInt, 0, ErrOutOfRange},
		{"-9223372036854775808", 0, maxInt, 0, ErrOutOfRange},
		{"9999999999999999999", 0, maxInt, 0, ErrOutOfRange},
		{"10000000000000000000", 0, maxInt, 0, ErrOutOfRange},
		{"18446744073709551615", 0, maxInt, 0, ErrOutOfRange},
		{"18446744073709551616", 0, maxInt, 0, ErrOutOfRange},
		{"1844674407370955161.6e1", 0, maxInt, 0, ErrOutOfRange},
		{"1e18", 0, maxInt, 1e18, nil},
		{"1e19", 0, maxInt, 0, ErrOutOfRange},
		{"9223372036.854775807", 9, maxInt, math.MaxInt64, nil},
		{"9223372036.854775808", 9, maxInt, 0, ErrOutOfRange},
		// The market's limits.
		{"1000000000", 3, 1e12, 1e12, nil},
		{"-1000000000", 3, 1e12, -1e12, nil},
		{"1000000000.001", 3, 1e12, 0, ErrOutOfRange},
		{"1e9", 3, 1e12, 1e12, nil},
		{"1000000", 6, 1e12, 1e12, nil},
		{"-1000000.000001", 6, 1e12, 0, ErrOutOfRange},
		{"1", 3, 0, 0, ErrOutOfRange},
		{"0", 3, 0, 0, nil},
		// Length: maxNumberLen characters are fine, one more is not.
		{long, 3, maxInt, 1000, nil},
		{long + "0", 3, maxInt, 0, ErrOutOfRange},
		{strings.Repeat("0", maxNumberLen+1), 3, maxInt, 0, ErrOutOfRange},
		{strings.Repeat("9", 5000), 3, maxInt, 0, ErrOutOfRange},
		// Not numbers.
		{"", 3, maxInt, 0, errSyntax},
		{"-", 3, maxInt, 0, errSyntax},
		{".5", 3, maxInt, 0, errSyntax},
		{"-.5", 3, maxInt, 0, errSyntax},
		{"5.", 3, maxInt, 0, errSyntax},
		{"+1", 3, maxInt, 0, errSyntax},
		{"1e", 3, maxInt, 0, errSyntax},
		{"1e+", 3, maxInt, 0, errSyntax},
		{"1e-", 3, maxInt, 0, errSyntax},
		{"e5", 3, maxInt, 0, errSyntax},
		{"1.2.3", 3, maxInt, 0, errSyntax},
		{"1,5", 3, maxInt, 0, errSyntax},
		{" 1", 3, maxInt, 0, errSyntax},
		{"1 ", 3, maxInt, 0, errSyntax},
		{"--1", 3, maxInt, 0, errSyntax},
		{"0x10", 3, maxInt, 0, errSyntax},
		{"1_000", 3, maxInt, 0, errSyntax},
		{"1/2", 3, maxInt, 0, errSyntax},
		{"Inf", 3, maxInt, 0, errSyntax},
		{"NaN", 3, maxInt, 0, errSyntax},
		{"1e1.5", 3, maxInt, 0, errSyntax},
		{"\u0661", 3, maxInt, 0, errSyntax}, // ARABIC-INDIC DIGIT ONE
		{"1\x00", 3, maxInt, 0, errSyntax},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%.30s/%d", tc.s, tc.scale), func(t *testing.T) {
			got, err := parseFixed(tc.s, tc.scale, tc.limit)
			if tc.err == errAny && err != nil && got == 0 &&
				(errors.Is(err, errSyntax) || errors.Is(err, errPrecision) || errors.Is(err, ErrOutOfRange)) {
				return
			}
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("error %v, want %d", err, tc.want)
			case tc.err == nil && got != tc.want:
				t.Fatalf("got %d, want %d", got, tc.want)
			case tc.err != nil && err == nil:
				t.Fatalf("got %d, want an error wrapping %q", got, tc.err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("error %q does not wrap %q", err, tc.err)
			case err != nil && got != 0:
				t.Fatalf("error %v with value %d", err, got)
			}
		})
	}
}

// TestParseFixedZeroWithLongExponent: zero is zero whatever its exponent.
func TestParseFixedZeroWithLongExponent(t *testing.T) {
	for _, s := range []string{"0e1001", "0e10000", "0e100000", "0.0e-100000", "-0E+99999999"} {
		got, err := parseFixed(s, 3, math.MaxInt64)
		if err != nil || got != 0 {
			t.Errorf("parseFixed(%q) = %d, %v; want 0", s, got, err)
		}
	}
}

func TestParseFixedErrorText(t *testing.T) {
	tests := []struct {
		s     string
		scale int
		limit int64
		want  string
	}{
		{"", 3, 1e12, "not a decimal number: empty"},
		{".5", 3, 1e12, `not a decimal number: ".5"`},
		{"2.0001", 3, 1e12, `too many decimals: "2.0001" has more than 3`},
		{"2000000", 6, 1e12, `out of range: "2000000" exceeds the limit 1000000`},
		{strings.Repeat("1", 5000), 3, 1e12, "out of range: 5000 characters (at most 64)"},
		{"1e100000", 3, 1e12, `out of range: "1e100000"`},
		{"1e10000", 3, 1e12, `out of range: "1e10000"`},
	}
	for _, tc := range tests {
		_, err := parseFixed(tc.s, tc.scale, tc.limit)
		if err == nil || err.Error() != tc.want {
			t.Errorf("parseFixed(%.20q): error %v, want %q", tc.s, err, tc.want)
		}
	}
}

// TestParseFixedLongInputIsCheap: the length check comes before any work,
// so a megabyte of digits is rejected at once.
func TestParseFixedLongInputIsCheap(t *testing.T) {
	huge := strings.Repeat("7", 1<<20)
	start := time.Now()
	for range 10000 {
		if _, err := parseFixed(huge, 3, 1e12); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("error %v, want ErrOutOfRange", err)
		}
	}
	// Looking at the digits at all would cost 10 GB of scanning (seconds);
	// the length check costs microseconds.
	if d := time.Since(start); d > time.Second {
		t.Errorf("10000 rejections of a 1 MiB number took %v", d)
	}
}

func TestAppendFixed(t *testing.T) {
	tests := []struct {
		v     int64
		scale int
		want  string
	}{
		{0, 0, "0"},
		{0, 3, "0"},
		{0, 9, "0"},
		{1, 3, "0.001"},
		{-1, 3, "-0.001"},
		{10, 3, "0.01"},
		{1000, 3, "1"},
		{1500, 3, "1.5"},
		{-1500, 3, "-1.5"},
		{-1500000, 6, "-1.5"},
		{123456, 3, "123.456"},
		{120000, 6, "0.12"},
		{-25000, 6, "-0.025"},
		{1e12, 3, "1000000000"},
		{999999999999, 3, "999999999.999"},
		{42, 0, "42"},
		{-42, 0, "-42"},
		{math.MaxInt64, 0, "9223372036854775807"},
		{math.MinInt64, 0, "-9223372036854775808"},
		{math.MaxInt64, 9, "9223372036.854775807"},
		{math.MinInt64, 9, "-9223372036.854775808"},
		{math.MinInt64, 3, "-9223372036854775.808"},
		{-1000000000, 9, "-1"},
		{-1, 9, "-0.000000001"},
	}
	for _, tc := range tests {
		got := string(appendFixed([]byte("x"), tc.v, tc.scale))
		if got != "x"+tc.want {
			t.Errorf("appendFixed(%d, %d) = %q, want %q", tc.v, tc.scale, got[1:], tc.want)
		}
		if formatFixed(tc.v, tc.scale) != tc.want {
			t.Errorf("formatFixed(%d, %d) = %q, want %q", tc.v, tc.scale, formatFixed(tc.v, tc.scale), tc.want)
		}
		// Every formatted value parses back (MinInt64 has no positive twin).
		if tc.v == math.MinInt64 {
			continue
		}
		if back, err := parseFixed(tc.want, tc.scale, math.MaxInt64); err != nil || back != tc.v {
			t.Errorf("parseFixed(%q, %d) = %d, %v; want %d", tc.want, tc.scale, back, err, tc.v)
		}
	}
}

func defaultTestMarket(t testing.TB) *Market {
	t.Helper()
	m, err := NewMarket(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// orderLine is one order of a test book, as JSON.
func jsonOrder(id, side, kwh, price string) string {
	return fmt.Sprintf(`{"id":%q,"participant":"p-%s","side":%q,"kwh":%s,"price":%s}`, id, id, side, kwh, price)
}

func jsonBook(orders ...string) string {
	return `{"interval":"2026-11-22T10:15Z","orders":[` + strings.Join(orders, ",") + `]}`
}

func TestDecodeBookErrors(t *testing.T) {
	ok := jsonOrder("o1", "sell", `"1"`, `"0.1"`)
	tests := []struct {
		name, book string
		want       string // the exact error
		// field and index of the *OrderError; index < 0: not an OrderError
		field string
		index int
	}{
		{"kwh decimals", jsonBook(ok, jsonOrder("o2", "buy", `"2.0001"`, `"0.2"`)),
			`order "o2": kwh: too many decimals: "2.0001" has more than 3 decimals (market rule qty_decimals = 3)`, "kwh", 1},
		{"kwh decimals as number", jsonBook(ok, jsonOrder("o2", "buy", `2.0001`, `"0.2"`)),
			`order "o2": kwh: too many decimals: "2.0001" has more than 3 decimals (market rule qty_decimals = 3)`, "kwh", 1},
		{"price decimals", jsonBook(jsonOrder("o1", "buy", `1`, `0.0000001`)),
			`order "o1": price: too many decimals: "0.0000001" has more than 6 decimals (market rule price_decimals = 6)`, "price", 0},
		{"zero kwh", jsonBook(ok, jsonOrder("o2", "buy", `0`, `"0.2"`)),
			`order "o2": kwh: 0 is not positive`, "kwh", 1},
		{"negative kwh", jsonBook(jsonOrder("o1", "buy", `"-0.001"`, `"0.2"`)),
			`order "o1": kwh: -0.001 is not positive`, "kwh", 0},
		{"kwh over the order limit", jsonBook(jsonOrder("o1", "buy", `1e10`, `"0.2"`)),
			`order "o1": kwh: out of range: "1e10" exceeds the limit 1000000000`, "kwh", 0},
		{"kwh 5000 digits", jsonBook(ok, jsonOrder("o2", "buy", strings.Repeat("9", 5000), `"0.2"`)),
			`order "o2": kwh: out of range: 5000 characters (at most 64)`, "kwh", 1},
		{"kwh empty string", jsonBook(jsonOrder("o1", "buy", `""`, `"0.2"`)),
			`order "o1": kwh: not a decimal number: empty`, "kwh", 0},
		{"kwh missing", jsonBook(`{"id":"o1","participant":"p","side":"buy","price":"0.2"}`),
			`order "o1": kwh: not a decimal number: empty`, "kwh", 0},
		{"kwh with unit", jsonBook(jsonOrder("o1", "buy", `"1kWh"`, `"0.2"`)),
			`order "o1": kwh: not a decimal number: "1kWh"`, "kwh", 0},
		{"price beyond the limit", jsonBook(jsonOrder("o1", "sell", `1`, `-1e7`)),
			`order "o1": price: out of range: "-1e7" exceeds the limit 1000000`, "price", 0},
		{"price with plus", jsonBook(jsonOrder("o1", "sell", `1`, `"+0.1"`)),
			`order "o1": price: not a decimal number: "+0.1"`, "price", 0},
		{"unknown side", jsonBook(ok, jsonOrder("o2", "bid", `1`, `1`)),
			`order "o2": side: unknown side "bid" (want buy or sell)`, "side", 1},
		{"side in capitals", jsonBook(jsonOrder("o1", "BUY", `1`, `1`)),
			`order "o1": side: unknown side "BUY" (want buy or sell)`, "side", 0},
		{"id with a space", jsonBook(ok, jsonOrder("o 2", "buy", `1`, `1`)),
			`order #1: id: character ' ' at 1 is not one of [A-Za-z0-9._:-]`, "id", 1},
		{"id with a slash", jsonBook(jsonOrder("a/b", "buy", `1`, `1`)),
			`order #0: id: character '/' at 1 is not one of [A-Za-z0-9._:-]`, "id", 0},
		{"id empty", jsonBook(ok, ok, jsonOrder("", "buy", `1`, `1`)),
			`order #2: id: empty`, "id", 2},
		{"id too long", jsonBook(jsonOrder(strings.Repeat("x", 65), "buy", `1`, `1`)),
			`order #0: id: 65 characters (at most 64)`, "id", 0},
		{"participant bad", jsonBook(`{"id":"o1","participant":"h\u00e9","side":"buy","kwh":1,"price":1}`),
			`order "o1": participant: character 'é' at 1 is not one of [A-Za-z0-9._:-]`, "participant", 0},
		{"duplicate id", jsonBook(ok, jsonOrder("o2", "buy", `1`, `1`), jsonOrder("o1", "buy", `1`, `1`)),
			`order "o1": id: duplicate order id`, "id", 2},
		{"unknown order field", jsonBook(`{"id":"o1","participant":"p","side":"buy","kwh":1,"price":1,"note":""}`),
			`order "o1": note: unknown key "note" (want one of id, participant, side, kwh, price)`, "note", 0},
		{"unknown book field", `{"orders":[],"version":1}`,
			`book: version: unknown key "version" (want one of interval, orders)`, "", -1},
		{"trailing object", jsonBook(ok) + `{}`,
			`book: trailing data after the JSON object`, "", -1},
		{"trailing garbage", jsonBook(ok) + ` x`,
			`book: trailing data after the JSON object`, "", -1},
		{"trailing bracket", jsonBook(ok) + `]`,
			`book: trailing data after the JSON object`, "", -1},
		{"no orders", `{"interval":"i"}`, `book: no "orders" array`, "", -1},
		{"orders null", `{"orders":null}`, `book: orders: want an array, got null`, "", -1},
		{"null book", `null`, `book: want a JSON object, got null`, "", -1},
		{"empty input", ``, `book: EOF`, "", -1},
		{"truncated", `{"orders":[`, `book: unexpected EOF`, "", -1},
		{"bad interval", `{"interval":"a b","orders":[]}`,
			`book interval "a b": character ' ' at 1 is not one of [A-Za-z0-9._:-]`, "", -1},
	}
	m := defaultTestMarket(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := m.DecodeBook(strings.NewReader(tc.book))
			if err == nil {
				t.Fatalf("accepted: %+v", b)
			}
			if !reflect.DeepEqual(b, Book{}) {
				t.Errorf("a rejected book comes with a non-zero Book: %+v", b)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
			var oe *OrderError
			if tc.index < 0 {
				if errors.As(err, &oe) {
					t.Errorf("an *OrderError for a book-level fault: %v", err)
				}
				return
			}
			if !errors.As(err, &oe) {
				t.Fatalf("not an *OrderError: %T %v", err, err)
			}
			if oe.Index != tc.index || oe.Field != tc.field {
				t.Errorf("OrderError index %d field %q, want %d %q", oe.Index, oe.Field, tc.index, tc.field)
			}
			if !errors.Is(err, ErrInvalidOrder) {
				t.Error("the error is not ErrInvalidOrder")
			}
			if dup := strings.Contains(tc.want, "duplicate"); errors.Is(err, ErrDuplicateID) != dup {
				t.Errorf("errors.Is(err, ErrDuplicateID) = %v, want %v", !dup, dup)
			}
		})
	}
}

// TestDecodeBookErrorsNameTheOrder: every bad order, whatever is wrong with
// it, is rejected with an error naming the order (by id, or index when the id
// itself is unusable) and the field.
func TestDecodeBookErrorsNameTheOrder(t *testing.T) {
	ok := jsonOrder("o1", "sell", `"1"`, `"0.1"`)
	tests := []struct {
		name, bad string
		want      string // prefix naming the order and the field
	}{
		{"kwh true", jsonOrder("o2", "buy", `true`, `1`), `order "o2": kwh: `},
		{"kwh null", jsonOrder("o2", "buy", `null`, `1`), `order "o2": kwh: `},
		{"kwh object", jsonOrder("o2", "buy", `{}`, `1`), `order "o2": kwh: `},
		{"kwh array", jsonOrder("o2", "buy", `[1]`, `1`), `order "o2": kwh: `},
		{"price false", jsonOrder("o2", "buy", `1`, `false`), `order "o2": price: `},
		{"id a number", `{"id":2,"participant":"p","side":"buy","kwh":1,"price":1}`, `order #1: id: `},
		{"side null", `{"id":"o2","participant":"p","side":null,"kwh":1,"price":1}`, `order "o2": side: `},
		{"participant a number", `{"id":"o2","participant":7,"side":"buy","kwh":1,"price":1}`, `order "o2": participant: `},
		{"order a number", `7`, `order #1: `},
	}
	m := defaultTestMarket(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.DecodeBook(strings.NewReader(jsonBook(ok, tc.bad)))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.HasPrefix(err.Error(), tc.want) {
				return
			}
			t.Errorf("error %q, want prefix %q", err, tc.want)
		})
	}
}

// TestDecodeBookFieldNamesExact: only the documented, lower-case field names
// are accepted, each at most once; anything else is an unknown field, as the
// DecodeBook documentation promises.
func TestDecodeBookFieldNamesExact(t *testing.T) {
	tests := []struct{ name, book, field string }{
		{"KWH", jsonBook(`{"id":"o1","participant":"p","side":"buy","KWH":"1","price":"1"}`), "KWH"},
		{"Price", jsonBook(`{"id":"o1","participant":"p","side":"buy","kwh":"1","Price":"1"}`), "Price"},
		{"Orders", `{"Orders":[]}`, "Orders"},
		{"duplicate kwh", jsonBook(`{"id":"o1","participant":"p","side":"buy","kwh":"1","price":"1","kwh":"2"}`), "kwh"},
		{"duplicate orders", `{"orders":[` + jsonOrder("o1", "buy", "1", "1") + `],"orders":[]}`, "orders"},
	}
	m := defaultTestMarket(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := m.DecodeBook(strings.NewReader(tc.book))
			if err == nil {
				t.Fatalf("book with field %s accepted as %+v", tc.name, b)
			}
			if !strings.Contains(err.Error(), `"`+tc.field+`"`) {
				t.Errorf("error %q does not name the field %q", err, tc.field)
			}
		})
	}
}

// TestDecodeBookNumberForms: a kWh or price given as a JSON number, in any
// exponent form, or as a string decodes to exactly the same order.
func TestDecodeBookNumberForms(t *testing.T) {
	m := defaultTestMarket(t)
	tests := []struct {
		kwh, price []string // spellings of one value each
		wantQty    int64
		wantPrice  int64
	}{
		{[]string{`1.5`, `"1.5"`, `15e-1`, `"15e-1"`, `0.15E+1`, `"0.15E1"`, `1.500`, `"1.5000000"`, `1500e-3`},
			[]string{`0.12`, `"0.12"`, `12e-2`, `"1.2E-1"`, `0.120000`, `"0.1200000000"`},
			1500, 120000},
		{[]string{`2`, `"2"`, `2.0`, `2e0`, `"0.002e3"`, `20E-1`},
			[]string{`-0.5`, `"-0.5"`, `-5e-1`, `"-50E-2"`, `-0.500`},
			2000, -500000},
		{[]string{`1000000000`, `1e9`, `"1E+9"`, `1000000000.000`},
			[]string{`1000000`, `1e6`, `"1000000.000000"`, `"0.001e9"`, `1000000.0e-0`},
			1e12, 1e12},
		{[]string{`0.001`, `1e-3`, `"0.0010"`, `"0.000001e3"`},
			[]string{`0`, `"0"`, `-0`, `"-0.0"`, `0e5`, `-0.0e-9`},
			1, 0},
	}
	for _, tc := range tests {
		for _, kwh := range tc.kwh {
			for _, price := range tc.price {
				b, err := m.DecodeBook(strings.NewReader(jsonBook(jsonOrder("o1", "buy", kwh, price))))
				if err != nil {
					t.Errorf("kwh %s price %s: %v", kwh, price, err)
					continue
				}
				want := Order{ID: "o1", Participant: "p-o1", Side: Buy, Qty: tc.wantQty, Price: tc.wantPrice}
				if len(b.Orders) != 1 || b.Orders[0] != want {
					t.Errorf("kwh %s price %s: %+v, want %+v", kwh, price, b.Orders, want)
				}
			}
		}
	}
}

// TestDecodeBookAccepts: whitespace around the object is fine, the interval
// is optional, and the book comes back in order.
func TestDecodeBookAccepts(t *testing.T) {
	m := defaultTestMarket(t)
	in := "\n\t " + `{"orders":[` + jsonOrder("z", "sell", `"0.001"`, `"-1000000"`) + "," +
		jsonOrder("a", "buy", `1000000000`, `1000000`) + `]}` + " \n\r\n"
	b, err := m.DecodeBook(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Book{Orders: []Order{
		{ID: "z", Participant: "p-z", Side: Sell, Qty: 1, Price: -1e12},
		{ID: "a", Participant: "p-a", Side: Buy, Qty: 1e12, Price: 1e12},
	}}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("got %+v\nwant %+v", b, want)
	}
	enc := string(m.EncodeBook(b))
	const wantEnc = `{"orders":[{"id":"z","participant":"p-z","side":"sell","kwh":"0.001","price":"-1000000"},` +
		`{"id":"a","participant":"p-a","side":"buy","kwh":"1000000000","price":"1000000"}]}` + "\n"
	if enc != wantEnc {
		t.Errorf("EncodeBook\n got: %s\nwant: %s", enc, wantEnc)
	}
}

// TestDecodeBookLongNumberIsCheap: a megabyte-long number in a book is
// rejected quickly (the JSON scan is linear; parsing never starts).
func TestDecodeBookLongNumberIsCheap(t *testing.T) {
	m := defaultTestMarket(t)
	for _, kwh := range []string{strings.Repeat("9", 1<<20), `"` + strings.Repeat("9", 1<<20) + `"`,
		"0." + strings.Repeat("0", 1<<20) + "1"} {
		start := time.Now()
		_, err := m.DecodeBook(strings.NewReader(jsonBook(jsonOrder("o1", "buy", kwh, "1"))))
		want := fmt.Sprintf(`order "o1": kwh: out of range: %d characters (at most %d)`, len(strings.Trim(kwh, `"`)), maxNumberLen)
		if err == nil || err.Error() != want {
			t.Errorf("error %v, want %s", err, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a 1 MiB number took %v to reject", d)
		}
	}
}

// TestClearRejectsBadBook: a book built in code, not decoded, is checked by
// Clear and CheckBook with the same errors naming the order.
func TestClearRejectsBadBook(t *testing.T) {
	good := func(id string, side Side) Order {
		return Order{ID: id, Participant: "p", Side: side, Qty: 1000, Price: 100000}
	}
	tests := []struct {
		name  string
		bad   Order
		want  string
		field string
	}{
		{"zero qty", Order{ID: "o3", Participant: "p", Side: Buy, Qty: 0, Price: 1}, `order "o3": kwh: 0 is not positive`, "kwh"},
		{"qty over limit", Order{ID: "o3", Participant: "p", Side: Buy, Qty: 1e12 + 1, Price: 1},
			`order "o3": kwh: out of range: 1000000000.001 exceeds the order limit 1000000000 (market rule max_order_kwh)`, "kwh"},
		{"zero side", Order{ID: "o3", Participant: "p", Qty: 1, Price: 1}, `order "o3": side: unknown side Side(0) (want buy or sell)`, "side"},
		{"price over limit", Order{ID: "o3", Participant: "p", Side: Sell, Qty: 1, Price: -1e12 - 1},
			`order "o3": price: -1000000.000001 is beyond the limit ±1000000 (market rule max_abs_price)`, "price"},
		{"bad id", Order{ID: "o 3", Participant: "p", Side: Sell, Qty: 1, Price: 1},
			`order #2: id: character ' ' at 1 is not one of [A-Za-z0-9._:-]`, "id"},
		{"empty participant", Order{ID: "o3", Side: Sell, Qty: 1, Price: 1}, `order "o3": participant: empty`, "participant"},
		{"duplicate", good("o1", Buy), `order "o1": id: duplicate order id`, "id"},
	}
	m := defaultTestMarket(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Book{Orders: []Order{good("o1", Sell), good("o2", Buy), tc.bad, good("o4", Sell)}}
			res, err := m.Clear(b)
			if err == nil {
				t.Fatalf("cleared: %+v", res)
			}
			if res != nil {
				t.Error("a result with the error")
			}
			if err.Error() != tc.want {
				t.Errorf("Clear error\n got: %s\nwant: %s", err, tc.want)
			}
			var oe *OrderError
			if !errors.As(err, &oe) || oe.Index != 2 || oe.Field != tc.field || !errors.Is(err, ErrInvalidOrder) {
				t.Errorf("Clear error %#v, want an ErrInvalidOrder *OrderError at index 2, field %s", err, tc.field)
			}
			if err2 := m.CheckBook(b); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("CheckBook error %v, want the same as Clear's", err2)
			}
		})
	}
}
