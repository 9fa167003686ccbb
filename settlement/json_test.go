package settlement

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// workedExampleJSON is the JSON form of the worked example, as
// docs/settlement.md shows it.
const workedExampleJSON = `{"format":"p2pgrid-settlement/1","interval":"2026-11-22T12:00Z","policy":"seller-bears-shortfall",` +
	`"retail":"0.3","feed_in":"0.05","grid":"0.425","fees":"0.026","trades":[` +
	`{"id":"2026-11-22T12:00Z/h1-sell/h4-buy","seller":"h1","buyer":"h4","wh":1500,"delivered_wh":1200,"missing_wh":300,"price":"0.15","amount":"0.18","fee":"0.012","compensation":"0.045"},` +
	`{"id":"2026-11-22T12:00Z/h1-sell/h5-buy","seller":"h1","buyer":"h5","wh":500,"delivered_wh":400,"missing_wh":100,"price":"0.15","amount":"0.06","fee":"0.004","compensation":"0.015"},` +
	`{"id":"2026-11-22T12:00Z/h2-sell/h5-buy","seller":"h2","buyer":"h5","wh":1000,"delivered_wh":1000,"missing_wh":0,"price":"0.15","amount":"0.15","fee":"0.01","compensation":"0"}],` +
	`"participants":[` +
	`{"participant":"h1","intervals":1,"missing_intervals":0,"bought_wh":0,"sold_wh":2000,"received_wh":0,"delivered_wh":1600,"import_wh":0,"export_wh":1600,"grid_import_wh":0,"grid_export_wh":0,"spilled_wh":0,"imbalance_wh":-400,"paid_p2p":"0","received_p2p":"0.24","fees":"0","compensation_paid":"0.06","compensation_received":"0","grid_cost":"0","grid_credit":"0","net":"0.18","baseline":"0.08","saving":"0.1"},` +
	`{"participant":"h2","intervals":1,"missing_intervals":0,"bought_wh":0,"sold_wh":1000,"received_wh":0,"delivered_wh":1000,"import_wh":0,"export_wh":1300,"grid_import_wh":0,"grid_export_wh":300,"spilled_wh":0,"imbalance_wh":300,"paid_p2p":"0","received_p2p":"0.15","fees":"0","compensation_paid":"0","compensation_received":"0","grid_cost":"0","grid_credit":"0.015","net":"0.165","baseline":"0.065","saving":"0.1"},` +
	`{"participant":"h4","intervals":1,"missing_intervals":0,"bought_wh":1500,"sold_wh":0,"received_wh":1200,"delivered_wh":0,"import_wh":2000,"export_wh":0,"grid_import_wh":800,"grid_export_wh":0,"spilled_wh":0,"imbalance_wh":-500,"paid_p2p":"0.18","received_p2p":"0","fees":"0.012","compensation_paid":"0","compensation_received":"0.045","grid_cost":"0.24","grid_credit":"0","net":"-0.387","baseline":"-0.6","saving":"0.213"},` +
	`{"participant":"h5","intervals":1,"missing_intervals":0,"bought_wh":1500,"sold_wh":0,"received_wh":1400,"delivered_wh":0,"import_wh":1200,"export_wh":0,"grid_import_wh":0,"grid_export_wh":200,"spilled_wh":200,"imbalance_wh":300,"paid_p2p":"0.21","received_p2p":"0","fees":"0.014","compensation_paid":"0","compensation_received":"0.015","grid_cost":"0","grid_credit":"0.01","net":"-0.199","baseline":"-0.36","saving":"0.161"},` +
	`{"participant":"h6","intervals":1,"missing_intervals":0,"bought_wh":0,"sold_wh":0,"received_wh":0,"delivered_wh":0,"import_wh":700,"export_wh":0,"grid_import_wh":700,"grid_export_wh":0,"spilled_wh":0,"imbalance_wh":-700,"paid_p2p":"0","received_p2p":"0","fees":"0","compensation_paid":"0","compensation_received":"0","grid_cost":"0.21","grid_credit":"0","net":"-0.21","baseline":"-0.21","saving":"0"}]}`

func settleOrFail(t testing.TB, c settleCase) *IntervalSettlement {
	t.Helper()
	s, err := Settle(testInterval, c.result, c.tariffs, c.metered, SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMarshalJSONWorkedExample(t *testing.T) {
	got, err := settleOrFail(t, workedExample).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != workedExampleJSON {
		t.Fatalf("got\n%s\nwant\n%s", got, workedExampleJSON)
	}
	// json.Marshal goes through MarshalJSON and must agree.
	viaStd, err := json.Marshal(settleOrFail(t, workedExample))
	if err != nil || !bytes.Equal(viaStd, got) {
		t.Fatalf("json.Marshal differs (%v):\n%s", err, viaStd)
	}
}

// TestMarshalJSONIgnoresDecimalGlobals: shopspring/decimal's global
// formatting options must not change the bytes.
func TestMarshalJSONIgnoresDecimalGlobals(t *testing.T) {
	trim, sci, quotes := decimal.TrimTrailingZeros, decimal.UseScientificNotation, decimal.MarshalJSONWithoutQuotes
	defer func() {
		decimal.TrimTrailingZeros, decimal.UseScientificNotation, decimal.MarshalJSONWithoutQuotes = trim, sci, quotes
	}()
	decimal.TrimTrailingZeros, decimal.UseScientificNotation, decimal.MarshalJSONWithoutQuotes = false, true, true
	got, err := settleOrFail(t, workedExample).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != workedExampleJSON {
		t.Fatalf("with decimal globals changed, got\n%s", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, c := range settleCases {
		t.Run(c.name, func(t *testing.T) {
			s := settleOrFail(t, c)
			b, err := s.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeIntervalSettlement(b)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, b)
			}
			again, err := d.MarshalJSON()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoded differs (%v):\n%s\n%s", err, again, b)
			}
			checkCase(t, c, d) // the decoded values, not just the bytes
			// Whitespace between tokens is allowed.
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeIntervalSettlement(pretty.Bytes()); err != nil {
				t.Fatalf("decode indented: %v", err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := workedExampleJSON
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "decode settlement: EOF"},
		{"not an object", `[]`, "cannot unmarshal array"},
		{"unknown field", strings.Replace(good, `"policy"`, `"colour":"red","policy"`, 1), `unknown field "colour"`},
		{"trailing data", good + `{}`, "trailing data after the settlement"},
		{"wrong format", strings.Replace(good, "p2pgrid-settlement/1", "p2pgrid-settlement/2", 1),
			`format "p2pgrid-settlement/2": want "p2pgrid-settlement/1"`},
		{"trailing zero", strings.Replace(good, `"grid":"0.425"`, `"grid":"0.4250"`, 1),
			`grid: "0.4250" is not in shortest form (want "0.425")`},
		{"exponent", strings.Replace(good, `"grid":"0.425"`, `"grid":"425e-3"`, 1), `grid: "425e-3" is not a decimal in shortest form`},
		{"huge exponent", strings.Replace(good, `"grid":"0.425"`, `"grid":"1e999999999"`, 1), "no exponent"},
		{"not a number", strings.Replace(good, `"fee":"0.004"`, `"fee":"cheap"`, 1), `trades[1].fee: "cheap" is not a decimal`},
		{"money as number", strings.Replace(good, `"grid":"0.425"`, `"grid":0.425`, 1), "cannot unmarshal number into Go struct field"},
		{"fractional Wh", strings.Replace(good, `"wh":1500`, `"wh":1500.5`, 1), "cannot unmarshal number 1500.5"},
		{"missing field", strings.Replace(good, `"policy":"seller-bears-shortfall",`, ``, 1), `not in canonical form: at byte 65 of the compacted input, "retail\":\"0.3\",\"feed_in\":", the canonical form has "policy\":\"\",\"retail\":\"0.3"`},
		{"fields reordered", strings.Replace(good, `"retail":"0.3","feed_in":"0.05"`, `"feed_in":"0.05","retail":"0.3"`, 1),
			`not in canonical form: at byte 99 of the compacted input, "feed_in\":\"0.05\",\"retail\"", the canonical form has "retail\":\"0.3\",\"feed_in\":"`},
		{"null trades", `{"format":"p2pgrid-settlement/1","interval":"","policy":"x","retail":"0.3","feed_in":"0.05","grid":"0","fees":"0","trades":null,"participants":[]}`,
			"not in canonical form"},
		{"money leak", strings.Replace(good, `"net":"0.18"`, `"net":"0.19"`, 1), `participant "h1": net 0.19 is not the sum of its flows 0.18: settlement invariant violated`},
		{"consistent leak", strings.NewReplacer(`"grid_cost":"0.24"`, `"grid_cost":"0.25"`, `"net":"-0.387"`, `"net":"-0.397"`,
			`"saving":"0.213"`, `"saving":"0.203"`).Replace(good),
			"grid 0.425, but statements owe the grid 0.435"},
		{"over-delivery", strings.Replace(good, `"delivered_wh":1200,"missing_wh":300`, `"delivered_wh":1600,"missing_wh":-100`, 1),
			"traded 1500 Wh, delivered 1600 Wh, missing -100 Wh: settlement invariant violated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := DecodeIntervalSettlement([]byte(c.in))
			if err == nil {
				t.Fatalf("no error; decoded %+v", s)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, c.want)
			}
			if strings.Contains(c.want, "invariant") && !errors.Is(err, ErrInvariant) {
				t.Fatalf("error does not wrap ErrInvariant: %v", err)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	cases := map[string]string{
		"0": "0", "0.000": "0", "-0.0": "0", "1.500": "1.5", "100": "100", "-0.05": "-0.05",
		"0.00015": "0.00015", "12345.678900": "12345.6789", "-7": "-7",
	}
	for in, want := range cases {
		if got := canonical(decimal.RequireFromString(in)); got != want {
			t.Errorf("canonical(%s) = %q, want %q", in, got, want)
		}
	}
	if got := canonical(decimal.New(15, 3)); got != "15000" {
		t.Errorf("canonical(15e3) = %q", got)
	}
}

// FuzzDecodeIntervalSettlement: whatever the decoder accepts marshals back
// to the same bytes (compacted) and passes Check.
func FuzzDecodeIntervalSettlement(f *testing.F) {
	for _, c := range settleCases {
		b, err := settleOrFail(f, c).MarshalJSON()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"p2pgrid-settlement/1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeIntervalSettlement(data)
		if err != nil {
			return
		}
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, compact.Bytes()) {
			t.Fatalf("accepted input does not round-trip:\n%s\n%s", compact.Bytes(), b)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("accepted settlement fails Check: %v", err)
		}
	})
}
