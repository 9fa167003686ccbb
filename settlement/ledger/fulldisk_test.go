package ledger

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// A full disk: an append that fails for want of space leaves no torn line
// behind (the file is cut back to its last record at once, so the ledger
// verifies while the gateway keeps running), and once there is room again
// the same Ledger appends again without a restart. The fault suite
// (cmd/p2pgrid TestFaults) found a torn line left until the next start,
// and every append refused ("reopen it") after the space came back.
func TestFullDisk(t *testing.T) {
	testtool.Integration(t)
	dir := filepath.Join(t.TempDir(), "fs")
	os.MkdirAll(dir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("this test needs a small filesystem: mount -t tmpfs -o size=256k failed (%v: %s); run as root or with CAP_SYS_ADMIN", err, bytes.TrimSpace(out))
	}
	defer exec.Command("umount", "-l", dir).Run()
	l, err := Open(filepath.Join(dir, "ledger"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	entry := func(k string) Entry {
		return Entry{Kind: "trade", Key: k, Time: time.Unix(0, 0), Data: []byte(`{"pad":"` + strings.Repeat("x", 3000) + `"}`)}
	}
	if _, err := l.Append(entry("first")); err != nil {
		t.Fatal(err)
	}
	// Fill what is left, then an append cannot fit.
	filler := filepath.Join(dir, "filler")
	fh, _ := os.Create(filler)
	for {
		if _, err := fh.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	fh.Close()
	if _, err := l.Append(entry("second"), entry("third")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	if _, err := Verify(filepath.Join(dir, "ledger")); err != nil {
		t.Errorf("after the failed append the ledger does not verify: %v", err)
	}
	os.Remove(filler)
	if _, err := l.Append(entry("second")); err != nil {
		t.Fatalf("append once there is room again: %v", err)
	}
	if !l.Has("trade", "second") || l.Has("trade", "third") || l.Last() != 2 {
		t.Errorf("after recovery: last %d, has second %v, has third %v", l.Last(), l.Has("trade", "second"), l.Has("trade", "third"))
	}
	if _, err := Verify(filepath.Join(dir, "ledger")); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}
