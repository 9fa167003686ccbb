package protocol

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Telemetry is a gateway's live power, published on telemetry/<gateway>, not
// retained, at most once per TelemetryMinPeriod:
//
//	{"v":1,"gateway":"home1","time":"2026-11-22T12:16:05Z","grid_w":-1234.5,
//	 "pv_w":3000,"import_wh":1520340,"export_wh":2210890}
//
// A value the gateway does not have is nil and left out of the JSON:
// missing, never zero. It is for display; no market or settlement math uses
// it.
type Telemetry struct {
	Gateway  string
	Time     time.Time // when the readings were taken
	GridW    *float64  // grid power, W: > 0 importing, < 0 exporting
	PVW      *float64  // solar production, W
	ImportWh *int64    // the grid meter's import counter, Wh
	ExportWh *int64    // the grid meter's export counter, Wh
}

// MaxTelemetrySize bounds a telemetry message.
const MaxTelemetrySize = 1 << 10

// Encode checks t and writes it in its JSON form.
func (t *Telemetry) Encode() ([]byte, error) {
	if err := CheckID(t.Gateway); err != nil {
		return nil, fmt.Errorf("telemetry: gateway %q: %w", t.Gateway, err)
	}
	b := append([]byte(nil), `{"v":1`...)
	b = appendField(b, "gateway", t.Gateway)
	ts, err := timeText(t.Time)
	if err != nil {
		return nil, fmt.Errorf("telemetry from %q: %w", t.Gateway, err)
	}
	b = appendField(b, "time", ts)
	for _, f := range []struct {
		key string
		v   *float64
	}{{"grid_w", t.GridW}, {"pv_w", t.PVW}} {
		if f.v == nil {
			continue
		}
		if math.IsNaN(*f.v) || math.IsInf(*f.v, 0) {
			return nil, fmt.Errorf("telemetry from %q: %s: %v is not a number JSON can hold", t.Gateway, f.key, *f.v)
		}
		n, _ := json.Marshal(*f.v) // finite: cannot fail
		b = append(b, `,"`+f.key+`":`...)
		b = append(b, n...)
	}
	for _, f := range []struct {
		key string
		v   *int64
	}{{"import_wh", t.ImportWh}, {"export_wh", t.ExportWh}} {
		if f.v == nil {
			continue
		}
		if *f.v < 0 {
			return nil, fmt.Errorf("telemetry from %q: %s: %d is negative", t.Gateway, f.key, *f.v)
		}
		b = append(b, `,"`+f.key+`":`...)
		b = strconv.AppendInt(b, *f.v, 10)
	}
	return append(b, '}'), nil
}

// DecodeTelemetry reads a telemetry message strictly (see DecodeOrder).
// Errors are *RejectError.
func DecodeTelemetry(data []byte) (*Telemetry, error) {
	if len(data) > MaxTelemetrySize {
		return nil, reject(RejectOversize, "telemetry: %d bytes (at most %d)", len(data), MaxTelemetrySize)
	}
	t := &Telemetry{}
	err := decodeObject(data,
		field{"v", true, version},
		field{"gateway", true, id(&t.Gateway)},
		field{"time", true, timestamp(&t.Time)},
		field{"grid_w", false, number(&t.GridW)},
		field{"pv_w", false, number(&t.PVW)},
		field{"import_wh", false, counter(&t.ImportWh)},
		field{"export_wh", false, counter(&t.ExportWh)},
	)
	if err != nil {
		return nil, reject(RejectMalformed, "telemetry: %w", err)
	}
	return t, nil
}

func counter(dst **int64) func([]byte) error {
	return func(raw []byte) error {
		if err := integer(dst)(raw); err != nil {
			return err
		}
		if **dst < 0 {
			return fmt.Errorf("%d is negative", **dst)
		}
		return nil
	}
}

// timeText writes t in UTC as RFC 3339, with fractional seconds only when
// it has them.
func timeText(t time.Time) (string, error) {
	if y := t.UTC().Year(); t.IsZero() || y < 1 || y > 9999 {
		return "", fmt.Errorf("time %v: want a time in the years 1-9999", t)
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// timestamp reads an RFC 3339 time into dst, in UTC.
func timestamp(dst *time.Time) func([]byte) error {
	return func(raw []byte) error {
		var s string
		if err := str(&s)(raw); err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return fmt.Errorf("want an RFC 3339 time, got %.40q", s)
		}
		if _, err := timeText(t); err != nil {
			return err
		}
		*dst = t.UTC()
		return nil
	}
}
