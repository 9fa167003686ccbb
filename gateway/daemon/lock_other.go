//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package daemon

import "os"

// flock is a no-op where flock is not available: one gateway per data
// directory is then the operator's promise.
func flock(*os.File) (held bool, err error) { return false, nil }
