package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// BoundariesFile is the file in the gateway's state directory that keeps
// the grid meter's counters at interval boundaries across restarts.
const BoundariesFile = "boundaries.json"

// boundary is the grid meter's counters at the start of an interval, and
// what became of the metered figures of the interval that ends there.
type boundary struct {
	Start    time.Time `json:"start"` // the interval boundary
	At       time.Time `json:"at"`    // when the reading was taken
	ImportWh int64     `json:"import_wh"`
	ExportWh int64     `json:"export_wh"`
	// Near: the reading came within meterWindow poll periods of Start, so
	// its counters stand for the boundary.
	Near bool `json:"near"`
	// Figures is the state of the metered figures of the interval that
	// ends at Start: "" not published yet, figuresSent, or figuresNone
	// (there are none to publish: a boundary reading too late, a counter
	// reset).
	Figures string `json:"figures,omitempty"`
}

const (
	figuresSent = "sent"
	figuresNone = "none"
)

// boundaries holds the boundary counters, in memory and, with a path, in
// a file rewritten atomically on every change: a gateway restarted across
// a boundary still has the counters at the interval's start, and publishes
// the interval's figures once it reads the counters at its end.
type boundaries struct {
	mu      sync.Mutex
	path    string // "" keeps them in memory only
	byStart map[time.Time]*boundary
}

type boundariesFile struct {
	V          int        `json:"v"`
	Boundaries []boundary `json:"boundaries"`
}

// loadBoundaries reads path ("" for none). A missing file is no error; an
// unreadable or corrupt one is, and the boundaries start empty (the file
// is rewritten at the next boundary).
func loadBoundaries(path string) (*boundaries, error) {
	b := &boundaries{path: path, byStart: map[time.Time]*boundary{}}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("boundary counters %s: %w", path, err)
	}
	var f boundariesFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return b, fmt.Errorf("boundary counters %s: %w", path, err)
	}
	if f.V != 1 {
		return b, fmt.Errorf("boundary counters %s: version %d, want 1", path, f.V)
	}
	for i := range f.Boundaries {
		x := f.Boundaries[i]
		x.Start, x.At = x.Start.UTC(), x.At.UTC()
		b.byStart[x.Start] = &x
	}
	return b, nil
}

// add records the counters at start unless a boundary is already there,
// and reports whether it did.
func (b *boundaries) add(x boundary) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, seen := b.byStart[x.Start]; seen {
		return false, nil
	}
	b.byStart[x.Start] = &x
	return true, b.saveLocked()
}

// due returns the intervals whose figures are not settled yet (Figures
// ""), oldest first: the boundary at each one's end, and the one at its
// start, or nil when the gateway has none (it was not running then).
func (b *boundaries) due(length time.Duration) (pairs []duePair) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, end := range b.sortedLocked() {
		if end.Figures != "" {
			continue
		}
		p := duePair{end: *end}
		if start, ok := b.byStart[end.Start.Add(-length)]; ok {
			x := *start
			p.start = &x
		}
		pairs = append(pairs, p)
	}
	return pairs
}

type duePair struct {
	start *boundary
	end   boundary
}

// settle sets the Figures state of the interval that ends at end.
func (b *boundaries) settle(end time.Time, figures string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, ok := b.byStart[end]
	if !ok || x.Figures == figures {
		return nil
	}
	x.Figures = figures
	return b.saveLocked()
}

// sent reports whether the figures of the interval that ends at end were
// published.
func (b *boundaries) sent(end time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, ok := b.byStart[end]
	return ok && x.Figures == figuresSent
}

// forget drops boundaries before cut (kept in the file until the next
// change).
func (b *boundaries) forget(cut time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for at := range b.byStart {
		if at.Before(cut) {
			delete(b.byStart, at)
		}
	}
}

func (b *boundaries) sortedLocked() []*boundary {
	out := make([]*boundary, 0, len(b.byStart))
	for _, x := range b.byStart {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// saveLocked writes the file atomically: a temporary file, synced, renamed
// over the old one, and the directory synced, so that a power cut leaves
// the old file or the new one, never a torn one.
func (b *boundaries) saveLocked() error {
	if b.path == "" {
		return nil
	}
	f := boundariesFile{V: 1, Boundaries: []boundary{}}
	for _, x := range b.sortedLocked() {
		f.Boundaries = append(f.Boundaries, *x)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(b.path, append(data, '\n')); err != nil {
		return fmt.Errorf("boundary counters %s: %w", b.path, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
