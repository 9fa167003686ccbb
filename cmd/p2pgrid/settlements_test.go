package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement/influx/influxtest"
)

// The demo with --influx writes the operator's ledger to a real InfluxDB
// 1.8; the statements read back from InfluxDB are the ledger's.
func TestDemoSettlesIntoInfluxDB(t *testing.T) {
	testtool.Integration(t)
	srv := influxtest.Start(t)
	srv.InfluxQL("CREATE DATABASE p2pgrid")
	data := t.TempDir()
	code, out, errOut := runCLI(t, "", "demo", "--homes", "3", "--interval", "1500ms", "--intervals", "3", "--log-level", "error",
		"--data", data, "--influx", srv.URL, "--influx-bucket", "p2pgrid/")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	led := filepath.Join(data, "operator", "ledger")
	code, fromLedger, errOut := runCLI(t, "", "settlements", "--ledger", led, "--format", "csv", "--exact")
	if code != 0 || strings.Count(fromLedger, "\n") < 1+3 {
		t.Fatalf("settlements --ledger: exit %d %q\n%s", code, errOut, fromLedger)
	}
	// The demo's sink drains every few seconds and on its way out; what it
	// wrote before the demo stopped is all the ledger had settled by then.
	code, fromInflux, errOut := runCLI(t, "", "settlements", "--influx", srv.URL, "--bucket", "p2pgrid/", "--format", "csv", "--exact",
		"--from", "2000-01-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("settlements --influx: exit %d %q", code, errOut)
	}
	if fromInflux != fromLedger {
		t.Errorf("InfluxDB's statements differ from the ledger's:\n%s\nledger:\n%s\n%s", fromInflux, fromLedger, srv.Log())
	}
}
