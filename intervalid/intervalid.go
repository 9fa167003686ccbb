// Package intervalid is how p2pgrid names a delivery interval: by its start
// in UTC, to the minute, "2026-11-22T12:15Z". The wire protocol's topics and
// messages, the auction's books, the ledger's records and their readers
// (the InfluxDB sink, p2pgrid settlements) all use these names.
//
// It is a leaf: it imports nothing of p2pgrid, so that settlement and its
// subpackages, which must not import gateway/*, parse interval names with
// the same rule as gateway/protocol.
package intervalid

import (
	"errors"
	"fmt"
	"time"
)

// Layout is the time layout of an interval id.
const Layout = "2006-01-02T15:04Z"

// Format returns the id of the interval starting at start: start in UTC,
// to the minute (seconds are dropped).
func Format(start time.Time) string { return start.UTC().Format(Layout) }

// Parse parses an interval id and returns the interval's start, in UTC.
// Only the exact form Format writes is accepted.
func Parse(id string) (time.Time, error) {
	t, err := time.Parse(Layout, id)
	if err != nil || Format(t) != id {
		return time.Time{}, fmt.Errorf("interval %.40q: want the UTC start of the interval as YYYY-MM-DDThh:mmZ", id)
	}
	return t, nil
}

// looseLayouts are the spellings ParseLoose accepts besides an id.
var looseLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

// ParseLoose parses an interval named by its start in RFC 3339, with or
// without seconds and in any offset: an id ("2026-11-22T10:15Z") or a
// longer spelling of one ("2026-11-22T10:15:00Z", "2026-11-22T11:15+01:00").
// Readers of ledger records use it, so that a record written by another
// producer still maps; what p2pgrid writes, and the wire, is Parse's form.
// The time is returned as given (not converted to UTC).
func ParseLoose(name string) (time.Time, error) {
	if name == "" {
		return time.Time{}, errors.New("interval is empty")
	}
	for _, l := range looseLayouts {
		if t, err := time.Parse(l, name); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("interval %.40q is not an RFC 3339 start time (e.g. 2026-11-22T10:15Z)", name)
}
