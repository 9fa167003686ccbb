package profile

import (
	"fmt"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
)

// Quantity is what a register measures, named with its base unit.
type Quantity string

// The quantities a profile maps, one per meter.Reading field.
const (
	PowerW      Quantity = "power_w"       // total active power, W (meter: > 0 importing; inverter: > 0 producing)
	ImportWh    Quantity = "import_wh"     // import energy counter, Wh
	ExportWh    Quantity = "export_wh"     // export energy counter, Wh (an inverter's lifetime production)
	FrequencyHz Quantity = "frequency_hz"  // grid frequency, Hz
	VoltageV    Quantity = "voltage_v"     // line to neutral voltage of a phase, V
	CurrentA    Quantity = "current_a"     // current of a phase, A
	PhasePowerW Quantity = "phase_power_w" // active power of a phase, W, same sign as power_w
)

type quantityInfo struct {
	unit     string
	perPhase bool
	energy   bool
}

var quantityInfos = map[Quantity]quantityInfo{
	PowerW:      {unit: "W"},
	ImportWh:    {unit: "Wh", energy: true},
	ExportWh:    {unit: "Wh", energy: true},
	FrequencyHz: {unit: "Hz"},
	VoltageV:    {unit: "V", perPhase: true},
	CurrentA:    {unit: "A", perPhase: true},
	PhasePowerW: {unit: "W", perPhase: true},
}

// Quantities returns every quantity a profile may map, in a fixed order.
func Quantities() []Quantity {
	return []Quantity{PowerW, ImportWh, ExportWh, FrequencyHz, VoltageV, CurrentA, PhasePowerW}
}

// Valid reports whether q is one of Quantities.
func (q Quantity) Valid() bool { _, ok := quantityInfos[q]; return ok }

// Unit is the unit of q after scaling: W, Wh, Hz, V or A.
func (q Quantity) Unit() string { return quantityInfos[q].unit }

// PerPhase reports whether q is measured per phase (phase 1..3).
func (q Quantity) PerPhase() bool { return quantityInfos[q].perPhase }

// Energy reports whether q is an energy counter: rounded to whole Wh and
// kept as an integer, never as a float.
func (q Quantity) Energy() bool { return quantityInfos[q].energy }

// MaxPhase is the highest phase number.
const MaxPhase = 3

// Point is one value of a reading: a quantity, and its phase (1..MaxPhase)
// for the per-phase quantities, 0 otherwise.
type Point struct {
	Quantity Quantity
	Phase    int
}

func (p Point) String() string {
	if p.Phase == 0 {
		return string(p.Quantity)
	}
	return fmt.Sprintf("%s phase %d", p.Quantity, p.Phase)
}

// RegType is a Modbus register table.
type RegType string

// The register tables a profile reads (function codes 03 and 04).
const (
	Holding RegType = "holding"
	Input   RegType = "input"
)

// Valid reports whether t is Holding or Input.
func (t RegType) Valid() bool { return t == Holding || t == Input }

// Encoding is how a value is stored in its registers.
type Encoding string

// The encodings a register may have.
const (
	Int16   Encoding = "int16"
	Uint16  Encoding = "uint16"
	Int32   Encoding = "int32"
	Uint32  Encoding = "uint32"
	Float32 Encoding = "float32" // IEEE 754 binary32
)

// Encodings returns every encoding, in a fixed order.
func Encodings() []Encoding { return []Encoding{Int16, Uint16, Int32, Uint32, Float32} }

// Width is how many 16-bit registers e takes: 1 or 2, and 0 for an
// unknown encoding.
func (e Encoding) Width() int {
	switch e {
	case Int16, Uint16:
		return 1
	case Int32, Uint32, Float32:
		return 2
	}
	return 0
}

// WordOrder is the order of a value's bytes across its registers, with a
// the most significant byte: abcd is Modbus's big-endian (high word
// first, high byte first in each register), cdab swaps the words, badc
// swaps the bytes in each word, dcba is little-endian. A 16-bit value has
// only abcd (ab) and badc (ba).
type WordOrder string

// The word orders.
const (
	ABCD WordOrder = "abcd"
	CDAB WordOrder = "cdab"
	BADC WordOrder = "badc"
	DCBA WordOrder = "dcba"
)

// WordOrders returns every word order, in a fixed order.
func WordOrders() []WordOrder { return []WordOrder{ABCD, CDAB, BADC, DCBA} }

// Register is one value of a device: where it is and how to decode it.
type Register struct {
	Point
	Type      RegType
	Address   uint16 // 0-based protocol address
	Encoding  Encoding
	WordOrder WordOrder
	// Scale multiplies the raw value into Unit: 1000 for kWh -> Wh, 0.1
	// for deci-volts, -1 to flip a sign.
	Scale decimal.Decimal
	Unit  string
	// Missing, if not nil, is the raw bit pattern (after word order, as
	// an unsigned integer of the encoding's width) by which the device
	// says it does not have the value, e.g. 0x8000 for a SunSpec int16.
	Missing *uint32
}

// Width is how many registers r takes.
func (r Register) Width() int { return r.Encoding.Width() }

// end is one past r's last register, as an int (it may be 65536).
func (r Register) end() int { return int(r.Address) + r.Width() }

// Profile is a checked device profile. Treat it as read-only: Plan,
// Device and Image work from its fields as they are.
type Profile struct {
	Name         string // the file name without .yaml
	Kind         meter.Kind
	Manufacturer string
	Model        string
	// MaxGap is how many unused registers a merged read may span.
	MaxGap int
	// Registers in the order of the file.
	Registers []Register
}

// Points returns the points p maps, in the order of its registers.
func (p *Profile) Points() []Point {
	pts := make([]Point, len(p.Registers))
	for i, r := range p.Registers {
		pts[i] = r.Point
	}
	return pts
}

// Register returns the register that maps pt.
func (p *Profile) Register(pt Point) (Register, bool) {
	i := slices.IndexFunc(p.Registers, func(r Register) bool { return r.Point == pt })
	if i < 0 {
		return Register{}, false
	}
	return p.Registers[i], true
}
