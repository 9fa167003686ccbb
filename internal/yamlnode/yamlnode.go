// Package yamlnode holds the strict rules p2pgrid reads YAML mappings by,
// so that the gateway's config and the device profiles reject the same
// things with the same words: a key that is not a plain name, a merge key
// (<<), a key given twice, and an unknown key (with "did you mean" when
// the key is close to a known one). Every fault carries the line of its
// key.
//
// It walks go.yaml.in/yaml/v3 node trees and knows nothing of what the
// keys mean or what their values must be: that is the caller's.
package yamlnode

import (
	"fmt"
	"iter"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a fault at one line of a YAML document.
type Error struct {
	Line int
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

func errorAt(line int, format string, args ...any) *Error {
	return &Error{Line: line, Err: fmt.Errorf(format, args...)}
}

// Entry is one key of a mapping and its value, as written (an alias is
// not followed: Deref it).
type Entry struct {
	Key   string
	Line  int // of the key
	Value *yaml.Node
}

// Entries walks the mapping n in file order. For each key it yields
// either the entry, when the key is a known one seen for the first time,
// or an *Error saying what is wrong with the key; the walk goes on after
// an error until the caller stops it.
func Entries(n *yaml.Node, known []string) iter.Seq2[Entry, *Error] {
	return func(yield func(Entry, *Error) bool) {
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var err *Error
			switch first, dup := seen[k.Value]; {
			case k.Kind != yaml.ScalarNode:
				err = errorAt(k.Line, "a key must be a plain name, not %s", Describe(k))
			case k.ShortTag() == "!!merge":
				err = errorAt(k.Line, "merge keys (<<) are not supported")
			case dup:
				err = errorAt(k.Line, "key %q given twice (first at line %d)", k.Value, first)
			default:
				seen[k.Value] = k.Line
				if !slices.Contains(known, k.Value) {
					err = errorAt(k.Line, "unknown key %q%s", k.Value, DidYouMean(k.Value, known, true))
				}
			}
			var e Entry
			if err == nil {
				e = Entry{Key: k.Value, Line: k.Line, Value: v}
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// Mapping returns the values of the mapping n by key, aliases followed,
// or the first fault Entries finds.
func Mapping(n *yaml.Node, known []string) (map[string]*yaml.Node, error) {
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for e, err := range Entries(n, known) {
		if err != nil {
			return nil, err
		}
		out[e.Key] = Deref(e.Value)
	}
	return out, nil
}

// Deref follows YAML aliases (*name) to the node they stand for.
func Deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// Describe names what a node is, for "want X, not Y": a mapping, a list,
// an alias, or a scalar's text, quoted and cut at 40 bytes.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if len(n.Value) > 40 {
			return fmt.Sprintf("%q...", n.Value[:40])
		}
		return fmt.Sprintf("%q", n.Value)
	default:
		return "an alias"
	}
}

// DidYouMean returns ` (did you mean "x"?)` (unquoted when quote is false)
// for the candidate closest to got, ignoring case, when it is close enough
// to be a typo, and "" otherwise.
func DidYouMean(got string, candidates []string, quote bool) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(got), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist*3 > len(best) {
		return ""
	}
	if quote {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
