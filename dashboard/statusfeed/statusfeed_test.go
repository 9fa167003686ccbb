package statusfeed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

func status(t *testing.T, gw string, state protocol.State, verified ...protocol.Verification) []byte {
	t.Helper()
	st := protocol.Status{Gateway: gw, State: state, Version: "dev", Time: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), Verified: verified}
	b, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	iv1 = "2026-12-03T11:30Z"
	iv2 = "2026-12-03T11:45Z"
)

// Verdicts accumulate over a gateway's statuses: each names its latest
// intervals, and a later one updates what an earlier one said.
func TestVerdictsAccumulate(t *testing.T) {
	f := New("c1")
	f.Handle("p2pgrid/v1/c1/status/home1", status(t, "home1", protocol.StateOnline, protocol.Verification{Interval: iv1, Clearing: "ok"}))
	f.Handle("p2pgrid/v1/c1/status/home2", status(t, "home2", protocol.StateOnline, protocol.Verification{Interval: iv1, Clearing: "mismatch"}))
	f.Handle("p2pgrid/v1/c1/status/home1", status(t, "home1", protocol.StateOnline,
		protocol.Verification{Interval: iv2, Clearing: "ok"}, protocol.Verification{Interval: iv1, Clearing: "ok", Settlement: "ok"}))
	got := f.Verdicts(iv1)
	if len(got) != 2 || got["home1"].Settlement != "ok" || got["home2"].Clearing != "mismatch" {
		t.Errorf("verdicts of %s: %+v", iv1, got)
	}
	if got := f.Verdicts(iv2); len(got) != 1 || got["home1"].Clearing != "ok" {
		t.Errorf("verdicts of %s: %+v", iv2, got)
	}
	// The last will: offline, no verdicts; what was said stays.
	f.Handle("p2pgrid/v1/c1/status/home2", status(t, "home2", protocol.StateOffline))
	sts := f.Statuses()
	if len(sts) != 2 || sts[0].Gateway != "home1" || sts[1].State != protocol.StateOffline {
		t.Errorf("statuses %+v", sts)
	}
	if got := f.Verdicts(iv1); got["home2"].Clearing != "mismatch" {
		t.Errorf("home2's verdict went with its last will: %+v", got)
	}
	// A cleared retained status forgets the gateway.
	f.Handle("p2pgrid/v1/c1/status/home2", nil)
	if sts := f.Statuses(); len(sts) != 1 {
		t.Errorf("statuses after home2's was cleared: %+v", sts)
	}
	if n, why := f.Rejected(); n != 0 {
		t.Errorf("rejected %d: %s", n, why)
	}
}

// What is not a well-formed status of the topic's gateway, in the feed's
// community, is counted and changes nothing.
func TestRejects(t *testing.T) {
	f := New("c1")
	good := status(t, "home1", protocol.StateOnline, protocol.Verification{Interval: iv1, Clearing: "ok"})
	for _, tc := range []struct{ topic, payload, want string }{
		{"p2pgrid/v1/c1/status/home2", string(good), `the status is "home1"'s`},
		{"p2pgrid/v1/c2/status/home1", string(good), `not a status of community "c1"`},
		{"p2pgrid/v1/c1/orders/home1", string(good), "not a status"},
		{"p2pgrid/v1/c1/status/home1", `{"v":1}`, "status"},
		{"p2pgrid/v1/c1/status/home1", strings.Replace(string(good), `"clearing":"ok"`, `"clearing":"OK!"`, 1), "verified[0]"},
		{"elsewhere", string(good), "status feed"},
	} {
		before, _ := f.Rejected()
		f.Handle(tc.topic, []byte(tc.payload))
		n, why := f.Rejected()
		if n != before+1 || !strings.Contains(why, tc.want) {
			t.Errorf("%s %.60s: rejected %d (was %d), %q; want one more, saying %q", tc.topic, tc.payload, n, before, why, tc.want)
		}
	}
	if sts := f.Statuses(); len(sts) != 0 {
		t.Errorf("statuses after only bad messages: %+v", sts)
	}
	if got := f.Verdicts(iv1); len(got) != 0 {
		t.Errorf("verdicts after only bad messages: %+v", got)
	}
}

// Memory is bounded: the newest KeepIntervals intervals' verdicts, and
// MaxGateways gateways.
func TestBounds(t *testing.T) {
	f := New("c1")
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	id := func(i int) string { return start.Add(time.Duration(i) * 15 * time.Minute).Format("2006-01-02T15:04Z") }
	for i := 0; i < KeepIntervals+50; i++ {
		f.Handle("p2pgrid/v1/c1/status/home1", status(t, "home1", protocol.StateOnline, protocol.Verification{Interval: id(i), Clearing: "ok"}))
	}
	if len(f.verdicts) != KeepIntervals || len(f.Verdicts(id(49))) != 0 || len(f.Verdicts(id(50))) != 1 {
		t.Errorf("%d intervals kept (want %d), the oldest kept %v, the newest dropped %v", len(f.verdicts), KeepIntervals, f.Verdicts(id(50)), f.Verdicts(id(49)))
	}
	for i := 0; i < MaxGateways+1; i++ {
		gw := fmt.Sprintf("g%05d", i)
		f.Handle("p2pgrid/v1/c1/status/"+gw, status(t, gw, protocol.StateOnline))
	}
	if n := len(f.Statuses()); n != MaxGateways {
		t.Errorf("%d gateways followed, want %d", n, MaxGateways)
	}
	if _, why := f.Rejected(); !strings.Contains(why, "already following") {
		t.Errorf("last rejection %q", why)
	}
}
