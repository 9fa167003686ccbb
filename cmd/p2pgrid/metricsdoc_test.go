package main

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// checkMetricsDocumented compares the p2pgrid_ metrics a running gateway
// exports (scrape, its /metrics page right after start) with the table in
// docs/gateway.md: every documented metric exists from the start, and
// every exported one is documented.
func checkMetricsDocumented(t *testing.T, scrape []byte) {
	t.Helper()
	exported := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(scrape))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "p2pgrid_") {
			exported[f[2]] = true
		}
	}
	doc, err := os.ReadFile("../../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(p2pgrid_[a-z0-9_]+)`").FindAllSubmatch(doc, -1) {
		documented[string(m[1])] = true
	}
	if os.Getenv("DUMP_METRICS") != "" {
		t.Logf("%s", scrape)
	}
	if len(documented) < 10 {
		t.Fatalf("docs/gateway.md documents only %d metrics in its table: the table was not found", len(documented))
	}
	var missing, undocumented []string
	for n := range documented {
		if !exported[n] {
			missing = append(missing, n)
		}
	}
	for n := range exported {
		if !documented[n] {
			undocumented = append(undocumented, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(undocumented)
	if len(missing) > 0 {
		t.Errorf("documented in docs/gateway.md but not exported at start: %s", strings.Join(missing, ", "))
	}
	if len(undocumented) > 0 {
		t.Errorf("exported but not in docs/gateway.md's metrics table: %s", strings.Join(undocumented, ", "))
	}
}
