package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock file in a gateway's data directory: a
// running gateway holds an exclusive flock on it, and it holds its pid.
const LockFile = "gateway.lock"

// ErrDataDirInUse is wrapped by Run's error when another gateway (another
// process, or another Run in this one) runs on the same data directory.
var ErrDataDirInUse = errors.New("in use by another gateway")

// lockDataDir creates dataDir (mode 0700) if need be and takes the
// exclusive lock on its LockFile, refusing with ErrDataDirInUse, and the
// holder's pid if it is known, when another gateway holds it. unlock
// releases it.
//
// Two gateways on one data directory would share a key, so a client id and
// a ledger: the second one's MQTT connection would take over the first
// one's session (and fire its will). Run takes the lock before anything
// that touches the network, and before the ledger's own lock.
func lockDataDir(dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: lock: %w", dataDir, err)
	}
	held, err := flock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s: lock %s: %w", dataDir, path, err)
	}
	if held {
		holder := "pid unknown"
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				holder = "pid " + strconv.Itoa(pid)
			}
		}
		f.Close()
		return nil, fmt.Errorf("data directory %s: %w (%s holds %s); one gateway per data directory", dataDir, ErrDataDirInUse, holder, path)
	}
	// Ours: say who holds it, for the next one to ask.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
