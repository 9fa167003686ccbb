package sunspec

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// models holds the SunSpec JSON model definitions (Apache-2.0; see
// models/README.md and models/LICENSE).
//
//go:embed models/model_*.json
var models embed.FS

// MaxRead is the most holding registers one Modbus request may ask for.
// Every model definition this package embeds fits in one request, so a
// model's values and their scale factors are always read together.
const MaxRead = 125

// ModelDef is one SunSpec model definition, parsed from its JSON.
type ModelDef struct {
	ID    uint16 `json:"id"`
	Name  string `json:"name"`  // e.g. "inverter_three_phase"
	Label string `json:"label"` // e.g. "Inverter (Three Phase)"
	// Length is the model's L: the number of registers after its ID and L
	// registers.
	Length uint16 `json:"length"`
	// Points are the model's points in register order, without the ID and
	// L header points.
	Points []Point `json:"points"`

	index map[string]int
}

// Point is one point of a model.
type Point struct {
	Name string `json:"name"`
	// Offset counts registers from the model's first data register (the
	// register after L, Model.Address). The SunSpec tables, and
	// models/sunspec_point_offsets.csv, count from the ID register: 2 more.
	Offset uint16 `json:"offset"`
	Size   uint16 `json:"size"` // registers
	// Type is the SunSpec type: int16, uint16, acc32, float32, sunssf,
	// string, enum16, bitfield32, pad, ...
	Type string `json:"type"`
	// SF names the scale-factor point of this point's value; "" for none.
	SF        string `json:"sf,omitempty"`
	Units     string `json:"units,omitempty"`
	Mandatory bool   `json:"mandatory,omitempty"`
	Label     string `json:"label,omitempty"`
	Desc      string `json:"desc,omitempty"`
}

// Point returns the point called name.
func (m *ModelDef) Point(name string) (Point, bool) {
	i, ok := m.index[name]
	if !ok {
		return Point{}, false
	}
	return m.Points[i], true
}

// typeSizes gives the register count of each SunSpec type this package
// decodes; 0 means any size (strings). A definition using any other type is
// rejected when it is loaded.
var typeSizes = map[string]uint16{
	"int16": 1, "uint16": 1, "count": 1, "acc16": 1, "enum16": 1, "bitfield16": 1,
	"sunssf": 1, "pad": 1,
	"int32": 2, "uint32": 2, "acc32": 2, "enum32": 2, "bitfield32": 2, "float32": 2,
	"string": 0,
}

// definitions are the embedded model definitions by ID, parsed once; a
// broken embedded file is a build defect, caught by TestDefinitions.
var definitions = mustLoad(models)

func mustLoad(fsys fs.FS) map[uint16]*ModelDef {
	defs, err := loadDefinitions(fsys)
	if err != nil {
		panic("sunspec: embedded model definitions: " + err.Error())
	}
	return defs
}

// Definition returns the parsed definition of model id, if embedded. The
// result is the caller's own copy.
func Definition(id uint16) (*ModelDef, bool) {
	d, ok := definitions[id]
	if !ok {
		return nil, false
	}
	c := *d
	c.Points = slices.Clone(d.Points)
	return &c, true
}

// DefinitionIDs returns the IDs of the embedded model definitions, in
// increasing order.
func DefinitionIDs() []uint16 {
	ids := make([]uint16, 0, len(definitions))
	for id := range definitions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// loadDefinitions parses every models/model_<id>.json in fsys.
func loadDefinitions(fsys fs.FS) (map[uint16]*ModelDef, error) {
	names, err := fs.Glob(fsys, "models/model_*.json")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no models/model_*.json")
	}
	defs := make(map[uint16]*ModelDef, len(names))
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		def, err := parseDefinition(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		want := "model_" + strconv.Itoa(int(def.ID)) + ".json"
		if path.Base(name) != want {
			return nil, fmt.Errorf("%s: holds model %d; expected file name %s", name, def.ID, want)
		}
		defs[def.ID] = def
	}
	return defs, nil
}

// jsonModel is the subset of the SunSpec JSON model format used here.
type jsonModel struct {
	ID    *int `json:"id"`
	Group struct {
		Name   string            `json:"name"`
		Label  string            `json:"label"`
		Type   string            `json:"type"`
		Points []jsonPoint       `json:"points"`
		Groups []json.RawMessage `json:"groups"`
	} `json:"group"`
}

type jsonPoint struct {
	Name      string          `json:"name"`
	Type      string          `json:"type"`
	Size      *int            `json:"size"`
	SF        json.RawMessage `json:"sf"`
	Units     string          `json:"units"`
	Mandatory string          `json:"mandatory"`
	Label     string          `json:"label"`
	Desc      string          `json:"desc"`
	Value     json.RawMessage `json:"value"`
}

// parseDefinition parses and checks one SunSpec JSON model definition.
func parseDefinition(b []byte) (*ModelDef, error) {
	var jm jsonModel
	if err := json.Unmarshal(b, &jm); err != nil {
		return nil, err
	}
	if jm.ID == nil || *jm.ID < 1 || *jm.ID >= 0xFFFF {
		return nil, fmt.Errorf("missing or invalid model id")
	}
	id := uint16(*jm.ID)
	g := jm.Group
	if len(g.Groups) > 0 {
		return nil, fmt.Errorf("model %d: repeating groups are not supported", id)
	}
	pts := g.Points
	if len(pts) < 2 || pts[0].Name != "ID" || pts[1].Name != "L" {
		return nil, fmt.Errorf("model %d: the first two points must be ID and L", id)
	}
	for _, p := range pts[:2] {
		if p.Type != "uint16" || p.Size == nil || *p.Size != 1 {
			return nil, fmt.Errorf("model %d: point %s must be a uint16 of size 1", id, p.Name)
		}
	}
	if v := strings.TrimSpace(string(pts[0].Value)); v != strconv.Itoa(int(id)) {
		return nil, fmt.Errorf("model %d: point ID has value %s, want %d", id, v, id)
	}
	def := &ModelDef{ID: id, Name: g.Name, Label: g.Label, index: map[string]int{}}
	offset := 0
	for _, jp := range pts[2:] {
		p, err := parsePoint(jp, offset)
		if err != nil {
			return nil, fmt.Errorf("model %d: %w", id, err)
		}
		if _, dup := def.index[p.Name]; dup || p.Name == "ID" || p.Name == "L" {
			return nil, fmt.Errorf("model %d: point %q defined twice", id, p.Name)
		}
		def.index[p.Name] = len(def.Points)
		def.Points = append(def.Points, p)
		offset += int(p.Size)
	}
	if offset > MaxRead {
		return nil, fmt.Errorf("model %d: %d registers do not fit one read of %d", id, offset, MaxRead)
	}
	def.Length = uint16(offset)
	for _, p := range def.Points {
		if p.SF == "" {
			continue
		}
		sf, ok := def.Point(p.SF)
		if !ok {
			return nil, fmt.Errorf("model %d: point %s: scale factor %q is not a point of the model", id, p.Name, p.SF)
		}
		if sf.Type != "sunssf" {
			return nil, fmt.Errorf("model %d: point %s: scale factor %s has type %s, want sunssf", id, p.Name, p.SF, sf.Type)
		}
	}
	return def, nil
}

func parsePoint(jp jsonPoint, offset int) (Point, error) {
	if jp.Name == "" {
		return Point{}, fmt.Errorf("point at offset %d has no name", offset+2)
	}
	want, known := typeSizes[jp.Type]
	if !known {
		return Point{}, fmt.Errorf("point %s: type %q is not supported", jp.Name, jp.Type)
	}
	if jp.Size == nil || *jp.Size < 1 || *jp.Size > MaxRead || (want != 0 && *jp.Size != int(want)) {
		return Point{}, fmt.Errorf("point %s: size %v is wrong for type %s", jp.Name, sizeText(jp.Size), jp.Type)
	}
	p := Point{
		Name:      jp.Name,
		Offset:    uint16(offset),
		Size:      uint16(*jp.Size),
		Type:      jp.Type,
		Units:     jp.Units,
		Mandatory: jp.Mandatory == "M",
		Label:     jp.Label,
		Desc:      jp.Desc,
	}
	if len(jp.SF) > 0 && string(jp.SF) != "null" {
		if err := json.Unmarshal(jp.SF, &p.SF); err != nil || p.SF == "" {
			return Point{}, fmt.Errorf("point %s: sf %s is not the name of a scale-factor point", jp.Name, jp.SF)
		}
		if !isNumeric(p.Type) || p.Type == "sunssf" {
			return Point{}, fmt.Errorf("point %s: a %s point cannot have a scale factor", jp.Name, jp.Type)
		}
	}
	return p, nil
}

func sizeText(n *int) string {
	if n == nil {
		return "(none)"
	}
	return strconv.Itoa(*n)
}

// isNumeric reports whether points of type t hold a number.
func isNumeric(t string) bool { return t != "string" && t != "pad" }
