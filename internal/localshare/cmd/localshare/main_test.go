package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags are refused, naming the flag.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--days", "autumn"}, `--days: "autumn" is neither`},
		{[]string{"--homes", "1"}, "--homes: 1 is outside 2-123"},
		{[]string{"--seeds", "x"}, `--seeds: "x" is not a whole number`},
		{[]string{"--safety-factor", "lots"}, `--safety-factor: "lots" is not a decimal`},
		{[]string{"--zone", "Mars/Olympus"}, "--zone"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var out, progress bytes.Buffer
		err := run(context.Background(), c.args, &out, &progress)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

// A what-if reaches the gateways: a minimum trade larger than any home's
// surplus or deficit leaves no order placed, so no auction trade and no
// shortfall compensation (the post-delivery market still trades what the
// meters counted, at the grid's prices), and the orders' error differs
// from the shipped configuration's.
func TestWhatIfReachesTheGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two simulated days")
	}
	table := func(args ...string) string {
		var out, progress bytes.Buffer
		if err := run(context.Background(), append([]string{"--days", "spring", "--homes", "6", "--seeds", "1"}, args...), &out, &progress); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(progress.String(), "localshare: 1/1 spring 6 homes seed 1: local share ") {
			t.Errorf("progress:\n%s", progress.String())
		}
		return out.String()
	}
	shipped, none := table(), table("--min-trade-kwh", "1000")
	for _, s := range []string{shipped, none} {
		if lines := strings.Split(strings.TrimSpace(s), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "all seeds") {
			t.Fatalf("want a header, a day and its all-seeds row:\n%s", s)
		}
	}
	n, sh := strings.Fields(strings.Split(none, "\n")[1]), strings.Fields(strings.Split(shipped, "\n")[1])
	if n[11] != "0.0000" || n[12] != "0" {
		t.Errorf("with min_trade_kwh 1000, shortfall compensation %s paid by %s homes, want none:\n%s", n[11], n[12], none)
	}
	if n[13] == sh[13] {
		t.Errorf("with min_trade_kwh 1000 the orders' error is the shipped one's, %s Wh: the what-if did not reach the gateways:\n%s\n%s", n[13], none, shipped)
	}
	if sh[6] == "0.000" {
		t.Errorf("with the shipped configuration nothing traded:\n%s", shipped)
	}
}
