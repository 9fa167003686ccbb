package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// FuzzDecode: a record Decode accepts is, encoded again and decoded, the
// same value (its typed shape loses nothing it keeps), and Decode never
// panics.
func FuzzDecode(f *testing.F) {
	f.Add(KindClearing, `{"community":"elm","currency":"EUR","interval":"2026-11-22T10:15Z","orders":4,"price":"0.21","trades":2,"volume_kwh":"3.5"}`)
	f.Add(KindClearing, `{"interval":"2026-11-22T10:15:00Z","price":null,"volume_kwh":0}`)
	f.Add(KindTrade, `{"amount":"0.252","buyer":"b","id":"x","interval":"2026-11-22T10:15Z","kwh":"1.2","price":"0.21","seller":"a"}`)
	f.Add(KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","net":"-1e3","intervals":"1","tip":2}`)
	f.Add(KindReading, `{"device":"grid","gateway":"g","power_w":1,"profile":"sdm630","time":"2026-11-22T10:15:00Z"}`)
	f.Add(KindInterval, `{}`)
	f.Fuzz(func(t *testing.T, kind, data string) {
		v, err := Decode(ledger.Record{Seq: 1, Kind: kind, Key: "k", Data: json.RawMessage(data)})
		if err != nil {
			return
		}
		var again []byte
		switch v := v.(type) {
		case Clearing, Trade, Reading:
			again = marshal(v)
		case Statement:
			b := marshal(v)
			// Extra is not written; put it back for the comparison.
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for k, x := range v.Extra {
				m[k] = marshal(x)
			}
			again = marshal(m)
		default:
			return // the interval's settlement has its own fuzzing in settlement
		}
		w, err := Decode(ledger.Record{Seq: 1, Kind: kind, Key: "k", Data: again})
		if err != nil {
			t.Fatalf("%s %s encoded as %s, which does not decode: %v", kind, data, again, err)
		}
		if a, b := marshal(v), marshal(w); !bytes.Equal(a, b) {
			t.Fatalf("%s %s: decoded %s, then %s", kind, data, a, b)
		}
		if s, ok := v.(Statement); ok {
			if a, b := fmt.Sprint(s.Figures()), fmt.Sprint(w.(Statement).Figures()); a != b {
				t.Fatalf("%s %s: figures %s, then %s", kind, data, a, b)
			}
		}
	})
}
