//go:build unix

package operator

import (
	"io/fs"
	"os"
	"syscall"
)

// keepGroup gives path the group of the file it replaced (old), so that
// a file an operator made readable to Mosquitto's group stays so.
func keepGroup(path string, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(path, -1, int(st.Gid)); err != nil && !os.IsPermission(err) {
		return err
	}
	return nil
}
