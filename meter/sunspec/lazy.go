package sunspec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/p2pgrid/p2pgrid/meter"
)

// Defaults of LazyOptions.
const (
	// DefaultDiscoveryBudget bounds one discovery: three bases, each up to
	// a bus timeout and its retries, then the chain and the common model.
	DefaultDiscoveryBudget = time.Minute
	// DefaultRediscoverAfter is the pause after a failed discovery.
	DefaultRediscoverAfter = time.Minute
)

// ErrDiscoveryBudget says a discovery did not finish within its budget
// (LazyOptions.Budget): the device answered too slowly, or not at all, at
// the bases tried so far. It is not ErrNotSunSpec.
var ErrDiscoveryBudget = errors.New("SunSpec discovery ran out of time")

// LazyOptions tune a Lazy device. Zero values mean the defaults.
type LazyOptions struct {
	// Budget is how long one discovery may take, independent of the
	// deadline of the Read that started it. Default 1 minute.
	Budget time.Duration
	// RediscoverAfter is how long after a failed discovery Reads return
	// that failure at once, without touching the bus, before the next
	// Read starts a new discovery. Default 1 minute.
	RediscoverAfter time.Duration
	// Now is the clock of the readings; nil means time.Now. (Budgets and
	// pauses are always in real time: they are about the wire.)
	Now func() time.Time
}

// Lazy is a SunSpec device that is discovered when it is first read, so
// that a device that is off or slow at start stops nothing. It is safe for
// concurrent use if its Registers are.
//
// Discovery runs once, in the background, within its own budget: a Read
// waits for it only until the Read's own context ends, and the discovery
// goes on, so a poll deadline shorter than the discovery (an inverter that
// answers only at base 50000 behind two timeouts) never starts it over.
// The result is remembered: the device found, or the failure, which Reads
// return for RediscoverAfter before the next attempt. A device that starts
// answering garbage (ErrBadData) is discovered again on the next Read.
type Lazy struct {
	regs Registers
	unit uint8
	opts LazyOptions

	mu       sync.Mutex
	dev      *Device
	running  chan struct{} // closed when the discovery in flight ends; nil if none
	started  time.Time     // of the discovery in flight
	failed   error         // of the last discovery, if it failed
	failedAt time.Time
}

var _ meter.Device = (*Lazy)(nil)

// NewLazy returns the SunSpec device at unit on r, to be discovered on its
// first Read.
func NewLazy(r Registers, unit uint8, o LazyOptions) *Lazy {
	if o.Budget <= 0 {
		o.Budget = DefaultDiscoveryBudget
	}
	if o.RediscoverAfter <= 0 {
		o.RediscoverAfter = DefaultRediscoverAfter
	}
	return &Lazy{regs: r, unit: unit, opts: o}
}

// Device returns the discovered device, or nil before discovery succeeded.
func (l *Lazy) Device() *Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dev
}

// Read reads the device, discovering it first if needed (see Lazy).
func (l *Lazy) Read(ctx context.Context) (meter.Reading, error) {
	d, err := l.discovered(ctx)
	if err != nil {
		return meter.Reading{}, err
	}
	r, err := d.Read(ctx)
	if err != nil && errors.Is(err, ErrBadData) {
		l.mu.Lock()
		if l.dev == d {
			l.dev = nil // the device may have changed: discover again
		}
		l.mu.Unlock()
	}
	return r, err
}

// discovered returns the device, starting or waiting for its discovery.
func (l *Lazy) discovered(ctx context.Context) (*Device, error) {
	l.mu.Lock()
	if l.dev != nil {
		d := l.dev
		l.mu.Unlock()
		return d, nil
	}
	if l.running == nil {
		if l.failed != nil {
			if wait := l.opts.RediscoverAfter - time.Since(l.failedAt); wait > 0 {
				err := l.failed
				l.mu.Unlock()
				return nil, fmt.Errorf("%w (next discovery in %s)", err, wait.Round(time.Second))
			}
		}
		l.running, l.started = make(chan struct{}), time.Now()
		go l.discover(l.running)
	}
	running, started := l.running, l.started
	l.mu.Unlock()

	select {
	case <-running:
	case <-ctx.Done():
		return nil, fmt.Errorf("unit %d: SunSpec discovery still running after %s (budget %s), not done before this read's %w",
			l.unit, time.Since(started).Round(time.Millisecond), l.opts.Budget, ctx.Err())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dev != nil {
		return l.dev, nil
	}
	return nil, l.failed
}

// discover runs one discovery within the budget and records its outcome.
func (l *Lazy) discover(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Budget)
	defer cancel()
	d, err := Discover(ctx, l.regs, l.unit)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("unit %d: %w within its budget of %s: %w", l.unit, ErrDiscoveryBudget, l.opts.Budget, err)
	} else if err != nil {
		err = fmt.Errorf("SunSpec discovery failed: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		d.Now = l.opts.Now
		l.dev, l.failed = d, nil
	} else {
		l.failed, l.failedAt = err, time.Now()
	}
	l.running = nil
	close(done)
}
