//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ledger

import "os"

// lockFile is a no-op where flock is not available: one process per
// ledger directory is then the operator's promise.
func lockFile(*os.File) error { return nil }
