//go:build unix

package operator

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// add-app and add rewrite the password file and the acl keeping the mode
// and group the operator gave them, so Mosquitto's group can still read
// them after a reload.
func TestRewriteKeepsModeAndGroup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	if _, err := Init(dir, "c1", "broker.lan", time.Now()); err != nil {
		t.Fatal(err)
	}
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 4242 // root may give a file any group
	}
	files := []string{filepath.Join(dir, MosquittoDir, "passwd"), filepath.Join(dir, MosquittoDir, "acl")}
	for _, f := range files {
		if err := os.Chmod(f, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, -1, gid); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddHome("home-1", pub, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AddApp("home-1", ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(fi.Sys().(*syscall.Stat_t).Gid); fi.Mode().Perm() != 0o640 || got != gid {
			t.Errorf("%s: mode %#o group %d, want 0640 and %d", f, fi.Mode().Perm(), got, gid)
		}
	}
}
