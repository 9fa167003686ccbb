package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cursor returns the named sink cursor (the last seq a sink such as
// "influx" has taken), stored in dir/cursor-NAME; 0 if it was never set.
// Names are 1-64 of a-z, 0-9, _ and -.
func (l *Ledger) Cursor(name string) (uint64, error) {
	path, err := l.cursorPath(name)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger cursor %q: %w", name, err)
	}
	seq, err := strconv.ParseUint(strings.TrimSuffix(string(b), "\n"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ledger cursor %q: %s holds %q, not a sequence number", name, path, b)
	}
	return seq, nil
}

// SetCursor stores the named cursor atomically and durably: a temporary
// file, fsync, rename over cursor-NAME, fsync of the directory. seq may
// not be past Last.
func (l *Ledger) SetCursor(name string, seq uint64) error {
	path, err := l.cursorPath(name)
	if err != nil {
		return err
	}
	if last := l.Last(); seq > last {
		return fmt.Errorf("ledger cursor %q: seq %d is past the last record %d", name, seq, last)
	}
	l.cursorMu.Lock()
	defer l.cursorMu.Unlock()
	t, err := os.CreateTemp(l.dir, "cursor-"+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("ledger cursor %q: %w", name, err)
	}
	_, err = t.Write(strconv.AppendUint(nil, seq, 10))
	if err == nil {
		_, err = t.WriteString("\n")
	}
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.Name(), path)
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		os.Remove(t.Name())
		return fmt.Errorf("ledger cursor %q: %w", name, err)
	}
	return nil
}

func (l *Ledger) cursorPath(name string) (string, error) {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return "", ErrClosed
	}
	ok := len(name) >= 1 && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return "", fmt.Errorf("ledger cursor %q: want a name of 1-64 characters of a-z, 0-9, _ and -", name)
	}
	return filepath.Join(l.dir, "cursor-"+name), nil
}
