package sunspec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/p2pgrid/p2pgrid/meter"
)

// Registers reads holding registers (function 3) from one unit on a Modbus
// bus or connection. meter/bus provides it.
type Registers interface {
	ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error)
}

var (
	// ErrNotSunSpec says no SunSpec marker was found at any base address.
	ErrNotSunSpec = errors.New("not a SunSpec device")
	// ErrBadChain says the chain of models after the marker is garbage:
	// it runs past register 65535 (and would wrap around and loop), is
	// longer than MaxModels, or does not start with the common model.
	ErrBadChain = errors.New("bad SunSpec model chain")
	// ErrUnsupported says a device has no inverter or meter model this
	// package reads.
	ErrUnsupported = errors.New("no supported SunSpec inverter or meter model")
)

// bases are the holding-register addresses where Discover looks for the
// SunSpec marker, in order.
var bases = [...]uint16{40000, 0, 50000}

// marker is "SunS", the two registers at the base address of a SunSpec
// device.
var marker = [2]uint16{0x5375, 0x6e53}

// MaxModels is the longest model chain Discover follows; real devices have
// a handful of models.
const MaxModels = 64

// endID is the ID of the end marker that closes a model chain.
const endID = 0xFFFF

// Model is one model in a device's chain.
type Model struct {
	ID uint16 `json:"id"`
	// Length is the model's L as the device reports it.
	Length uint16 `json:"length"`
	// Address is the model's first data register, after its ID and L.
	Address uint16 `json:"address"`
}

// Device is a discovered SunSpec device. It is safe for concurrent use if
// its Registers are.
type Device struct {
	Unit   uint8   `json:"unit"`
	Base   uint16  `json:"base"`   // where the marker is
	Models []Model `json:"models"` // the chain, in order, without the end marker

	// From the common model (1), NULs and spaces trimmed.
	Manufacturer string `json:"manufacturer"`
	ModelName    string `json:"model"`
	Serial       string `json:"serial"`

	// Kind is KindInverter or KindMeter, from Source.
	Kind meter.Kind `json:"kind"`
	// Source is the model Read decodes: the first model in the chain that
	// this package reads (101-103, 111-113, 201-204, 211-214).
	Source Model `json:"source"`

	// NegatePower flips the sign of power_w and phase_power_w, for meters
	// that report export as positive W (see the package doc). Set it
	// before polling.
	NegatePower bool `json:"negate_power,omitempty"`
	// Now is the clock for Reading.Time; nil means time.Now.
	Now func() time.Time `json:"-"`

	regs Registers
}

var _ meter.Device = (*Device)(nil)

// Discover finds the SunSpec marker of unit (at 40000, 0, then 50000; an
// error or Modbus exception at one base moves on to the next), walks the
// model chain, reads the common model and picks the model Read will
// decode. Errors wrap ErrNotSunSpec when there is no marker, ErrBadChain
// for a garbage chain, ErrUnsupported when no model is readable, and
// otherwise the Registers error.
func Discover(ctx context.Context, r Registers, unit uint8) (*Device, error) {
	base, err := findMarker(ctx, r, unit)
	if err != nil {
		return nil, err
	}
	d := &Device{Unit: unit, Base: base, regs: r}
	if d.Models, err = walkChain(ctx, r, unit, base); err != nil {
		return nil, err
	}
	if err := d.readCommon(ctx); err != nil {
		return nil, err
	}
	for _, m := range d.Models {
		if fm, ok := readable[m.ID]; ok {
			d.Source, d.Kind = m, fm.kind
			return d, nil
		}
	}
	ids := make([]string, len(d.Models))
	for i, m := range d.Models {
		ids[i] = fmt.Sprint(m.ID)
	}
	return nil, fmt.Errorf("unit %d: models %s: %w", unit, strings.Join(ids, ", "), ErrUnsupported)
}

// read asks for count registers and checks the answer's length.
func read(ctx context.Context, r Registers, unit uint8, addr, count uint16) ([]uint16, error) {
	regs, err := r.ReadHolding(ctx, unit, addr, count)
	if err != nil {
		return nil, err
	}
	if len(regs) != int(count) {
		return nil, fmt.Errorf("asked for %d registers at %d, got %d: %w", count, addr, len(regs), ErrBadData)
	}
	return regs, nil
}

func findMarker(ctx context.Context, r Registers, unit uint8) (uint16, error) {
	var notes []string
	var errs []error
	for _, base := range bases {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("unit %d: looking for SunSpec marker: %w", unit, err)
		}
		regs, err := read(ctx, r, unit, base, 2)
		switch {
		case err != nil && ctx.Err() != nil:
			return 0, fmt.Errorf("unit %d: looking for SunSpec marker at %d: %w", unit, base, err)
		case err != nil:
			notes = append(notes, fmt.Sprintf("%d: %v", base, err))
			errs = append(errs, err)
		case regs[0] == marker[0] && regs[1] == marker[1]:
			return base, nil
		default:
			notes = append(notes, fmt.Sprintf("%d: 0x%04x 0x%04x", base, regs[0], regs[1]))
		}
	}
	return 0, &notSunSpecError{unit: unit, notes: notes, errs: errs}
}

// notSunSpecError is ErrNotSunSpec with what was found at each base; it
// also wraps the read errors, so callers can tell a silent bus.
type notSunSpecError struct {
	unit  uint8
	notes []string
	errs  []error
}

func (e *notSunSpecError) Error() string {
	return fmt.Sprintf("unit %d: %v: no \"SunS\" marker at any base (%s)", e.unit, ErrNotSunSpec, strings.Join(e.notes, "; "))
}

func (e *notSunSpecError) Unwrap() []error { return append([]error{ErrNotSunSpec}, e.errs...) }

// walkChain reads the model headers after the marker at base. Addresses
// are computed in 32 bits: each model starts at least 2 registers after the
// previous one, so a chain that would loop must wrap past 65535, which is
// an error, as is one longer than MaxModels.
func walkChain(ctx context.Context, r Registers, unit uint8, base uint16) ([]Model, error) {
	var chain []Model
	addr := uint32(base) + 2
	for {
		if addr+1 > 0xFFFF {
			return nil, fmt.Errorf("unit %d: model header at %d runs past register 65535 (the chain would wrap around and loop): %w", unit, addr, ErrBadChain)
		}
		hdr, err := read(ctx, r, unit, uint16(addr), 2)
		if err != nil {
			return nil, fmt.Errorf("unit %d: model header at %d: %w", unit, addr, err)
		}
		id, l := hdr[0], hdr[1]
		if id == endID {
			break
		}
		if len(chain) == 0 && id != 1 {
			return nil, fmt.Errorf("unit %d: first model at %d is %d, want the common model 1: %w", unit, addr, id, ErrBadChain)
		}
		if len(chain) == MaxModels {
			return nil, fmt.Errorf("unit %d: more than %d models, no end marker: %w", unit, MaxModels, ErrBadChain)
		}
		next := addr + 2 + uint32(l)
		if next > 0x10000 {
			return nil, fmt.Errorf("unit %d: model %d at %d with length %d runs past register 65535 (the chain would wrap around and loop): %w", unit, id, addr, l, ErrBadChain)
		}
		chain = append(chain, Model{ID: id, Length: l, Address: uint16(addr + 2)})
		addr = next
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("unit %d: end marker right after the SunSpec marker, no models: %w", unit, ErrBadChain)
	}
	return chain, nil
}

// readBlock reads the data registers of m that its definition describes
// (fewer if the device's L is shorter), in one request.
func readBlock(ctx context.Context, r Registers, unit uint8, m Model, def *ModelDef) ([]uint16, error) {
	n := min(m.Length, def.Length)
	if n == 0 {
		return nil, nil
	}
	regs, err := read(ctx, r, unit, m.Address, n)
	if err != nil {
		return nil, fmt.Errorf("unit %d: model %d at %d: %w", unit, m.ID, m.Address, err)
	}
	return regs, nil
}

func (d *Device) readCommon(ctx context.Context) error {
	m := d.Models[0] // walkChain made sure it is model 1
	def := definitions[1]
	data, err := readBlock(ctx, d.regs, d.Unit, m, def)
	if err != nil {
		return err
	}
	b := block{def: def, data: data}
	for _, f := range []struct {
		point string
		dst   *string
	}{{"Mn", &d.Manufacturer}, {"Md", &d.ModelName}, {"SN", &d.Serial}} {
		if *f.dst, err = b.text(f.point); err != nil {
			return fmt.Errorf("unit %d: common model: %w", d.Unit, err)
		}
	}
	return nil
}

// Read polls the device: one request for the Source model's block, values
// and scale factors together. The reading's Device is "sunspec".
func (d *Device) Read(ctx context.Context) (meter.Reading, error) {
	if d.regs == nil {
		return meter.Reading{}, errors.New("sunspec: Device was not made by Discover")
	}
	def := definitions[d.Source.ID]
	if _, ok := readable[d.Source.ID]; !ok || def == nil {
		return meter.Reading{}, fmt.Errorf("unit %d: model %d: %w", d.Unit, d.Source.ID, ErrUnsupported)
	}
	data, err := readBlock(ctx, d.regs, d.Unit, d.Source, def)
	if err != nil {
		return meter.Reading{}, err
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	r, err := decodeReading(d.Source.ID, data, d.NegatePower)
	if err != nil {
		return meter.Reading{}, fmt.Errorf("unit %d: %w", d.Unit, err)
	}
	r.Time = now()
	r.Device = "sunspec"
	r.Unit = d.Unit
	r.Manufacturer, r.Model, r.Serial = d.Manufacturer, d.ModelName, d.Serial
	return r, nil
}
