package protocol

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestRosterRoundTrip(t *testing.T) {
	k1, k2, k3 := PublicKeyString(testPub("home1")), PublicKeyString(testPub("home2")), PublicKeyString(testPub("home3"))
	// Unsorted, with an explicit "clearer": false and whitespace.
	data := fmt.Sprintf(`{
	  "community": "c1",
	  "gateways": [
	    {"id": "home3", "public_key": %q},
	    {"id": "home1", "public_key": %q, "clearer": true},
	    {"id": "home2", "public_key": %q, "clearer": false}
	  ]
	}`, k3, k1, k2)
	r, err := ParseRoster([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Community != "c1" || len(r.Gateways) != 3 || r.Gateways[0].ID != "home1" || r.Gateways[2].ID != "home3" {
		t.Fatalf("parsed %+v", r)
	}
	if k, ok := r.Key("home2"); !ok || !k.Equal(testPub("home2")) {
		t.Errorf("Key(home2) = %x, %v", k, ok)
	}
	if _, ok := r.Key("home4"); ok {
		t.Error("Key(home4) found")
	}
	if !r.IsClearer("home1") || r.IsClearer("home2") || r.IsClearer("home4") {
		t.Error("IsClearer wrong")
	}
	enc := r.Encode()
	want := `{"community":"c1","gateways":[{"id":"home1","public_key":"` + k1 + `","clearer":true},` +
		`{"id":"home2","public_key":"` + k2 + `"},{"id":"home3","public_key":"` + k3 + `"}]}`
	if string(enc) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", enc, want)
	}
	r2, err := ParseRoster(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.Encode(), enc) {
		t.Fatal("roster does not round-trip byte for byte")
	}
	// The same members built in code encode to the same bytes.
	if !bytes.Equal(newTestRoster(t, "c1").Encode(), enc) {
		t.Fatal("NewRoster and ParseRoster disagree")
	}
	// A Roster literal still answers, by search.
	lit := &Roster{Community: "c1", Gateways: r.Gateways}
	if k, ok := lit.Key("home3"); !ok || !k.Equal(testPub("home3")) || !lit.IsClearer("home1") {
		t.Error("Roster literal lookups fail")
	}
}

func TestParseRosterErrors(t *testing.T) {
	k1, k2 := PublicKeyString(testPub("home1")), PublicKeyString(testPub("home2"))
	entry := func(id, key string, extra string) string {
		return fmt.Sprintf(`{"id":%q,"public_key":%q%s}`, id, key, extra)
	}
	roster := func(entries ...string) string {
		return `{"community":"c1","gateways":[` + strings.Join(entries, ",") + `]}`
	}
	clearer := entry("home1", k1, `,"clearer":true`)
	for name, tc := range map[string]struct{ data, want string }{
		"unknown key in an entry": {roster(clearer, entry("home2", k2, `,"pubkey":"x"`)), `gateway "home2": key "pubkey": unknown key`},
		"unknown top-level key":   {`{"community":"c1","gateways":[],"name":"x"}`, `key "name": unknown key`},
		"duplicate id":            {roster(clearer, entry("home1", k2, "")), `gateway "home1": listed twice`},
		"duplicate key":           {roster(clearer, entry("home2", k1, "")), `gateway "home2": same public key as gateway "home1"`},
		"bad key":                 {roster(clearer, entry("home2", "ed25519:AAAA", "")), `gateway "home2": public key "ed25519:AAAA"`},
		"key without prefix":      {roster(clearer, entry("home2", strings.TrimPrefix(k2, "ed25519:"), "")), `gateway "home2": public key`},
		"bad id":                  {roster(clearer, entry("home/2", k2, "")), `gateways[1]: id "home/2"`},
		"missing key":             {roster(clearer, `{"id":"home2"}`), `gateway "home2": key "public_key" is missing`},
		"missing id":              {roster(clearer, fmt.Sprintf(`{"public_key":%q}`, k2)), `gateways[1]: key "id" is missing`},
		"clearer not a boolean":   {roster(entry("home1", k1, `,"clearer":"yes"`)), `gateway "home1": key "clearer": want true or false`},
		"duplicate JSON key":      {roster(entry("home1", k1, `,"clearer":true,"clearer":false`)), `key "clearer" appears twice`},
		"no clearer":              {roster(entry("home1", k1, "")), "no gateway is marked"},
		"no gateways":             {`{"community":"c1","gateways":[]}`, "no gateways"},
		"gateways null":           {`{"community":"c1","gateways":null}`, "want an array"},
		"no community":            {`{"gateways":[]}`, `key "community" is missing`},
		"bad community":           {`{"community":"c 1","gateways":[` + clearer + `]}`, `community "c 1"`},
		"not JSON":                {`community: c1`, "invalid character"},
		"oversize":                {roster(clearer) + strings.Repeat(" ", MaxRosterSize), "at most"},
	} {
		_, err := ParseRoster([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "roster: ") {
			t.Errorf("%s: %v; want an error saying %q", name, err, tc.want)
		}
	}
}
