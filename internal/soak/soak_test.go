package soak_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/soak"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// The clearer runs in a process of its own: this test binary, started
// again with P2PGRID_SOAK_CLEARER set (see startClearer).
func TestMain(m *testing.M) {
	if os.Getenv("P2PGRID_SOAK_CLEARER") == "1" {
		homes, _ := strconv.Atoi(os.Getenv("P2PGRID_SOAK_HOMES"))
		if err := soak.ServeClearer(os.Getenv("P2PGRID_SOAK_BROKER"), homes, os.Getenv("P2PGRID_SOAK_DIR"), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "soak clearer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startBroker starts Mosquitto with the shipped ACL and a login for every
// home and the clearer.
func startBroker(t *testing.T, homes int) *mqtttest.Mosquitto {
	users := map[string]string{soak.ClearerID: soak.Password(soak.ClearerID)}
	for i := range homes {
		users[soak.HomeID(i)] = soak.Password(soak.HomeID(i))
	}
	return mqtttest.Start(t, mqtttest.Config{ACLFile: mqtttest.ShippedACL(t), Users: users})
}

// startClearer starts the primary clearer's process.
func startClearer(t *testing.T, broker string, homes int) soak.Clearer {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "P2PGRID_SOAK_CLEARER=1", "P2PGRID_SOAK_BROKER="+broker,
		"P2PGRID_SOAK_HOMES="+strconv.Itoa(homes), "P2PGRID_SOAK_DIR="+t.TempDir())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("soak clearer: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("soak clearer did not exit")
		}
	})
	c, err := soak.NewPipeClearer(in, out)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runSoak runs a soak of homes gateways for intervals and checks what must
// hold whatever the machine: every home verified every interval without a
// failure, placed an order for it, and recorded every settlement; the
// result reached every home; and memory did not grow beyond a bound.
func runSoak(t *testing.T, homes, intervals int) *soak.Report {
	testtool.Integration(t)
	b := startBroker(t, homes)
	rep, err := soak.Run(soak.Options{Broker: b.URL, Homes: homes, Intervals: intervals, Dir: t.TempDir(),
		Clearer: startClearer(t, b.URL, homes), Progress: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Intervals) != intervals {
		t.Fatalf("%d intervals traded, want %d", len(rep.Intervals), intervals)
	}
	for k, iv := range rep.Intervals {
		if iv.Orders != homes {
			t.Errorf("%s: %d orders, want one from each of %d homes", iv.ID, iv.Orders, homes)
		}
		for id, err := range iv.Failed {
			t.Errorf("%s: %s did not verify: %v", iv.ID, id, err)
		}
		if len(iv.ToResult) != homes || iv.ToResult[0] <= 0 || iv.ToVerified[0] < iv.ToResult[0] {
			t.Errorf("%s: gate closure to result %v, to verified %v: a result did not reach every home", iv.ID, iv.ToResult, iv.ToVerified)
		}
		if k >= 2 && iv.Settled != homes {
			t.Errorf("%s: %d homes recorded the settlement before, want %d", iv.ID, iv.Settled, homes)
		}
	}
	first, last := rep.Samples[0], rep.Samples[len(rep.Samples)-1]
	// A home's ledger keeps an index of its records in memory (a key and
	// an offset each): allow 512 B per record added, and 256 KiB besides.
	perHome := last.HeapPerHome(homes) - min(last.HeapPerHome(homes), first.HeapPerHome(homes))
	if allow := 512*(last.LedgerRecords-first.LedgerRecords) + 256<<10; perHome > allow {
		t.Errorf("heap per home grew by %d B from interval %d to %d (%d ledger records added), more than %d B",
			perHome, first.Interval, last.Interval, last.LedgerRecords-first.LedgerRecords, allow)
	}
	if last.Clearer.HeapInuse > first.Clearer.HeapInuse+first.Clearer.HeapInuse/2+4<<20 {
		t.Errorf("clearer heap grew from %s to %s", soak.MiB(first.Clearer.HeapInuse), soak.MiB(last.Clearer.HeapInuse))
	}
	return rep
}

// TestSoakShort keeps the soak code from rotting: 20 homes, 5 intervals.
// `make soak` runs the long one (soak_long_test.go).
func TestSoakShort(t *testing.T) {
	runSoak(t, 20, 5)
}
