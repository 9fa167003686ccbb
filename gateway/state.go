package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/p2pgrid/p2pgrid/gateway/settling"
	"github.com/p2pgrid/p2pgrid/internal/atomicfile"
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

// Save replaces the file atomically (a power cut leaves the old counters
// or the new ones, never a torn file), creating its directory.
func (f fileStore) Save(data []byte) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(f.path, data, 0o600)
}
