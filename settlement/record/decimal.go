package record

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/shopspring/decimal"
)

// Decimal is an exact decimal quantity in a record (money, kWh, a price),
// kept as the text the record holds: "0.210" stays "0.210". It is written
// as a JSON string, and null when empty; it is read from a JSON string or
// number, and null or absent leaves it empty. A decoded Decimal is always a
// valid decimal or empty.
type Decimal string

// DecimalOf is d in its shortest exact form ("0.15", "-1.2", "0").
func DecimalOf(d decimal.Decimal) Decimal { return Decimal(d.String()) }

// IsSet reports whether the record holds the quantity.
func (d Decimal) IsSet() bool { return d != "" }

// Value is the quantity, 0 when it is not set.
func (d Decimal) Value() decimal.Decimal {
	if d == "" {
		return decimal.Zero
	}
	v, err := decimal.NewFromString(string(d))
	if err != nil {
		return decimal.Zero // not from a decoder or DecimalOf
	}
	return v
}

// MarshalJSON writes the text as a JSON string, or null when empty.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if d == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(d))
}

// UnmarshalJSON reads a JSON string or number holding a decimal, or null.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*d = ""
		return nil
	}
	text := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
	}
	if _, err := decimal.NewFromString(text); err != nil {
		return fmt.Errorf("%s is not a decimal", b)
	}
	*d = Decimal(text)
	return nil
}
