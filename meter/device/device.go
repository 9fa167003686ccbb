// Package device builds the meter.Device for one configured device: the
// register map of a device profile (meter/profile, configs/devices/), or a
// SunSpec device discovered on its first read (meter/sunspec). It is the
// one place that tells the two apart; the gateway daemon and `p2pgrid
// meter read` both build their devices with Open.
//
// It lives beside package meter, not in it, because meter/profile and
// meter/sunspec import meter. It knows nothing of transports (a
// profile.Registers, such as a *bus.Bus, comes in) nor of markets.
package device

import (
	"fmt"
	"time"

	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/profile"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// SunSpec is the profile name that means "discover a SunSpec device".
const SunSpec = "sunspec"

// MaxUnit is the highest Modbus unit id a device can have (0 is broadcast,
// 248-255 are reserved).
const MaxUnit = 247

// Options tune Open.
type Options struct {
	// ProfileDirs are searched for NAME.yaml before the built-in profiles.
	ProfileDirs []string
	// Now is the clock of the readings; nil means time.Now.
	Now func() time.Time
	// Discovery tunes a SunSpec device's discovery (its Now is Options.Now).
	Discovery sunspec.LazyOptions
}

// Open returns the device called name (a profile, or SunSpec) at unit on
// r. It does no I/O: an unknown profile is an error here, a SunSpec device
// is discovered by its first Read, within its own budget, and remembered
// (see sunspec.Lazy).
func Open(r profile.Registers, unit uint8, name string, o Options) (meter.Device, error) {
	if unit < 1 || unit > MaxUnit {
		return nil, fmt.Errorf("unit %d: a Modbus unit id is 1 to %d", unit, MaxUnit)
	}
	if name == SunSpec {
		d := o.Discovery
		d.Now = o.Now
		return sunspec.NewLazy(r, unit, d), nil
	}
	p, err := profile.Lookup(name, o.ProfileDirs...)
	if err != nil {
		return nil, err
	}
	var opts []profile.Option
	if o.Now != nil {
		opts = append(opts, profile.WithClock(o.Now))
	}
	return p.Device(r, unit, opts...), nil
}
