package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// a config error, and that what it accepts is valid and makes a market.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + devices))
	f.Add([]byte(minimal + "market:\n  interval: 15x\n  k: 0.5.1\n  price_floor: 1e99\n"))
	f.Add([]byte(minimal + "devices:\n  - &d {name: a, url: tcp://a, unit: 1, profile: p, role: pv}\n  - *d\n"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, nil)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config: ") {
					t.Fatalf("error line %q does not start with \"config: \"", line)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		if _, err := auction.NewMarket(c.AuctionRules()); err != nil {
			t.Fatalf("Parse accepted a market that auction rejects: %v", err)
		}
		again, err := Parse(data, nil)
		if err != nil || !reflect.DeepEqual(dump(c), dump(again)) {
			t.Fatalf("Parse is not deterministic: %v", err)
		}
	})
}
