package sunspec

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// readableIDs are the models decodeReading understands, in order.
var readableIDs = func() []uint16 {
	var ids []uint16
	for id := range readable {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}()

func words(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return out
}

func bytesOf(regs []uint16) []byte {
	out := make([]byte, 0, 2*len(regs))
	for _, r := range regs {
		out = append(out, byte(r>>8), byte(r))
	}
	return out
}

// FuzzDecode decodes random register blocks as every readable model: it
// never panics, and a reading it returns always encodes as JSON (no NaN,
// no Inf) with non-negative energy counters.
func FuzzDecode(f *testing.F) {
	for i, id := range readableIDs {
		full := Block{ID: id, Raw: fullRaw(f, id)}
		f.Add(uint8(i), bytesOf(modelData(f, full)))
		f.Add(uint8(i), bytesOf(modelData(f, Block{ID: id})))
	}
	f.Add(uint8(2), bytesOf(modelData(f, Block{ID: 103, Values: values("W", "-1", "WH", "4294967295", "WH_SF", "9")})))
	f.Add(uint8(5), []byte{0x7f, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, pick uint8, data []byte) {
		id := readableIDs[int(pick)%len(readableIDs)]
		regs := words(data)
		if l := int(definitions[id].Length); len(regs) > l {
			regs = regs[:l]
		}
		r, err := decodeReading(id, regs, pick&0x80 != 0)
		if err != nil {
			if !errors.Is(err, ErrBadData) {
				t.Fatalf("model %d: error %v is not ErrBadData", id, err)
			}
			return
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("model %d: reading does not encode: %v", id, err)
		}
		for _, e := range []*int64{r.ImportWh, r.ExportWh} {
			if e != nil && *e < 0 {
				t.Fatalf("model %d: negative energy %d", id, *e)
			}
		}
		if r.Kind != readable[id].kind {
			t.Fatalf("model %d: kind %q", id, r.Kind)
		}
	})
}

// FuzzDiscover runs Discover and Read over random register images at
// one of the bases: it never panics, never loops (the fake fails the test
// past a fixed number of reads), and what it finds is consistent.
func FuzzDiscover(f *testing.F) {
	f.Add(uint8(0), true, bytesOf(inverter103(f, 40000)[2:]))
	f.Add(uint8(1), true, bytesOf(mustImage(f, 0, Common("a", "b", "c"), Block{ID: 213, Values: values("W", "1")})[2:]))
	f.Add(uint8(2), true, bytesOf(mustImage(f, 50000, Common("a", "b", "c"), Block{ID: 201})[2:]))
	f.Add(uint8(0), true, []byte{0, 1, 0, 66})
	f.Add(uint8(0), true, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Add(uint8(0), false, []byte{0x53, 0x75, 0x6e, 0x53, 0, 1, 0xff, 0xc8})
	f.Fuzz(func(t *testing.T, pick uint8, withMarker bool, data []byte) {
		base := bases[int(pick)%len(bases)]
		regs := words(data)
		if withMarker {
			regs = append([]uint16{marker[0], marker[1]}, regs...)
		}
		if len(regs) > 0x10000-int(base) {
			regs = regs[:0x10000-int(base)]
		}
		fake := newFake(t).load(base, regs...)
		fake.budget = len(bases) + (MaxModels + 1) + 1 + 1
		d, err := Discover(context.Background(), fake, 1)
		if err != nil {
			if !errors.Is(err, ErrNotSunSpec) && !errors.Is(err, ErrBadChain) && !errors.Is(err, ErrUnsupported) &&
				!errors.Is(err, illegalAddress) && !errors.Is(err, ErrBadData) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(d.Models) == 0 || len(d.Models) > MaxModels || d.Models[0].ID != 1 || !slices.Contains(d.Models, d.Source) {
			t.Fatalf("device %+v", d)
		}
		for _, m := range d.Models {
			if int(m.Address)+int(m.Length) > 0x10000 || m.Address <= d.Base {
				t.Fatalf("model %+v outside the image", m)
			}
		}
		n := len(fake.calls)
		r, err := d.Read(context.Background())
		want := 1
		if min(d.Source.Length, definitions[d.Source.ID].Length) == 0 {
			want = 0 // nothing to read: every value is missing
		}
		if len(fake.calls)-n != want {
			t.Fatalf("Read took %d requests, want %d", len(fake.calls)-n, want)
		}
		if err == nil {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("reading does not encode: %v", err)
			}
		}
	})
}
