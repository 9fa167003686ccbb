package protocol

import (
	"bytes"
	"testing"
)

func TestMeteredAndSettlementRoundTrip(t *testing.T) {
	r := newTestRoster(t, "c1")
	const iv = "2026-11-22T12:15Z"
	m1, err := SignMetered(testKey("home1"), "c1", iv, "home1", 120, 845)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := SignMetered(testKey("home2"), "c1", iv, "home2", 600, 0)
	dm, err := DecodeMetered(m1)
	if err != nil || dm.ImportWh != 120 || dm.ExportWh != 845 || !bytes.Equal(dm.Encode(), m1) {
		t.Fatalf("decode %+v %v", dm, err)
	}
	if err := dm.Verify(r); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(m1, []byte(`"export_wh":845`), []byte(`"export_wh":945`), 1)
	if dt, err := DecodeMetered(tampered); err != nil || ReasonOf(dt.Verify(r)) != RejectForged {
		t.Errorf("tampered metered figures verified: %v", err)
	}
	if _, err := DecodeMetered([]byte(`{"v":1,"community":"c1","interval":"` + iv + `","gateway":"home1","import_wh":-1,"export_wh":0,"sig":"AA=="}`)); ReasonOf(err) != RejectMalformed {
		t.Errorf("negative energy: %v", err)
	}

	clearer := r.Gateways[0].ID
	for _, g := range r.Gateways {
		if g.Clearer {
			clearer = g.ID
		}
	}
	s, err := EncodeSettlement(testKey(clearer), "c1", iv, clearer, [][]byte{m2, m1}, []byte(`{"interval":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := DecodeSettlement(s)
	if err != nil || !bytes.Equal(ds.Encode(), s) {
		t.Fatalf("settlement round trip: %v", err)
	}
	ms, err := ds.Verify(r)
	if err != nil || len(ms) != 2 || ms[0].Gateway != "home1" {
		t.Errorf("verify: %v %+v", err, ms)
	}
	// Signed by a gateway that is not a clearer: forged.
	bad, _ := EncodeSettlement(testKey("home2"), "c1", iv, "home2", [][]byte{m1}, []byte(`{}`))
	if db, err := DecodeSettlement(bad); err != nil {
		t.Fatal(err)
	} else if _, err := db.Verify(r); ReasonOf(err) != RejectForged {
		t.Errorf("settlement by a non-clearer: %v", err)
	}
}

func FuzzDecodeMetered(f *testing.F) {
	m, _ := SignMetered(testKey("home1"), "c1", "2026-11-22T12:15Z", "home1", 1, 2)
	f.Add(m)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := DecodeMetered(data)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("rejection without a reason: %v", err)
			}
			return
		}
		again, err := DecodeMetered(msg.Encode())
		if err != nil || !bytes.Equal(again.Encode(), msg.Encode()) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
