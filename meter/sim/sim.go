package sim

import (
	"fmt"

	"github.com/p2pgrid/p2pgrid/meter/profile"
	"log/slog"
	"sync"
	"time"
)

// Options configure a simulation.
type Options struct {
	Homes []HomeSpec
	// Start is the simulated time when the simulation starts.
	Start time.Time
	// Speed is simulated seconds per wall-clock second (90: a 15-minute
	// interval every 10 s). 0 means 1.
	Speed float64
	// Origin is the wall-clock moment simulated time is Start; zero means
	// when New runs. Separate processes given the same Start, Origin and
	// Speed share one clock (internal/testclock computes the same time).
	Origin time.Time
	// Now is the wall clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Sim is a set of simulated homes sharing one accelerated clock.
type Sim struct {
	opts         Options
	meterProfile *profile.Profile
	wallStart    time.Time
	homes        []*Home

	mu       sync.Mutex
	lastSeen time.Time // simulated time never goes backwards
}

// New starts the simulated clock at opts.Start.
func New(opts Options) (*Sim, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := profile.Lookup(MeterProfile)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Sim{opts: opts, meterProfile: p, wallStart: opts.Origin}
	if s.wallStart.IsZero() {
		s.wallStart = opts.Now()
	}
	for _, spec := range opts.Homes {
		if spec.InverterModel != 103 && spec.InverterModel != 113 {
			return nil, fmt.Errorf("sim: home %s: inverter model %d (want 103 or 113)", spec.Name, spec.InverterModel)
		}
		s.homes = append(s.homes, NewHome(spec, opts.Start))
	}
	return s, nil
}

// Homes returns the simulated homes, in the order of Options.Homes.
func (s *Sim) Homes() []*Home { return s.homes }

// Now returns the current simulated time.
func (s *Sim) Now() time.Time {
	wall := s.opts.Now().Sub(s.wallStart)
	t := s.opts.Start.Add(time.Duration(float64(wall) * s.opts.Speed))
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Before(s.lastSeen) {
		t = s.lastSeen
	}
	s.lastSeen = t
	return t
}

// Speed returns simulated seconds per wall-clock second.
func (s *Sim) Speed() float64 { return s.opts.Speed }

// Unit ids on a bus shared by all homes (RTU, or TCP with one port):
// home i (from 0) has its meter at 2i+1 and its inverter at 2i+2.
func SharedMeterUnit(i int) uint8    { return uint8(2*i + 1) }
func SharedInverterUnit(i int) uint8 { return uint8(2*i + 2) }

// Unit ids when each home has its own port.
const (
	MeterUnit    uint8 = 1
	InverterUnit uint8 = 2
)

// MaxSharedHomes is how many homes fit on one shared bus (unit ids 1-247).
const MaxSharedHomes = 123

func checkShared(n int) error {
	if n > MaxSharedHomes {
		return fmt.Errorf("sim: %d homes do not fit on one Modbus bus (at most %d)", n, MaxSharedHomes)
	}
	return nil
}
