package sunspec

import (
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDefinitionIDs(t *testing.T) {
	want := []uint16{1, 101, 102, 103, 111, 112, 113, 201, 202, 203, 204, 211, 212, 213, 214}
	if got := DefinitionIDs(); !slices.Equal(got, want) {
		t.Fatalf("DefinitionIDs() = %v, want %v", got, want)
	}
	if _, ok := Definition(120); ok {
		t.Fatal("Definition(120) found a model that is not embedded")
	}
}

// TestDefinitionsMatchCSV checks the offsets computed from the JSON against
// the flat table that came with it, row for row.
func TestDefinitionsMatchCSV(t *testing.T) {
	f, err := os.Open("models/sunspec_point_offsets.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "model,model_name,point,offset_from_model_start,size_regs,type,sf,units" {
		t.Fatalf("csv header %q", got)
	}
	seen := map[uint16]int{}
	for _, row := range rows[1:] {
		id, _ := strconv.Atoi(row[0])
		def, ok := Definition(uint16(id))
		if !ok {
			t.Fatalf("csv model %d has no definition", id)
		}
		if row[1] != def.Name {
			t.Errorf("model %d: csv name %q, json %q", id, row[1], def.Name)
		}
		if row[2] == "ID" || row[2] == "L" {
			continue
		}
		p, ok := def.Point(row[2])
		if !ok {
			t.Errorf("model %d: csv point %s missing from the definition", id, row[2])
			continue
		}
		seen[def.ID]++
		got := fmt.Sprintf("%d,%d,%s,%s,%s", p.Offset+2, p.Size, p.Type, p.SF, p.Units)
		want := strings.Join(row[3:], ",")
		if got != want {
			t.Errorf("model %d point %s: definition gives %s, csv %s", id, p.Name, got, want)
		}
	}
	for _, id := range DefinitionIDs() {
		def, _ := Definition(id)
		if seen[id] != len(def.Points) {
			t.Errorf("model %d: csv has %d points, definition %d", id, seen[id], len(def.Points))
		}
		last := def.Points[len(def.Points)-1]
		if def.Length != last.Offset+last.Size {
			t.Errorf("model %d: Length %d, last point ends at %d", id, def.Length, last.Offset+last.Size)
		}
	}
}

func TestDefinitionLengths(t *testing.T) {
	want := map[uint16]uint16{1: 66, 101: 50, 102: 50, 103: 50, 111: 60, 112: 60, 113: 60,
		201: 105, 202: 105, 203: 105, 204: 105, 211: 124, 212: 124, 213: 124, 214: 124}
	for id, l := range want {
		def, _ := Definition(id)
		if def.Length != l {
			t.Errorf("model %d: Length %d, want %d", id, def.Length, l)
		}
		if def.Length > MaxRead {
			t.Errorf("model %d: %d registers do not fit one read", id, def.Length)
		}
	}
}

// Every point a reading is built from exists, is a number, and has a
// scale factor exactly when its model is an integer model.
func TestReadablePointsExist(t *testing.T) {
	for id, fm := range readable {
		def, ok := Definition(id)
		if !ok {
			t.Fatalf("readable model %d has no definition", id)
		}
		names := append([]string{fm.power, fm.exportWh, fm.hz}, fm.voltage...)
		names = append(names, fm.current...)
		names = append(names, fm.phasePower...)
		if fm.importWh != "" {
			names = append(names, fm.importWh)
		}
		float := id%100 >= 11
		for _, n := range names {
			p, ok := def.Point(n)
			switch {
			case !ok:
				t.Errorf("model %d: no point %s", id, n)
			case !isNumeric(p.Type):
				t.Errorf("model %d point %s: type %s", id, n, p.Type)
			case float && (p.Type != "float32" || p.SF != ""):
				t.Errorf("model %d point %s: %s sf %q in a float model", id, n, p.Type, p.SF)
			case !float && p.SF == "":
				t.Errorf("model %d point %s: no scale factor in an integer model", id, n)
			}
		}
	}
}

func TestDefinitionIsACopy(t *testing.T) {
	a, _ := Definition(103)
	a.Points[0].Name = "changed"
	a.Length = 1
	b, _ := Definition(103)
	if b.Points[0].Name != "A" || b.Length != 50 {
		t.Fatalf("Definition returned shared data: %q %d", b.Points[0].Name, b.Length)
	}
}

func TestBadDefinitions(t *testing.T) {
	const head = `{"id": 900, "group": {"name": "x", "type": "group", "points": [
		{"name": "ID", "type": "uint16", "size": 1, "value": 900},
		{"name": "L", "type": "uint16", "size": 1}`
	tests := []struct {
		name, json, want string
	}{
		{"not json", `{`, "unexpected end"},
		{"no id", `{"group": {"points": []}}`, "missing or invalid model id"},
		{"no header", `{"id": 900, "group": {"points": [{"name": "W", "type": "int16", "size": 1}]}}`, "first two points must be ID and L"},
		{"id value", strings.Replace(head, `"value": 900`, `"value": 901`, 1) + `]}}`, "point ID has value 901"},
		{"unknown type", head + `, {"name": "X", "type": "int64", "size": 4}]}}`, `point X: type "int64" is not supported`},
		{"wrong size", head + `, {"name": "X", "type": "acc32", "size": 1}]}}`, "point X: size 1 is wrong for type acc32"},
		{"no size", head + `, {"name": "X", "type": "string"}]}}`, "point X: size (none)"},
		{"duplicate", head + `, {"name": "X", "type": "int16", "size": 1}, {"name": "X", "type": "int16", "size": 1}]}}`, `point "X" defined twice`},
		{"sf missing", head + `, {"name": "X", "type": "int16", "size": 1, "sf": "X_SF"}]}}`, `scale factor "X_SF" is not a point`},
		{"sf not sunssf", head + `, {"name": "X", "type": "int16", "size": 1, "sf": "Y"}, {"name": "Y", "type": "int16", "size": 1}]}}`, "scale factor Y has type int16"},
		{"sf number", head + `, {"name": "X", "type": "int16", "size": 1, "sf": -2}]}}`, "sf -2 is not the name"},
		{"sf on string", head + `, {"name": "X", "type": "string", "size": 2, "sf": "Y"}, {"name": "Y", "type": "sunssf", "size": 1}]}}`, "a string point cannot have a scale factor"},
		{"repeating", `{"id": 900, "group": {"points": [], "groups": [{}]}}`, "repeating groups are not supported"},
		{"too long", head + `, {"name": "X", "type": "string", "size": 120}, {"name": "Y", "type": "string", "size": 6}]}}`, "126 registers do not fit one read of 125"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadDefinitions(fstest.MapFS{"models/model_900.json": {Data: []byte(tt.json)}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "models/model_900.json: ") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
	t.Run("file name", func(t *testing.T) {
		_, err := loadDefinitions(fstest.MapFS{"models/model_901.json": {Data: []byte(head + `]}}`)}})
		if err == nil || !strings.Contains(err.Error(), "holds model 900; expected file name model_900.json") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, err := loadDefinitions(fstest.MapFS{}); err == nil {
			t.Fatal("no error for an empty folder")
		}
	})
}
