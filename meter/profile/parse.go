package profile

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
	"go.yaml.in/yaml/v3"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/internal/yamlnode"
	"github.com/p2pgrid/p2pgrid/meter"
)

// ErrUnknownProfile is returned (wrapped) by Lookup for a name no profile
// directory and no built-in profile has.
var ErrUnknownProfile = errors.New("unknown device profile")

// MaxFileSize is the largest profile file Parse reads.
const MaxFileSize = 1 << 20

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidName reports whether name can name a profile: lower-case letters,
// digits, '-' and '_', starting with a letter or digit (so it is also a
// safe file name).
func ValidName(name string) bool { return len(name) <= 64 && nameRE.MatchString(name) }

// Parse checks data, the YAML of the profile name, and returns it. The
// check is strict: unknown or repeated keys, a name other than the file
// name, an unknown quantity, type, encoding or word order, a phase where
// none belongs (or none where one does), an address out of range,
// registers that overlap or map the same point twice, a unit that is not
// the quantity's, a zero scale, all are errors naming the profile and the
// register:
//
//	profile "sdm630": register 3 (voltage_v phase 3): address 70000 out of range
//
// Registers are numbered from 1 in file order.
func Parse(name string, data []byte) (*Profile, error) {
	return parse(name, "", data)
}

// Load reads name.yaml from fsys and parses it.
func Load(fsys fs.FS, name string) (*Profile, error) {
	return load(fsys, name, name+".yaml")
}

func load(fsys fs.FS, name, shown string) (*Profile, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("profile %q: invalid name (lower-case letters, digits, - and _)", name)
	}
	data, err := fs.ReadFile(fsys, name+".yaml")
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", name, err)
	}
	return parse(name, shown, data)
}

// builtinFS is configs.Devices with the devices/ prefix taken off.
func builtinFS() fs.FS {
	sub, err := fs.Sub(configs.Devices, "devices")
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}

// Builtin parses every built-in profile (configs/devices/*.yaml) and
// returns them by name. Each call parses afresh: the profiles are the
// caller's.
func Builtin() (map[string]*Profile, error) {
	fsys := builtinFS()
	names, err := profileNames(fsys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Profile, len(names))
	for _, n := range names {
		p, err := load(fsys, n, "configs/devices/"+n+".yaml")
		if err != nil {
			return nil, err
		}
		out[n] = p
	}
	return out, nil
}

// profileNames lists the *.yaml files at the top of fsys, sorted, without
// the extension.
func profileNames(fsys fs.FS) ([]string, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(f, ".yaml")
	}
	return names, nil
}

// Lookup finds the profile name in each of dirs, in order (a user's
// profile directory), and then among the built-in profiles: a user's file
// overrides the built-in one of the same name. A file that exists but
// does not parse is an error, never skipped. For a name found nowhere the
// error wraps ErrUnknownProfile and lists the names that exist.
func Lookup(name string, dirs ...string) (*Profile, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("profile %q: invalid name (lower-case letters, digits, - and _)", name)
	}
	known := map[string]bool{}
	for _, dir := range dirs {
		fsys := os.DirFS(dir)
		p, err := load(fsys, name, filepath.Join(dir, name+".yaml"))
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		names, err := profileNames(fsys)
		if err != nil {
			return nil, fmt.Errorf("profile directory %s: %w", dir, err)
		}
		for _, n := range names {
			known[n] = true
		}
	}
	fsys := builtinFS()
	p, err := load(fsys, name, "configs/devices/"+name+".yaml")
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	names, _ := profileNames(fsys)
	for _, n := range names {
		known[n] = true
	}
	list := make([]string, 0, len(known))
	for n := range known {
		list = append(list, n)
	}
	slices.Sort(list)
	where := "the built-in profiles"
	if len(dirs) > 0 {
		where = strings.Join(dirs, ", ") + " and " + where
	}
	return nil, fmt.Errorf("profile %q: %w: not in %s; known profiles: %s", name, ErrUnknownProfile, where, strings.Join(list, ", "))
}

// parseError prefixes every error of one file.
type parseError struct {
	name, shown string
}

func (e parseError) wrap(err error) error {
	if e.shown == "" {
		return fmt.Errorf("profile %q: %w", e.name, err)
	}
	return fmt.Errorf("profile %q (%s): %w", e.name, e.shown, err)
}

var (
	topKeys      = []string{"name", "kind", "manufacturer", "model", "max_gap", "registers"}
	registerKeys = []string{"quantity", "phase", "type", "address", "encoding", "word_order", "scale", "unit", "missing"}
)

func parse(name, shown string, data []byte) (*Profile, error) {
	pe := parseError{name, shown}
	if !ValidName(name) {
		return nil, pe.wrap(errors.New("invalid name (lower-case letters, digits, - and _)"))
	}
	if len(data) > MaxFileSize {
		return nil, pe.wrap(fmt.Errorf("file of %d bytes is larger than %d", len(data), MaxFileSize))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, pe.wrap(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, pe.wrap(errors.New("empty file"))
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, pe.wrap(fmt.Errorf("line %d: a profile is a mapping (name:, kind:, registers:, ...)", root.Line))
	}
	fields, err := yamlnode.Mapping(root, topKeys)
	if err != nil {
		return nil, pe.wrap(err)
	}
	p := &Profile{MaxGap: DefaultMaxGap}
	var kind string
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &p.Name}, {"kind", &kind}, {"manufacturer", &p.Manufacturer}, {"model", &p.Model}} {
		n, ok := fields[f.key]
		if !ok {
			return nil, pe.wrap(fmt.Errorf("%s is missing", f.key))
		}
		if err := scalar(n, f.dst); err != nil {
			return nil, pe.wrap(fmt.Errorf("%s: %w", f.key, err))
		}
	}
	if p.Name != name {
		return nil, pe.wrap(fmt.Errorf("name %q differs from the file name %s.yaml", p.Name, name))
	}
	p.Kind = meter.Kind(kind)
	if p.Kind != meter.KindMeter && p.Kind != meter.KindInverter {
		return nil, pe.wrap(fmt.Errorf("kind %q: want %s or %s", kind, meter.KindMeter, meter.KindInverter))
	}
	if p.Manufacturer == "" || p.Model == "" {
		return nil, pe.wrap(errors.New("manufacturer and model must not be empty"))
	}
	if n, ok := fields["max_gap"]; ok {
		var g int64
		if err := scalar(n, &g); err != nil {
			return nil, pe.wrap(fmt.Errorf("max_gap: %w", err))
		}
		if g < 0 || g > MaxRequest-2 {
			return nil, pe.wrap(fmt.Errorf("max_gap %d out of range 0..%d", g, MaxRequest-2))
		}
		p.MaxGap = int(g)
	}
	regs, ok := fields["registers"]
	if !ok {
		return nil, pe.wrap(errors.New("registers is missing"))
	}
	if regs.Kind != yaml.SequenceNode || len(regs.Content) == 0 {
		return nil, pe.wrap(fmt.Errorf("line %d: registers must be a non-empty list", regs.Line))
	}
	for i, n := range regs.Content {
		r, err := parseRegister(n)
		if err != nil {
			return nil, pe.wrap(fmt.Errorf("register %d (%s): %w", i+1, registerLabel(n), err))
		}
		if err := checkAgainst(p.Registers, r); err != nil {
			return nil, pe.wrap(fmt.Errorf("register %d (%s): %w", i+1, r.Point, err))
		}
		p.Registers = append(p.Registers, r)
	}
	return p, nil
}

// scalar decodes the scalar n into dst (a *string or *int64).
func scalar(n *yaml.Node, dst any) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a single value", n.Line)
	}
	switch d := dst.(type) {
	case *string:
		if n.ShortTag() != "!!str" {
			return fmt.Errorf("line %d: %s is not a string (quote it)", n.Line, n.Value)
		}
		*d = n.Value
	case *int64:
		if n.ShortTag() != "!!int" {
			return fmt.Errorf("line %d: %q is not an integer", n.Line, n.Value)
		}
		if err := n.Decode(d); err != nil {
			return fmt.Errorf("line %d: %q is not an integer that fits 64 bits", n.Line, n.Value)
		}
	default:
		panic("scalar: unsupported destination")
	}
	return nil
}

// registerLabel names a register in an error before it is parsed: its
// quantity and phase as written, if they are there.
func registerLabel(n *yaml.Node) string {
	n = yamlnode.Deref(n)
	var q, ph string
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "quantity":
				q = n.Content[i+1].Value
			case "phase":
				ph = n.Content[i+1].Value
			}
		}
	}
	if q == "" {
		q = "no quantity"
	}
	if ph != "" {
		q += " phase " + ph
	}
	return q
}

func parseRegister(n *yaml.Node) (Register, error) {
	n = yamlnode.Deref(n)
	if n.Kind != yaml.MappingNode {
		return Register{}, fmt.Errorf("line %d: a register is a mapping (quantity:, type:, address:, ...)", n.Line)
	}
	fields, err := yamlnode.Mapping(n, registerKeys)
	if err != nil {
		return Register{}, err
	}
	r := Register{WordOrder: ABCD, Scale: decimal.NewFromInt(1)}
	var quantity, typ, enc, order string
	for _, f := range []struct {
		key      string
		dst      *string
		required bool
	}{{"quantity", &quantity, true}, {"type", &typ, true}, {"encoding", &enc, true}, {"word_order", &order, false}, {"unit", &r.Unit, true}} {
		v, ok := fields[f.key]
		if !ok {
			if f.required {
				return r, fmt.Errorf("%s is missing", f.key)
			}
			continue
		}
		if err := scalar(v, f.dst); err != nil {
			return r, fmt.Errorf("%s: %w", f.key, err)
		}
	}

	r.Quantity = Quantity(quantity)
	if !r.Quantity.Valid() {
		return r, fmt.Errorf("unknown quantity %q (known: %s)", quantity, joinQuantities())
	}
	if v, ok := fields["phase"]; ok {
		var ph int64
		if err := scalar(v, &ph); err != nil {
			return r, fmt.Errorf("phase: %w", err)
		}
		if !r.Quantity.PerPhase() {
			return r, fmt.Errorf("%s has no phase; remove phase: %d", r.Quantity, ph)
		}
		if ph < 1 || ph > MaxPhase {
			return r, fmt.Errorf("phase %d out of range 1..%d", ph, MaxPhase)
		}
		r.Phase = int(ph)
	} else if r.Quantity.PerPhase() {
		return r, fmt.Errorf("%s needs a phase (1..%d)", r.Quantity, MaxPhase)
	}

	r.Type = RegType(typ)
	if !r.Type.Valid() {
		return r, fmt.Errorf("unknown type %q (want %s or %s)", typ, Input, Holding)
	}
	r.Encoding = Encoding(enc)
	if r.Encoding.Width() == 0 {
		return r, fmt.Errorf("unknown encoding %q (known: int16, uint16, int32, uint32, float32)", enc)
	}
	if order != "" {
		r.WordOrder = WordOrder(order)
	}
	if !slices.Contains(WordOrders(), r.WordOrder) {
		return r, fmt.Errorf("unknown word_order %q (known: abcd, cdab, badc, dcba)", order)
	}
	if r.Width() == 1 && r.WordOrder != ABCD && r.WordOrder != BADC {
		return r, fmt.Errorf("word_order %s swaps words, and a %s has one: use abcd (ab) or badc (ba)", r.WordOrder, r.Encoding)
	}

	v, ok := fields["address"]
	if !ok {
		return r, errors.New("address is missing")
	}
	var addr int64
	if err := scalar(v, &addr); err != nil {
		return r, fmt.Errorf("address: %w", err)
	}
	if addr < 0 || addr > math.MaxUint16 {
		return r, fmt.Errorf("address %d out of range 0..65535 (0-based: 30001 and 40001 are address 0)", addr)
	}
	if addr+int64(r.Width()) > math.MaxUint16+1 {
		return r, fmt.Errorf("address %d out of range: a %s takes registers %d-%d", addr, r.Encoding, addr, addr+int64(r.Width())-1)
	}
	r.Address = uint16(addr)

	if v, ok := fields["scale"]; ok {
		s, err := parseScale(v)
		if err != nil {
			return r, fmt.Errorf("scale: %w", err)
		}
		r.Scale = s
	}
	if r.Quantity.Energy() && !r.Scale.IsPositive() {
		return r, fmt.Errorf("scale %s: an energy counter needs a positive scale", r.Scale)
	}
	if want := r.Quantity.Unit(); r.Unit != want {
		return r, fmt.Errorf("unit %q: %s is in %s after scaling", r.Unit, r.Quantity, want)
	}

	if v, ok := fields["missing"]; ok {
		var m int64
		if err := scalar(v, &m); err != nil {
			return r, fmt.Errorf("missing: %w", err)
		}
		bitsWide := 16 * r.Width()
		lo, hi := -(int64(1) << (bitsWide - 1)), int64(1)<<bitsWide-1
		if m < lo || m > hi {
			return r, fmt.Errorf("missing %d out of range for a %s (%d..%d, or the bit pattern 0x0..0x%X)", m, r.Encoding, lo, hi, hi)
		}
		b := uint32(m) & uint32(hi) // two's complement for the negative ones
		r.Missing = &b
	}
	return r, nil
}

// parseScale reads a decimal scale exactly as written (0.1 stays 0.1).
func parseScale(n *yaml.Node) (decimal.Decimal, error) {
	if n.Kind != yaml.ScalarNode {
		return decimal.Decimal{}, fmt.Errorf("line %d: want a number", n.Line)
	}
	var s decimal.Decimal
	var err error
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if i, err = strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			s = decimal.NewFromInt(i)
		}
	case "!!float":
		s, err = decimal.NewFromString(n.Value)
	default:
		err = errors.New("not a number")
	}
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("line %d: %q is not a decimal number", n.Line, n.Value)
	}
	if s.IsZero() {
		return decimal.Decimal{}, fmt.Errorf("line %d: scale 0 would erase every value", n.Line)
	}
	if e := s.Exponent(); e < -18 || e > 18 {
		return decimal.Decimal{}, fmt.Errorf("line %d: scale %s is beyond 1e-18..1e18", n.Line, n.Value)
	}
	return s, nil
}

// checkAgainst rejects r if it maps a point or a register that an earlier
// register already maps.
func checkAgainst(earlier []Register, r Register) error {
	for j, e := range earlier {
		if e.Point == r.Point {
			return fmt.Errorf("%s is already mapped by register %d", r.Point, j+1)
		}
		if e.Type == r.Type && int(r.Address) < e.end() && int(e.Address) < r.end() {
			return fmt.Errorf("%s registers 0x%04X-0x%04X overlap register %d (%s) at 0x%04X-0x%04X",
				r.Type, r.Address, r.end()-1, j+1, e.Point, e.Address, e.end()-1)
		}
	}
	return nil
}

func joinQuantities() string {
	qs := Quantities()
	s := make([]string, len(qs))
	for i, q := range qs {
		s[i] = string(q)
	}
	return strings.Join(s, ", ")
}
