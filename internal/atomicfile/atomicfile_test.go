package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// onlyFiles fails the test unless dir holds exactly the names want: no
// temporary file is left behind.
func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func checkFile(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s holds %q, want %q", path, got, data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %#o, want %#o", path, fi.Mode().Perm(), perm)
	}
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("old"), 0o600)
	if err := Write(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("new"), 0o644)
	onlyFiles(t, dir, "state.json")
}

func TestWriteNewCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.crt")
	if err := WriteNew(path, []byte("cert"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("cert"), 0o644)
	onlyFiles(t, dir, "ca.crt")
}

func TestWriteNewNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.key")
	if err := os.WriteFile(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteNew(path, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteNew over an existing file: %v, want fs.ErrExist", err)
	}
	checkFile(t, path, []byte("first"), 0o600)
	onlyFiles(t, dir, "gateway.key")
}

// Of writers racing to create one file, exactly one wins, and the file
// holds what the winner wrote.
func TestWriteNewRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.key")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = WriteNew(path, []byte{byte('a' + i)}, 0o600)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created %s", winner, i, path)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want nil or fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the file")
	}
	checkFile(t, path, []byte{byte('a' + winner)}, 0o600)
	onlyFiles(t, dir, "gateway.key")
}

// A directory that is not there: both fail, and the error names it.
func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "state.json")
	for name, write := range map[string]func(string, []byte, fs.FileMode) error{"Write": Write, "WriteNew": WriteNew} {
		err := write(path, []byte("x"), 0o600)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s into a missing directory: %v, want fs.ErrNotExist", name, err)
		}
		if err != nil && !bytes.Contains([]byte(err.Error()), []byte("absent")) {
			t.Errorf("%s: %q does not name the directory", name, err)
		}
	}
}

// A directory the process may not write to (root may write anywhere, so
// this runs only as another user).
func TestUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to any directory")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	path := filepath.Join(dir, "state.json")
	for name, write := range map[string]func(string, []byte, fs.FileMode) error{"Write": Write, "WriteNew": WriteNew} {
		if err := write(path, []byte("x"), 0o600); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s into a read-only directory: %v, want fs.ErrPermission", name, err)
		}
	}
	onlyFiles(t, dir)
}

// A failure after the temporary file is written (here: a non-empty
// directory where the file should go) leaves that directory alone and no
// temporary file behind.
func TestWriteFailsToInstall(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("x"), 0o600); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	if err := WriteNew(path, []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteNew over a directory: %v, want fs.ErrExist", err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("%s is no longer the directory: %v", path, err)
	}
	onlyFiles(t, dir, "state.json")
}
