package tariff

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/internal/golden"
	"github.com/p2pgrid/p2pgrid/market"
)

// input is a golden case's input.json.
type input struct {
	Now       time.Time `json:"now"`
	Interval  string    `json:"interval"` // a Go duration
	Retail    string    `json:"retail"`
	Fee       string    `json:"fee"`
	Horizon   string    `json:"horizon"` // a Go duration; "" the default
	Days      int       `json:"days"`
	Clearings []struct {
		Start time.Time `json:"start"`
		Price *string   `json:"price"` // null: nothing cleared
	} `json:"clearings"`
}

func (in input) rules(t *testing.T) (Rules, []Clearing) {
	t.Helper()
	iv, err := time.ParseDuration(in.Interval)
	if err != nil {
		t.Fatal(err)
	}
	r := Rules{Calendar: market.Calendar{Interval: iv}, Retail: decimal.RequireFromString(in.Retail),
		Fee: decimal.RequireFromString(in.Fee), Days: in.Days}
	if in.Horizon != "" {
		if r.Horizon, err = time.ParseDuration(in.Horizon); err != nil {
			t.Fatal(err)
		}
	}
	var known []Clearing
	for _, c := range in.Clearings {
		k := Clearing{Start: c.Start}
		if c.Price != nil {
			k.Cleared, k.Price = true, decimal.RequireFromString(*c.Price)
		}
		known = append(known, k)
	}
	return r, known
}

// TestGolden runs testdata/<case>/input.json through Slots and compares
// the JSON served (or the error) with slots.json.
func TestGolden(t *testing.T) {
	for _, name := range golden.Cases(t, "testdata", "input.json", 6) {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", name, "input.json"))
			if err != nil {
				t.Fatal(err)
			}
			var in input
			if err := json.Unmarshal(raw, &in); err != nil {
				t.Fatal(err)
			}
			r, known := in.rules(t)
			slots, err := Slots(in.Now, r, known)
			var got []byte
			if err != nil {
				got, _ = json.MarshalIndent(map[string]string{"error": err.Error()}, "", "  ")
			} else {
				checkContiguous(t, in.Now, r, slots)
				if got, err = json.MarshalIndent(slots, "", "  "); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, filepath.Join("testdata", name, "slots.json"), append(got, '\n'))
		})
	}
}

// checkContiguous checks what every answer must be: slots from the
// current interval's start, each ending where the next starts, aligned,
// covering the horizon.
func checkContiguous(t *testing.T, now time.Time, r Rules, slots []Slot) {
	t.Helper()
	if len(slots) == 0 {
		t.Fatal("no slots")
	}
	if want := r.Calendar.Start(now); !slots[0].Start.Equal(want) {
		t.Errorf("first slot starts %v, want %v", slots[0].Start, want)
	}
	for i, s := range slots {
		if !r.Calendar.Aligned(s.Start) || s.End.Sub(s.Start) != r.Calendar.Interval {
			t.Errorf("slot %d: %v-%v is not one interval", i, s.Start, s.End)
		}
		if i > 0 && !slots[i-1].End.Equal(s.Start) {
			t.Errorf("slot %d starts %v, the one before ends %v", i, s.Start, slots[i-1].End)
		}
	}
	if last := slots[len(slots)-1].End; last.Sub(slots[0].Start) < r.Horizon {
		t.Errorf("slots end %v, short of the horizon %v", last, r.Horizon)
	}
}

// The same input gives the same bytes, whatever order the clearings come
// in (a map inside must not leak its order).
func TestDeterministic(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 7, 0, 0, time.UTC)
	r := Rules{Calendar: market.Calendar{Interval: 15 * time.Minute}, Retail: decimal.RequireFromString("0.3"), Horizon: 6 * time.Hour, Days: 5}
	var known []Clearing
	for d := 1; d <= 5; d++ {
		for i := range 24 {
			start := r.Calendar.Start(now).Add(-time.Duration(d)*24*time.Hour + time.Duration(i)*15*time.Minute)
			known = append(known, Clearing{Start: start, Cleared: (d+i)%3 != 0, Price: decimal.New(int64(80+d*i), -3)})
		}
	}
	encode := func(k []Clearing) []byte {
		s, err := Slots(now, r, k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(s)
		return b
	}
	first := encode(known)
	reversed := make([]Clearing, len(known))
	for i, c := range known {
		reversed[len(known)-1-i] = c
	}
	if second := encode(reversed); !bytes.Equal(first, second) {
		t.Errorf("order of clearings changes the answer:\n%s\n%s", first, second)
	}
	if !bytes.Contains(first, []byte(`"source":"estimate"`)) {
		t.Errorf("no estimate in %s", first)
	}
}

// Values are written from the decimal's text: a price no float64 holds
// exactly comes out digit for digit.
func TestValueExact(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	r := Rules{Calendar: market.Calendar{Interval: time.Hour}, Retail: decimal.RequireFromString("0.300000000000000001"), Horizon: time.Hour}
	s, err := Slots(now, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	if want := `"value":0.300000000000000001,`; !bytes.Contains(b, []byte(want)) {
		t.Errorf("%s lacks %s", b, want)
	}
}
