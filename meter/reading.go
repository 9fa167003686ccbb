package meter

import (
	"context"
	"errors"
	"time"
)

// Kind says what a device measures.
type Kind string

const (
	// KindMeter is a grid meter: power_w > 0 means importing from the grid.
	KindMeter Kind = "meter"
	// KindInverter is a solar inverter: power_w > 0 means producing; its
	// lifetime production is its export_wh.
	KindInverter Kind = "inverter"
)

// Reading is one poll of one device. A nil field or phase is a value the
// device does not have, or reported as not implemented: missing, never zero.
//
// Instantaneous values are float64 (physical measurements, not money).
// Energy counters are whole Wh in int64, rounded once from what the device
// reports, so that settlement works on exact integer deltas.
type Reading struct {
	Time   time.Time `json:"time"`
	Device string    `json:"device"` // profile name, e.g. "sdm630", or "sunspec"
	Unit   uint8     `json:"unit"`
	Kind   Kind      `json:"kind"`

	// SunSpec identity (common model 1), when the device has one.
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	Serial       string `json:"serial,omitempty"`

	PowerW      *float64 `json:"power_w,omitempty"`
	ImportWh    *int64   `json:"import_wh,omitempty"`
	ExportWh    *int64   `json:"export_wh,omitempty"`
	FrequencyHz *float64 `json:"frequency_hz,omitempty"`

	// Per phase, L1 first; a nil entry is a phase value the device lacks.
	VoltageV    []*float64 `json:"voltage_v,omitempty"`
	CurrentA    []*float64 `json:"current_a,omitempty"`
	PhasePowerW []*float64 `json:"phase_power_w,omitempty"`
}

// Device is one meter or inverter that can be polled.
type Device interface {
	Read(ctx context.Context) (Reading, error)
}

// ErrStale is returned for a reading older than the staleness limit.
var ErrStale = errors.New("reading is stale")

// StaleAfter is how many poll periods a reading stays fresh.
const StaleAfter = 3

// Fresh returns nil if r was taken within StaleAfter poll periods of now,
// and an error wrapping ErrStale otherwise. A zero Time is stale.
func (r Reading) Fresh(now time.Time, period time.Duration) error {
	if r.Time.IsZero() {
		return ErrStale
	}
	if age := now.Sub(r.Time); age > StaleAfter*period {
		return &StaleError{Age: age, Limit: StaleAfter * period}
	}
	return nil
}

// StaleError says how old a stale reading is.
type StaleError struct {
	Age, Limit time.Duration
}

func (e *StaleError) Error() string {
	return "reading is stale: " + e.Age.Round(time.Millisecond).String() + " old, limit " + e.Limit.String()
}

func (e *StaleError) Unwrap() error { return ErrStale }

// F returns a pointer to v, for building readings.
func F(v float64) *float64 { return &v }

// Wh returns a pointer to v, for building readings.
func Wh(v int64) *int64 { return &v }
