package protocol

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func rosterOf(t *testing.T, ids ...string) *Roster {
	t.Helper()
	var ms []Member
	for i, id := range ids {
		ms = append(ms, Member{ID: id, PublicKey: testPub(id), Clearer: i == 0})
	}
	r, err := NewRoster("c1", ms)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var rosterT0 = time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)

func signedRoster(t *testing.T, seq uint64, from time.Time, ids ...string) *RosterMsg {
	t.Helper()
	data, err := EncodeRoster(testKey("operator"), rosterOf(t, ids...), seq, from)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := DecodeRoster(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg.Encode(), data) {
		t.Fatalf("Encode after DecodeRoster differs:\n%s\n%s", msg.Encode(), data)
	}
	return msg
}

func TestRosterMsgRoundTripAndVerify(t *testing.T) {
	msg := signedRoster(t, 3, rosterT0, "operator", "home1", "home2")
	if msg.Seq != 3 || msg.ValidFrom != "2026-11-22T12:15Z" || len(msg.Roster.Gateways) != 3 || !msg.Start().Equal(rosterT0) {
		t.Fatalf("decoded %+v", msg)
	}
	if err := msg.Verify(testPub("operator"), "c1"); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, c := range []struct {
		name      string
		key       string
		community string
		want      RejectReason
	}{
		{"signed by another key", "home1", "c1", RejectForged},
		{"for another community", "operator", "c2", RejectWrongCommunity},
	} {
		if err := msg.Verify(testPub(c.key), c.community); ReasonOf(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
}

// A roster message changed in any part after signing does not verify, or
// does not decode.
func TestRosterMsgTampered(t *testing.T) {
	data := signedRoster(t, 3, rosterT0, "operator", "home1").Encode()
	other := signedRoster(t, 3, rosterT0, "operator", "home1", "home9")
	for _, c := range []struct {
		name string
		data string
		want RejectReason
	}{
		{"a member added", strings.Replace(string(data), string(rosterOf(t, "operator", "home1").Encode()), string(other.Roster.Encode()), 1), RejectForged},
		{"seq raised", strings.Replace(string(data), `"seq":3`, `"seq":4`, 1), RejectForged},
		{"valid_from moved", strings.Replace(string(data), `12:15Z`, `12:30Z`, 1), RejectForged},
		{"unsigned", string(data[:bytes.Index(data, []byte(`,"sig"`))]) + `}`, RejectUnsigned},
		{"empty sig", string(data[:bytes.Index(data, []byte(`,"sig"`))]) + `,"sig":""}`, RejectUnsigned},
		{"seq 0", strings.Replace(string(data), `"seq":3`, `"seq":0`, 1), RejectMalformed},
		{"seq with a leading zero", strings.Replace(string(data), `"seq":3`, `"seq":03`, 1), RejectMalformed},
		{"seq as a string", strings.Replace(string(data), `"seq":3`, `"seq":"3"`, 1), RejectMalformed},
		{"roster not canonical", strings.Replace(string(data), `"roster":{"community"`, `"roster":{ "community"`, 1), RejectMalformed},
		{"roster of another community", strings.Replace(string(data), `"roster":{"community":"c1"`, `"roster":{"community":"c2"`, 1), RejectMalformed},
		{"unknown key", strings.Replace(string(data), `{"v":1`, `{"v":1,"x":1`, 1), RejectMalformed},
		{"oversize", string(data) + strings.Repeat(" ", MaxRosterSize), RejectOversize},
	} {
		msg, err := DecodeRoster([]byte(c.data))
		if err == nil {
			err = msg.Verify(testPub("operator"), "c1")
		}
		if ReasonOf(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
}

func TestEncodeRosterRefuses(t *testing.T) {
	r := rosterOf(t, "operator")
	if _, err := EncodeRoster(testKey("operator"), r, 0, rosterT0); err == nil || !strings.Contains(err.Error(), "seq 0") {
		t.Errorf("seq 0: %v", err)
	}
	if _, err := EncodeRoster(testKey("operator"), r, 1, rosterT0.Add(30*time.Second)); err == nil || !strings.Contains(err.Error(), "valid_from") {
		t.Errorf("valid_from mid-minute: %v", err)
	}
	if _, err := EncodeRoster(nil, r, 1, rosterT0); err == nil || !strings.Contains(err.Error(), "operator key") {
		t.Errorf("no key: %v", err)
	}
}

// TestRosters: versions are accepted only newer, signed by the operator,
// not governing an interval already governed by a newer one or whose gate
// has closed; At gives each interval its roster.
func TestRosters(t *testing.T) {
	v1 := signedRoster(t, 1, rosterT0, "operator", "home1", "home2")
	if _, err := NewRosters(testPub("home1"), v1); ReasonOf(err) != RejectForged {
		t.Fatalf("a first version that does not verify with the operator key: %v", err)
	}
	h, err := NewRosters(testPub("operator"), v1)
	if err != nil {
		t.Fatal(err)
	}
	iv := 15 * time.Minute
	now := rosterT0.Add(2 * iv)                                                         // 12:45: the gate of 13:00 is open
	v2 := signedRoster(t, 2, rosterT0.Add(3*iv), "operator", "home1", "home2", "home3") // home3 from 13:00
	if fresh, err := h.Accept(v2, now.Add(iv)); err != nil || !fresh {
		t.Fatalf("Accept(v2): %v, %v", fresh, err)
	}
	if fresh, err := h.Accept(v2, now.Add(iv)); err != nil || fresh {
		t.Errorf("Accept(v2) again: %v, %v; want not new, no error", fresh, err)
	}
	for _, c := range []struct {
		name string
		msg  *RosterMsg
		want RejectReason
	}{
		{"an older version", v1, RejectReplayed},
		{"another version 2", signedRoster(t, 2, rosterT0.Add(3*iv), "operator", "home1"), RejectReplayed},
		{"valid before the newest", signedRoster(t, 3, rosterT0.Add(2*iv), "operator", "home1"), RejectInvalid},
		{"valid from a closed gate", signedRoster(t, 3, rosterT0.Add(3*iv), "operator", "home1"), RejectLate},
	} {
		earliest := now.Add(iv)
		if c.want == RejectLate {
			earliest = now.Add(2 * iv)
		}
		if _, err := h.Accept(c.msg, earliest); ReasonOf(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	forged := *v2
	forged.Seq = 9
	if _, err := h.Accept(&forged, now); ReasonOf(err) != RejectForged {
		t.Errorf("a forged version 9: %v, want forged", err)
	}
	for _, c := range []struct {
		at   time.Time
		want int
	}{{rosterT0.Add(-iv), 3}, {rosterT0, 3}, {rosterT0.Add(2 * iv), 3}, {rosterT0.Add(3 * iv), 4}, {rosterT0.Add(10 * iv), 4}} {
		if got := len(h.At(c.at).Gateways); got != c.want {
			t.Errorf("At(%s): %d members, want %d", c.at.Format("15:04"), got, c.want)
		}
	}
	if h.Newest().Seq != 2 || h.Oldest().Seq != 1 {
		t.Errorf("Newest: version %d, want 2; Oldest: version %d, want 1", h.Newest().Seq, h.Oldest().Seq)
	}
	// Removing a member counts from its version's interval on.
	v3 := signedRoster(t, 3, rosterT0.Add(4*iv), "operator", "home1", "home3")
	if _, err := h.Accept(v3, now.Add(iv)); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.At(rosterT0.Add(3 * iv)).Key("home2"); !ok {
		t.Error("home2 removed from 13:15 on, but not in the roster of 13:00")
	}
	if _, ok := h.At(rosterT0.Add(4 * iv)).Key("home2"); ok {
		t.Error("home2 still in the roster of 13:15, from which it is removed")
	}
}

// A plain roster (no operator key) governs every interval and no message
// replaces it, however well signed.
func TestFixedRosters(t *testing.T) {
	r := rosterOf(t, "operator", "home1")
	h := FixedRosters(r)
	if !h.Fixed() || h.At(rosterT0) != r || h.At(rosterT0.Add(-time.Hour)) != r || h.Newest().Roster != r {
		t.Fatalf("FixedRosters(r) does not hold r alone: fixed %v, %+v", h.Fixed(), h.Newest())
	}
	v2 := signedRoster(t, 2, rosterT0, "operator", "home1", "home2")
	if fresh, err := h.Accept(v2, rosterT0); fresh || ReasonOf(err) != RejectForged {
		t.Errorf("Accept on a fixed roster: %v, %v; want rejected as forged", fresh, err)
	}
	if h.At(rosterT0.Add(time.Hour)) != r {
		t.Error("a fixed roster changed")
	}
	signed, err := NewRosters(testPub("operator"), v2)
	if err != nil || signed.Fixed() {
		t.Errorf("NewRosters: fixed %v, %v", signed != nil && signed.Fixed(), err)
	}
}
