package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/p2pgrid/p2pgrid/internal/testclock"
)

// testClockFlags are the hidden --clock-* flags of a shared accelerated
// clock (internal/testclock), for tests and demos only: hidden from
// --help, documented in docs/gateway.md ("A shared test clock"). The
// gateway runs on it, and `community add` and `remove` time the roster
// versions they sign by it, so that valid_from lands on the intervals of
// the gateways they run with.
type testClockFlags struct {
	epoch, origin, skew string
	speed               float64
	f                   *pflag.FlagSet
}

// addTestClockFlags adds the hidden --clock-* flags to f.
func addTestClockFlags(f *pflag.FlagSet) *testClockFlags {
	c := &testClockFlags{f: f}
	f.StringVar(&c.epoch, "clock-epoch", "", "TESTS ONLY: the clock's time (RFC 3339) at --clock-origin")
	f.StringVar(&c.origin, "clock-origin", "", "TESTS ONLY: wall-clock moment (Unix nanoseconds) the clock reads --clock-epoch")
	f.Float64Var(&c.speed, "clock-speed", 1, "TESTS ONLY: clock seconds per wall-clock second")
	f.StringVar(&c.skew, "clock-skew", "", "TESTS ONLY: added to the clock (a Go duration, e.g. 5s or -3s)")
	for _, n := range []string{"clock-epoch", "clock-origin", "clock-speed", "clock-skew"} {
		f.MarkHidden(n)
	}
	return c
}

// clock returns the test clock the flags give, or nil when none is given:
// then the clock is the system clock, time.Now.
func (c *testClockFlags) clock() (*testclock.Clock, error) {
	if c.epoch == "" && c.origin == "" && c.skew == "" && !c.f.Changed("clock-speed") {
		return nil, nil
	}
	// For tests and demos only: never in production.
	clk, err := testclock.Parse(c.epoch, c.origin, c.speed, c.skew)
	if err != nil {
		return nil, badInput(fmt.Errorf("--clock-*: %w", err))
	}
	return clk, nil
}

// now returns the clock to time things by: the test clock's, else
// time.Now.
func (c *testClockFlags) now() (func() time.Time, error) {
	clk, err := c.clock()
	if clk == nil || err != nil {
		return time.Now, err
	}
	return clk.Now, nil
}
