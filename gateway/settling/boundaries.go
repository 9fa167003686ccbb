package settling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Boundary is the grid meter's counters at the start of an interval, and
// what became of the metered figures of the interval that ends there.
type Boundary struct {
	Start    time.Time `json:"start"` // the interval boundary
	At       time.Time `json:"at"`    // when the reading was taken
	ImportWh int64     `json:"import_wh"`
	ExportWh int64     `json:"export_wh"`
	// Near: the reading came within meterWindow poll periods of Start, so
	// its counters stand for the boundary.
	Near bool `json:"near"`
	// Figures is the state of the metered figures of the interval that
	// ends at Start: "" not published yet, FiguresSent, or FiguresNone
	// (there are none to publish: a boundary reading too late, a counter
	// reset).
	Figures string `json:"figures,omitempty"`
}

// The states of a Boundary's Figures.
const (
	FiguresSent = "sent"
	FiguresNone = "none"
)

// Store keeps the boundaries' file: Load returns nil and no error when
// there is none yet; Save replaces it whole and atomically.
type Store interface {
	Load() ([]byte, error)
	Save(data []byte) error
}

// Boundaries holds the boundary counters, in memory and, with a Store,
// saved on every change: a gateway restarted across a boundary still has
// the counters at the interval's start, and publishes the interval's
// figures once it reads the counters at its end.
type Boundaries struct {
	mu      sync.Mutex
	store   Store // nil keeps them in memory only
	byStart map[time.Time]*Boundary
}

type boundariesFile struct {
	V          int        `json:"v"`
	Boundaries []Boundary `json:"boundaries"`
}

// NewBoundaries loads the boundaries from store (nil for none). A store
// that cannot be read or holds a corrupt file is an error, and the
// boundaries start empty (the file is rewritten at the next boundary).
func NewBoundaries(store Store) (*Boundaries, error) {
	b := &Boundaries{store: store, byStart: map[time.Time]*Boundary{}}
	if store == nil {
		return b, nil
	}
	data, err := store.Load()
	if err != nil || data == nil {
		return b, err
	}
	var f boundariesFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return b, fmt.Errorf("boundary counters: %w", err)
	}
	if f.V != 1 {
		return b, fmt.Errorf("boundary counters: version %d, want 1", f.V)
	}
	for i := range f.Boundaries {
		x := f.Boundaries[i]
		x.Start, x.At = x.Start.UTC(), x.At.UTC()
		b.byStart[x.Start] = &x
	}
	return b, nil
}

// Add records the counters at start unless a boundary is already there,
// and reports whether it did.
func (b *Boundaries) Add(x Boundary) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, seen := b.byStart[x.Start]; seen {
		return false, nil
	}
	b.byStart[x.Start] = &x
	return true, b.saveLocked()
}

// Due returns the intervals whose figures are not settled yet (Figures
// ""), oldest first: the boundary at each one's end, and the one at its
// start, or nil when the gateway has none (it was not running then).
func (b *Boundaries) Due(length time.Duration) (pairs []Due) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, end := range b.sortedLocked() {
		if end.Figures != "" {
			continue
		}
		p := Due{End: *end}
		if start, ok := b.byStart[end.Start.Add(-length)]; ok {
			x := *start
			p.Start = &x
		}
		pairs = append(pairs, p)
	}
	return pairs
}

// Due is an interval whose figures are due: the boundaries at its end and
// (nil if the gateway was not running then) at its start.
type Due struct {
	Start *Boundary
	End   Boundary
}

// Settle sets the Figures state of the interval that ends at end.
func (b *Boundaries) Settle(end time.Time, figures string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, ok := b.byStart[end]
	if !ok || x.Figures == figures {
		return nil
	}
	x.Figures = figures
	return b.saveLocked()
}

// Len returns how many boundaries are held.
func (b *Boundaries) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byStart)
}

// Sent reports whether the figures of the interval that ends at end were
// published.
func (b *Boundaries) Sent(end time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, ok := b.byStart[end]
	return ok && x.Figures == FiguresSent
}

// Forget drops boundaries before cut (kept in the file until the next
// change).
func (b *Boundaries) Forget(cut time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for at := range b.byStart {
		if at.Before(cut) {
			delete(b.byStart, at)
		}
	}
}

func (b *Boundaries) sortedLocked() []*Boundary {
	out := make([]*Boundary, 0, len(b.byStart))
	for _, x := range b.byStart {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// saveLocked hands the whole file to the store.
func (b *Boundaries) saveLocked() error {
	if b.store == nil {
		return nil
	}
	f := boundariesFile{V: 1, Boundaries: []Boundary{}}
	for _, x := range b.sortedLocked() {
		f.Boundaries = append(f.Boundaries, *x)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := b.store.Save(append(data, '\n')); err != nil {
		return fmt.Errorf("boundary counters: %w", err)
	}
	return nil
}
