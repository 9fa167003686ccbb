// Package testclock is an accelerated clock that separate processes can
// share, for tests and demos only: every process given the same epoch,
// origin and speed computes the same time,
//
//	now = epoch + (wall clock - origin) * speed + skew
//
// so a test can run many one-minute market intervals in a few seconds each
// across real `p2pgrid gateway` and `p2pgrid sim` processes, and skew one
// of them. A production gateway never uses it: its clock is time.Now.
//
// It knows nothing of markets or meters.
package testclock

import (
	"fmt"
	"strconv"
	"time"
)

// Clock is the shared accelerated clock. The zero Clock is not valid; use
// Parse or fill in every field but Skew.
type Clock struct {
	// Epoch is the clock's time at Origin.
	Epoch time.Time
	// Origin is the wall-clock moment the clock reads Epoch.
	Origin time.Time
	// Speed is clock seconds per wall-clock second (> 0).
	Speed float64
	// Skew is added to every reading: a clock that is wrong by that much
	// (in clock time).
	Skew time.Duration
	// Wall is the wall clock; nil means time.Now.
	Wall func() time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	wall := time.Now
	if c.Wall != nil {
		wall = c.Wall
	}
	// Round(0) drops the monotonic reading: Origin comes from another
	// process, so only wall-clock time is common to both.
	d := wall().Round(0).Sub(c.Origin)
	return c.Epoch.Add(time.Duration(float64(d) * c.Speed)).Add(c.Skew)
}

// Real converts a clock duration into wall-clock time at the clock's speed.
func (c *Clock) Real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Speed)
}

// Parse builds a Clock from its command-line form: epoch in RFC 3339,
// origin in Unix nanoseconds, speed > 0, skew a Go duration ("" is 0).
func Parse(epoch, origin string, speed float64, skew string) (*Clock, error) {
	e, err := time.Parse(time.RFC3339Nano, epoch)
	if err != nil {
		return nil, fmt.Errorf("clock epoch: %w", err)
	}
	o, err := strconv.ParseInt(origin, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("clock origin: %q is not Unix nanoseconds", origin)
	}
	if !(speed > 0) || speed > 1e6 {
		return nil, fmt.Errorf("clock speed: %v is not in (0, 1e6]", speed)
	}
	var s time.Duration
	if skew != "" {
		if s, err = time.ParseDuration(skew); err != nil {
			return nil, fmt.Errorf("clock skew: %w", err)
		}
	}
	return &Clock{Epoch: e.UTC(), Origin: time.Unix(0, o), Speed: speed, Skew: s}, nil
}
