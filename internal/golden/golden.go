// Package golden is the one golden-file harness of p2pgrid's tests: a single
// -update flag for every test binary that imports it; Cases, which finds
// the case folders (testdata/<case>/ holding a marker file, such as
// book.json); and Check, which compares what the code produces with the
// file under testdata or, under -update, rewrites the file first so that
// the diff can be reviewed.
//
// It is for tests only and knows nothing of what the files hold.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the code produces")

// Update reports whether the test binary runs with -update.
func Update() bool { return *update }

// Cases returns the names of the folders in dir that hold a file named
// marker, sorted: a test's golden cases (other folders, such as fuzz
// corpora, are not). It fails the test if there are fewer than least: a
// folder renamed or moved must not make a golden test pass by testing
// nothing.
func Cases(t testing.TB, dir, marker string, least int) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries { // ReadDir sorts by name
		if _, err := os.Stat(filepath.Join(dir, e.Name(), marker)); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) < least {
		t.Fatalf("only %d golden cases (folders with a %s) under %s, want at least %d", len(names), marker, dir, least)
	}
	return names
}

// Check compares got with the file at path and reports a difference as a
// test error. Under -update it first writes got to path (creating the
// folder). It returns what the file holds, nil if it cannot be read.
func Check(t testing.TB, path string, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update and review the diff)\n got: %s\nwant: %s", path, got, want)
	}
	return want
}
