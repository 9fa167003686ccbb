package yamlnode

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root parses a one-document YAML text and returns its top node.
func root(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

var known = []string{"interval", "gate_closure", "name"}

// TestEntries walks mappings that break each rule and checks every entry
// and every fault, in file order, with its line.
func TestEntries(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string // "key@line=value" for an entry, the error text for a fault
	}{
		{"known keys in file order", "name: a\ninterval: 15m\n",
			[]string{"name@1=a", "interval@2=15m"}},
		{"unknown, close to a known key", "intervall: 5m\n",
			[]string{`line 1: unknown key "intervall" (did you mean "interval"?)`}},
		{"unknown, close to none", "colour: blue\n",
			[]string{`line 1: unknown key "colour"`}},
		{"suggestion ignores case", "Name: a\n",
			[]string{`line 1: unknown key "Name" (did you mean "name"?)`}},
		{"given twice", "name: a\ninterval: 1m\nname: b\n",
			[]string{"name@1=a", "interval@2=1m", `line 3: key "name" given twice (first at line 1)`}},
		{"an unknown key twice is unknown, then twice", "x: 1\nx: 2\n",
			[]string{`line 1: unknown key "x"`, `line 2: key "x" given twice (first at line 1)`}},
		{"a mapping as key", "? {a: 1}\n: v\nname: a\n",
			[]string{`line 1: a key must be a plain name, not a mapping`, "name@3=a"}},
		{"a list as key", "? [a]\n: v\n",
			[]string{`line 1: a key must be a plain name, not a list`}},
		{"merge key", "<<: {name: a}\nname: c\n",
			[]string{`line 1: merge keys (<<) are not supported`, "name@2=c"}},
		{"alias value is yielded as written", "name: &n a\ninterval: *n\n",
			[]string{"name@1=a", "interval@2=*n"}},
		{"empty mapping", "{}\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := root(t, c.yaml)
			var got []string
			for e, err := range Entries(n, known) {
				if err != nil {
					got = append(got, err.Error())
					continue
				}
				v := e.Value.Value
				if e.Value.Kind == yaml.AliasNode {
					v = "*" + e.Value.Value
				}
				got = append(got, fmt.Sprintf("%s@%d=%s", e.Key, e.Line, v))
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestEntriesStops(t *testing.T) {
	n := root(t, "x: 1\ny: 2\nz: 3\n")
	calls := 0
	for range Entries(n, known) {
		calls++
		break
	}
	if calls != 1 {
		t.Errorf("the walk went on for %d faults after the caller stopped", calls-1)
	}
}

func TestMapping(t *testing.T) {
	n := root(t, "name: &n a\ninterval: *n\n")
	m, err := Mapping(n, known)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["name"].Value != "a" || m["interval"].Kind != yaml.ScalarNode || m["interval"].Value != "a" {
		t.Errorf("Mapping = %v, want name and interval both the scalar a (the alias followed)", m)
	}

	_, err = Mapping(root(t, "name: a\nnme: b\nname: c\n"), known)
	var ye *Error
	if !errors.As(err, &ye) || ye.Line != 2 || err.Error() != `line 2: unknown key "nme" (did you mean "name"?)` {
		t.Errorf("Mapping with an unknown key: %v, want the first fault, at line 2", err)
	}
}

func TestDescribe(t *testing.T) {
	long := strings.Repeat("x", 41)
	for _, c := range []struct{ yaml, want string }{
		{"k: {a: 1}", "a mapping"},
		{"k: [1]", "a list"},
		{"k: 15m", `"15m"`},
		{"k: " + long, fmt.Sprintf("%q...", long[:40])},
		{"a: &x 1\nk: *x", "an alias"},
	} {
		n := root(t, c.yaml)
		if got := Describe(n.Content[len(n.Content)-1]); got != c.want {
			t.Errorf("Describe(%q) = %s, want %s", c.yaml, got, c.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	env := []string{"P2PGRID_COMMUNITY", "P2PGRID_GATEWAY"}
	for _, c := range []struct {
		got   string
		cands []string
		quote bool
		want  string
	}{
		{"P2PGRID_COMUNITY", env, false, " (did you mean P2PGRID_COMMUNITY?)"},
		{"P2PGRID_COMUNITY", env, true, ` (did you mean "P2PGRID_COMMUNITY"?)`},
		{"p2pgrid_gateway", env, false, " (did you mean P2PGRID_GATEWAY?)"},
		{"P2PGRID_LOG_LEVEL", env, false, ""},
		// Two edits are a typo in a long name, too many in a short one.
		{"inetrval", []string{"interval"}, true, ` (did you mean "interval"?)`},
		{"ab", []string{"xy"}, true, ""},
		{"x", nil, true, ""},
	} {
		if got := DidYouMean(c.got, c.cands, c.quote); got != c.want {
			t.Errorf("DidYouMean(%q) = %q, want %q", c.got, got, c.want)
		}
	}
}
