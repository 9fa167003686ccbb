package main

import (
	"strings"
	"testing"
)

// FuzzParseUnits: `p2pgrid meter scan --units`. It must never panic; an
// error quotes the part at fault; accepted unit ids are 1 to 247, each
// once, and every one of them is named by the text.
func FuzzParseUnits(f *testing.F) {
	for _, s := range []string{"1-247", "1-10,126", "126", " 3 , 5-6", "0", "248", "10-1", "1-", "-1", "1,,2", "1-2-3", "+5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := parseUnits(s)
		if err != nil {
			if !strings.Contains(err.Error(), "unit id") || !strings.Contains(err.Error(), `"`) {
				t.Fatalf("error does not quote the part at fault: %v", err)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatalf("%q: no unit ids and no error", s)
		}
		seen := map[uint8]bool{}
		for _, u := range ids {
			if u < 1 || u > 247 || seen[u] {
				t.Fatalf("%q: unit ids %v", s, ids)
			}
			seen[u] = true
		}
	})
}
