package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/p2pgrid/p2pgrid/gateway/settling"
)

// BoundariesFile is the file in the gateway's state directory that keeps
// the grid meter's counters at interval boundaries across restarts.
const BoundariesFile = "boundaries.json"

// loadBoundaries loads the boundary counters kept in path ("" for none);
// an error names the file, and the counters then start empty.
func loadBoundaries(path string) (*settling.Boundaries, error) {
	if path == "" {
		return settling.NewBoundaries(nil)
	}
	b, err := settling.NewBoundaries(fileStore{path})
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return b, err
}

// fileStore is a settling.Store in one file, replaced atomically.
type fileStore struct{ path string }

var _ settling.Store = fileStore{}

func (f fileStore) Load() ([]byte, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

func (f fileStore) Save(data []byte) error { return writeFileAtomic(f.path, data) }

// writeFileAtomic writes path atomically: a temporary file, synced,
// renamed over the old one, and the directory synced, so that a power cut
// leaves the old file or the new one, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
