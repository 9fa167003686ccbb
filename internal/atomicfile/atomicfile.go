// Package atomicfile writes a whole file so that a crash or a power cut
// leaves either what was there before or the new contents, never a torn
// file: the data goes to a temporary file in the same directory, which is
// fsynced, then put in place (renamed, or for WriteNew hard-linked), and
// the directory is fsynced so that the new entry is durable.
//
// It is the one way p2pgrid writes such a file (keys, certificates, the
// gateway's saved state). It knows nothing of what the files hold, and it
// creates no directories: that, and naming the file in an error, is the
// caller's.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data to path with mode perm, replacing any file there.
func Write(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// WriteNew writes data to path with mode perm, and never replaces a file:
// if path exists, it writes nothing and the error wraps fs.ErrExist. Of
// two processes racing to create path, one wins and the other gets
// fs.ErrExist.
func WriteNew(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, linkNew)
}

// write writes a temporary file beside path, puts it in place with
// install, and syncs the directory.
func write(path string, data []byte, perm fs.FileMode, install func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a rename: nothing there; after a link: the spare name
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := install(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync() // make the new directory entry durable
}

// linkNew puts tmp in place at path unless path exists. A hard link fails
// if path exists, where a rename would replace it; it renames only where
// the file system has no hard links, after checking that path is free.
func linkNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(path); serr == nil {
		return &fs.PathError{Op: "link", Path: path, Err: fs.ErrExist}
	}
	return os.Rename(tmp, path)
}
