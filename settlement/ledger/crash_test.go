package ledger

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashDirEnv tells TestCrashChild, run as a child process, which ledger
// to append to.
const crashDirEnv = "P2PGRID_LEDGER_CRASH_DIR"

func crashKey(i int) string { return fmt.Sprintf("k%07d", i) }

// TestCrashChild is TestCrash's child process: it appends keys k0000000,
// k0000001, ... skipping those the ledger already has, in batches of 1-4,
// and prints "ack SEQ KEY" for every acknowledged record, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCrash; runs only with " + crashDirEnv + " set")
	}
	l, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	next := 0
	for range 100_000 {
		var batch []Entry
		for n := 1 + rng.IntN(4); len(batch) < n; next++ {
			if k := crashKey(next); !l.Has("crash", k) {
				pad := rng.IntN(300)
				batch = append(batch, Entry{Kind: "crash", Key: k, Time: time.Now(),
					Data: fmt.Appendf(nil, `{"pid":%d,"pad":"%s"}`, os.Getpid(), strings.Repeat("x", pad))})
			}
		}
		recs, err := l.Append(batch...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		var out []byte
		for _, r := range recs {
			out = fmt.Appendf(out, "ack %d %s\n", r.Seq, r.Key)
		}
		os.Stdout.Write(out) // one write: a kill cuts between acks, not inside one
	}
	fmt.Fprintln(os.Stderr, "child: finished without being killed")
	os.Exit(4)
}

// TestCrash SIGKILLs a child process appending to a ledger at random
// moments, several times, and checks after each round that the ledger
// opens, every acknowledged record is there exactly once under the seq it
// was acknowledged with, nothing is duplicated or missing in between, and
// appending continues the chain.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: a few seconds of child processes")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	acked := map[uint64]string{}
	const rounds = 12
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			lines []string
			first = make(chan struct{})
			done  = make(chan struct{})
		)
		go func() {
			defer close(done)
			br := bufio.NewReader(stdout)
			for {
				s, err := br.ReadString('\n')
				if err != nil { // a partial last line cannot be an ack
					io.Copy(io.Discard, br)
					return
				}
				mu.Lock()
				if len(lines) == 0 {
					close(first)
				}
				lines = append(lines, s)
				mu.Unlock()
			}
		}()
		// Mostly let it run a little after its first ack; sometimes kill
		// it while it is still starting (and repairing).
		if round%4 != 3 {
			select {
			case <-first:
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: no ack within 5 s; child stderr: %s", round, stderr.String())
			}
		}
		time.Sleep(time.Duration(rng.IntN(200_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended on its own (%v): %s", round, err, stderr.String())
		}
		n := 0
		for _, s := range lines {
			f := strings.Fields(s)
			if len(f) != 3 || f[0] != "ack" {
				continue // the test framework's own output
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("round %d: bad ack line %q", round, s)
			}
			if k, ok := acked[seq]; ok && k != f[2] {
				t.Fatalf("round %d: seq %d acknowledged as %s, earlier as %s", round, seq, f[2], k)
			}
			acked[seq] = f[2]
			n++
		}
		records := checkCrashLedger(t, dir, acked)
		torn, _ := filepath.Glob(filepath.Join(dir, "ledger.torn-*"))
		t.Logf("round %d: %d acks, %d acked in all, %d records, %d torn tails cut so far", round, n, len(acked), records, len(torn))
	}
	if len(acked) < 50 {
		t.Fatalf("only %d records acknowledged over %d rounds: the test did not exercise much", len(acked), rounds)
	}

	l := mustOpen(t, dir)
	defer l.Close()
	last := l.Last()
	prev, err := l.Read(last, 1)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.Append(Entry{Kind: "crash", Key: "after", Time: time.Now(), Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq != last+1 || recs[0].Prev != prev[0].Hash {
		t.Fatalf("append after the crashes: seq %d prev %s, want %d after %s", recs[0].Seq, recs[0].Prev, last+1, prev[0].Hash)
	}
}

// checkCrashLedger: the ledger verifies (after Open's repair), holds keys
// k0000000... in order with no gap or repeat, and every ack is in it.
func checkCrashLedger(t *testing.T, dir string, acked map[uint64]string) int {
	t.Helper()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	recs, err := l.Read(1, int(l.Last())+1)
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Verify(dir); err != nil || n != uint64(len(recs)) {
		t.Fatalf("Verify after Open = %d, %v; want %d", n, err, len(recs))
	}
	for i, r := range recs {
		if r.Key != crashKey(i) {
			t.Fatalf("record %d has key %s, want %s: a key lost or repeated", r.Seq, r.Key, crashKey(i))
		}
	}
	for seq, key := range acked {
		if seq > uint64(len(recs)) || recs[seq-1].Key != key {
			t.Fatalf("acknowledged record %d (%s) is not in the ledger of %d records", seq, key, len(recs))
		}
	}
	return len(recs)
}
