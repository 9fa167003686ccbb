package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that keeps the errors Check reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }

func TestCheck(t *testing.T) {
	if Update() {
		t.Skip("Check's own test does not run under -update")
	}
	path := filepath.Join(t.TempDir(), "want.json")
	if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	if got := Check(r, path, []byte("{}\n")); string(got) != "{}\n" || len(r.errs) != 0 {
		t.Errorf("equal bytes: returned %q, errors %q", got, r.errs)
	}
	r = &recorder{TB: t}
	Check(r, path, []byte("[]\n"))
	if len(r.errs) != 1 {
		t.Errorf("different bytes: errors %q, want one", r.errs)
	}
	r = &recorder{TB: t}
	Check(r, filepath.Join(t.TempDir(), "missing.json"), []byte("{}\n"))
	if len(r.errs) == 0 {
		t.Error("a missing golden file is not reported")
	}
}

func TestCases(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b/book.json", "a/book.json", "a/result.json", "fuzz/FuzzX/seed", "c/result.json", "book.json"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{TB: t}
	if got := Cases(r, dir, "book.json", 2); fmt.Sprint(got) != "[a b]" || len(r.errs) != 0 {
		t.Errorf("Cases: %q, errors %q; want [a b], none", got, r.errs)
	}
	r = &recorder{TB: t}
	Cases(r, dir, "book.json", 3)
	if len(r.errs) != 1 {
		t.Errorf("fewer cases than asked for: errors %q, want one", r.errs)
	}
}
