package market

import (
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The timetable of docs/gateway.md ("A delivery interval, step by step"),
// for the defaults and for two other lengths.
func TestCalendar(t *testing.T) {
	for _, tc := range []struct {
		name string
		cal  Calendar
		now  string // a moment in the interval before delivery
		want map[string]string
	}{
		{"15 minutes, the defaults", Calendar{15 * time.Minute, 2 * time.Minute, 30 * time.Second}, "2026-11-22T12:07:00Z", map[string]string{
			"start": "2026-11-22T12:00:00Z", "open": "2026-11-22T12:15:00Z", "gate": "2026-11-22T12:13:00Z",
			"order": "2026-11-22T12:06:30Z", "seal primary": "2026-11-22T12:13:00Z", "seal standby": "2026-11-22T12:13:30Z",
			"result overdue": "2026-11-22T12:14:00Z", "end": "2026-11-22T12:30:00Z",
			"settle primary": "2026-11-22T12:32:00Z", "settle standby": "2026-11-22T12:32:30Z", "settlement overdue": "2026-11-22T12:33:00Z",
			"retire": "2026-11-21T12:15:00Z", "keep from": "2026-11-22T11:00:00Z", "keep to": "2026-11-22T12:30:00Z",
		}},
		{"1 hour", Calendar{time.Hour, 5 * time.Minute, time.Minute}, "2026-11-22T12:59:59Z", map[string]string{
			"start": "2026-11-22T12:00:00Z", "open": "2026-11-22T13:00:00Z", "gate": "2026-11-22T12:55:00Z",
			"order": "2026-11-22T12:27:30Z", "seal primary": "2026-11-22T12:55:00Z", "seal standby": "2026-11-22T12:56:00Z",
			"result overdue": "2026-11-22T12:57:00Z", "end": "2026-11-22T14:00:00Z",
			"settle primary": "2026-11-22T14:05:00Z", "settle standby": "2026-11-22T14:06:00Z", "settlement overdue": "2026-11-22T14:07:00Z",
			// A day of retained messages: 24 intervals, not 96.
			"retire": "2026-11-21T13:00:00Z", "keep from": "2026-11-22T08:00:00Z", "keep to": "2026-11-22T14:00:00Z",
		}},
		{"1 minute", Calendar{time.Minute, 10 * time.Second, 5 * time.Second}, "2026-11-22T12:00:30Z", map[string]string{
			"start": "2026-11-22T12:00:00Z", "open": "2026-11-22T12:01:00Z", "gate": "2026-11-22T12:00:50Z",
			"order": "2026-11-22T12:00:25Z", "seal primary": "2026-11-22T12:00:50Z", "seal standby": "2026-11-22T12:00:55Z",
			"result overdue": "2026-11-22T12:01:00Z", "end": "2026-11-22T12:02:00Z",
			"settle primary": "2026-11-22T12:02:10Z", "settle standby": "2026-11-22T12:02:15Z", "settlement overdue": "2026-11-22T12:02:20Z",
			// A day, not 96 minutes.
			"retire": "2026-11-21T12:01:00Z", "keep from": "2026-11-22T11:56:00Z", "keep to": "2026-11-22T12:02:00Z",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, now := tc.cal, at(tc.now)
			d := c.Open(now)
			from, to := c.Window(now)
			got := map[string]time.Time{
				"start": c.Start(now), "open": d, "gate": c.GateClose(d), "order": c.OrderAt(d),
				"seal primary": c.SealAt(d, false), "seal standby": c.SealAt(d, true), "result overdue": c.ResultOverdue(d),
				"end": c.End(d), "settle primary": c.SettleAt(d, false), "settle standby": c.SettleAt(d, true),
				"settlement overdue": c.SettlementOverdue(d), "retire": c.Retire(d), "keep from": from, "keep to": to,
			}
			for k, want := range tc.want {
				if !got[k].Equal(at(want)) {
					t.Errorf("%s: %s, want %s", k, got[k].Format(time.RFC3339), want)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d figures checked, %d computed", len(tc.want), len(got))
			}
			// The settlement due at the primary's settle time is this delivery.
			if due := c.SettleDue(c.SettleAt(d, false)); !due.Equal(d) {
				t.Errorf("SettleDue at the primary's settle time: %s, want %s", due, d)
			}
			// Just before gate closure the last closed gate is the one before.
			if lc := c.LastClosed(c.GateClose(d).Add(-time.Second)); !lc.Equal(d.Add(-c.Interval)) {
				t.Errorf("LastClosed before the gate: %s", lc)
			}
			if lc := c.LastClosed(c.GateClose(d)); !lc.Equal(d) {
				t.Errorf("LastClosed at the gate: %s", lc)
			}
		})
	}
}

func TestAlignedAndEpoch(t *testing.T) {
	start := at("2026-11-22T12:15:00Z")
	if id := IntervalID(start); id != "2026-11-22T12:15Z" {
		t.Fatalf("IntervalID %q", id)
	}
	if got, err := ParseInterval("2026-11-22T12:15Z"); err != nil || !got.Equal(start) {
		t.Fatalf("ParseInterval: %v %v", got, err)
	}
	for _, bad := range []string{"", "2026-11-22T12:15:00Z", "2026-11-22T12:15+01:00", "2026-11-22 12:15Z", "2026-11-22T24:00Z"} {
		if _, err := ParseInterval(bad); err == nil {
			t.Errorf("ParseInterval(%q) accepted", bad)
		}
	}
	c := Calendar{Interval: 15 * time.Minute}
	if c.Aligned(at("2026-11-22T12:16:00Z")) || !c.Aligned(start) {
		t.Error("Aligned")
	}
	if s := IntervalStart(at("1969-12-31T23:59:59Z"), 15*time.Minute); !s.Equal(at("1969-12-31T23:45:00Z")) {
		t.Errorf("IntervalStart before the epoch: %s", s)
	}
	if err := CheckIntervalLength(90 * time.Second); err == nil {
		t.Error("90s accepted")
	}
}

func TestIntervalIDs(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	start := time.Date(2026, 11, 22, 13, 15, 0, 0, paris) // 12:15 UTC
	if id := IntervalID(start); id != "2026-11-22T12:15Z" {
		t.Fatalf("IntervalID = %q, want %q", id, "2026-11-22T12:15Z")
	}
	got, err := ParseInterval("2026-11-22T12:15Z")
	if err != nil || !got.Equal(start) || got.Location() != time.UTC {
		t.Fatalf("ParseInterval = %v, %v; want %v in UTC", got, err, start)
	}
	for _, bad := range []string{
		"", "latest", "2026-11-22T12:15:00Z", "2026-11-22T12:15", "2026-11-22 12:15Z",
		"2026-11-22T12:15+01:00", "2026-11-22t12:15z", "2026-1-22T12:15Z", "2026-11-31T12:15Z",
		"2026-11-22T24:00Z", " 2026-11-22T12:15Z", "+2026-11-22T12:15Z",
	} {
		if _, err := ParseInterval(bad); err == nil {
			t.Errorf("ParseInterval(%q) accepted", bad)
		}
	}
}

func TestIntervalStart(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		t      string
		length time.Duration
		want   string
	}{
		{"2026-11-22T12:15:00Z", 15 * time.Minute, "2026-11-22T12:15:00Z"},
		{"2026-11-22T12:29:59.999999999Z", 15 * time.Minute, "2026-11-22T12:15:00Z"},
		{"2026-11-22T12:30:00Z", 15 * time.Minute, "2026-11-22T12:30:00Z"},
		{"2026-11-22T13:44:00+01:00", 15 * time.Minute, "2026-11-22T12:30:00Z"},
		{"2026-11-22T00:10:00Z", time.Hour, "2026-11-22T00:00:00Z"},
		{"1969-12-31T23:59:30Z", 15 * time.Minute, "1969-12-31T23:45:00Z"},
		// 7 minutes does not divide a day: aligned to the Unix epoch, not
		// to midnight (nor, as time.Truncate would, to year 1).
		{"2026-11-22T00:03:00Z", 7 * time.Minute, "2026-11-21T23:59:00Z"}, // Truncate: 23:58
	} {
		got := IntervalStart(utc(tc.t), tc.length)
		if !got.Equal(utc(tc.want)) || got.Location() != time.UTC {
			t.Errorf("IntervalStart(%s, %v) = %v, want %s", tc.t, tc.length, got, tc.want)
		}
		if got.Unix()%int64(tc.length/time.Second) != 0 {
			t.Errorf("IntervalStart(%s, %v) = %v is not aligned to the epoch", tc.t, tc.length, got)
		}
	}
	for _, bad := range []time.Duration{0, -15 * time.Minute, 90 * time.Second, time.Nanosecond} {
		if CheckIntervalLength(bad) == nil {
			t.Errorf("CheckIntervalLength(%v) accepted", bad)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("IntervalStart(_, %v) did not panic", bad)
				}
			}()
			IntervalStart(time.Now(), bad)
		}()
	}
	if err := CheckIntervalLength(15 * time.Minute); err != nil {
		t.Error(err)
	}
}

func TestParseIntervalLoose(t *testing.T) {
	start := time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
	for _, name := range []string{"2026-11-22T12:15Z", "2026-11-22T12:15:00Z", "2026-11-22T13:15+01:00", "2026-11-22T12:15:00.000Z"} {
		if got, err := ParseIntervalLoose(name); err != nil || !got.Equal(start) {
			t.Errorf("ParseIntervalLoose(%q) = %v, %v; want %v", name, got, err, start)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-11-22", "2026-11-22T12Z"} {
		if _, err := ParseIntervalLoose(bad); err == nil {
			t.Errorf("ParseIntervalLoose(%q) accepted it", bad)
		}
	}
}

// TestRecall: a gateway remembers its records for longer than any
// interval stays in its window (from the window's first interval's start
// to the end of its last), at every interval length.
func TestRecall(t *testing.T) {
	now := at("2026-11-22T12:07:00Z")
	for _, iv := range []time.Duration{time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		c := Calendar{Interval: iv, GateClosure: iv / 10, Grace: iv / 20}
		from, to := c.Window(now)
		if span := c.End(to).Sub(from); c.Recall() < span {
			t.Errorf("interval %v: Recall %v, want at least %v (the window)", iv, c.Recall(), span)
		}
	}
}
