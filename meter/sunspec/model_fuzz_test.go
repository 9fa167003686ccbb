package sunspec

import (
	"io/fs"
	"testing"
)

// FuzzParseDefinition: a SunSpec JSON model definition (the embedded
// models/model_<id>.json files, or a vendor's). It must never panic; an
// accepted model has its points laid out one after another, fits in one
// read, names each point once, and every scale factor is a sunssf point of
// the model.
func FuzzParseDefinition(f *testing.F) {
	names, err := fs.Glob(models, "models/model_*.json")
	if err != nil || len(names) == 0 {
		f.Fatalf("embedded models: %v %v", names, err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(models, n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":1,"group":{"name":"x","points":[{"name":"ID","type":"uint16","size":1,"value":1},{"name":"L","type":"uint16","size":1},{"name":"A","type":"int16","size":1,"sf":"A_SF"},{"name":"A_SF","type":"sunssf","size":1}]}}`))
	f.Add([]byte(`{"id":1,"group":{"name":"x","points":[{"name":"ID","type":"uint16","size":1,"value":1},{"name":"L","type":"uint16","size":1},{"name":"A","type":"string","size":200}]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := parseDefinition(data)
		if err != nil {
			return
		}
		if def.ID == 0 || def.ID == 0xFFFF || def.Length > MaxRead {
			t.Fatalf("accepted model %d of length %d", def.ID, def.Length)
		}
		offset := uint16(0)
		for i, p := range def.Points {
			if p.Offset != offset || p.Size == 0 {
				t.Fatalf("model %d: point %s at %d size %d, want offset %d", def.ID, p.Name, p.Offset, p.Size, offset)
			}
			offset += p.Size
			if q, ok := def.Point(p.Name); !ok || q.Offset != p.Offset || def.index[p.Name] != i {
				t.Fatalf("model %d: point %s is not found as itself", def.ID, p.Name)
			}
			if p.SF != "" {
				if sf, ok := def.Point(p.SF); !ok || sf.Type != "sunssf" {
					t.Fatalf("model %d: point %s has scale factor %q, not a sunssf point", def.ID, p.Name, p.SF)
				}
			}
		}
		if offset != def.Length {
			t.Fatalf("model %d: points take %d registers, length %d", def.ID, offset, def.Length)
		}
	})
}
