package protocol

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTelemetryRoundTrip(t *testing.T) {
	tm := exampleTelemetry()
	data, err := tm.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"gateway":"home1","time":"2026-11-22T12:16:05Z","grid_w":-1234.5,"pv_w":3000,"import_wh":1520340,"export_wh":2210890}`
	if string(data) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", data, want)
	}
	got, err := DecodeTelemetry(data)
	if err != nil || !reflect.DeepEqual(got, tm) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	// Missing values stay missing; times keep their fraction and come back in UTC.
	sparse := []byte(`{"v":1,"gateway":"home2","time":"2026-11-22T13:16:05.25+01:00","grid_w":0}`)
	got, err = DecodeTelemetry(sparse)
	if err != nil || got.PVW != nil || got.ImportWh != nil || got.GridW == nil || *got.GridW != 0 ||
		!got.Time.Equal(time.Date(2026, 11, 22, 12, 16, 5, 250e6, time.UTC)) || got.Time.Location() != time.UTC {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if again, _ := got.Encode(); string(again) != `{"v":1,"gateway":"home2","time":"2026-11-22T12:16:05.25Z","grid_w":0}` {
		t.Fatalf("re-encoded %s", again)
	}
}

func TestTelemetryRejections(t *testing.T) {
	good, _ := exampleTelemetry().Encode()
	for name, tc := range map[string]struct{ data, want string }{
		"counter not an integer": {string(tamper(t, good, `"import_wh":1520340`, `"import_wh":1520340.5`)), `"import_wh": want an integer`},
		"negative counter":       {string(tamper(t, good, `"import_wh":1520340`, `"import_wh":-1`)), "negative"},
		"power as a string":      {string(tamper(t, good, `"grid_w":-1234.5`, `"grid_w":"-1234.5"`)), `"grid_w": want a number`},
		"bad time":               {string(tamper(t, good, `"2026-11-22T12:16:05Z"`, `"2026-11-22 12:16:05"`)), "RFC 3339"},
		"no time":                {string(tamper(t, good, `"time":"2026-11-22T12:16:05Z",`, ``)), `"time" is missing`},
		"unknown key":            {string(tamper(t, good, `"pv_w"`, `"solar_w"`)), `"solar_w": unknown key`},
		"huge number":            {string(tamper(t, good, `-1234.5`, `1e400`)), `"grid_w"`},
		"oversize":               {string(good) + strings.Repeat(" ", MaxTelemetrySize), "at most"},
	} {
		_, err := DecodeTelemetry([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) || ReasonOf(err) == "" {
			t.Errorf("%s: %v; want an error saying %q", name, err, tc.want)
		}
	}
	nan := math.NaN()
	neg := int64(-5)
	for name, tm := range map[string]*Telemetry{
		"NaN":         {Gateway: "home1", Time: time.Now(), GridW: &nan},
		"negative":    {Gateway: "home1", Time: time.Now(), ExportWh: &neg},
		"no time":     {Gateway: "home1"},
		"bad gateway": {Gateway: "home 1", Time: time.Now()},
		"year 10000":  {Gateway: "home1", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if data, err := tm.Encode(); err == nil {
			t.Errorf("%s: encoded %s", name, data)
		}
	}
}

func TestStatusRoundTrip(t *testing.T) {
	for _, s := range []*Status{exampleStatusOnline(), exampleStatusOffline()} {
		data, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeStatus(data)
		if err != nil {
			t.Fatal(err)
		}
		if s.Alarms == nil {
			s.Alarms = []Alarm{} // decoded as an empty list
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("decoded %+v, want %+v", got, s)
		}
	}
	data, _ := exampleStatusOnline().Encode()
	want := `{"v":1,"gateway":"home2","state":"online","version":"v0.4.0","time":"2026-11-22T12:31:10Z",` +
		`"alarms":[{"interval":"2026-11-22T12:00Z","kind":"mismatch","detail":"the published result differs from this gateway's clearing of the published book"}],` +
		`"verified":[{"interval":"2026-11-22T12:15Z","clearing":"ok"},{"interval":"2026-11-22T12:00Z","clearing":"mismatch"},` +
		`{"interval":"2026-11-22T11:45Z","clearing":"ok","settlement":"ok"}]}`
	if string(data) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", data, want)
	}
	// An alarm without interval or detail, and a kind this version does not know.
	s := &Status{Gateway: "g", State: StateOnline, Version: "dev", Time: time.Unix(0, 0), Alarms: []Alarm{{Kind: "battery_low"}}}
	data, err := s.Encode()
	if err != nil || !strings.HasSuffix(string(data), `"alarms":[{"kind":"battery_low"}]}`) {
		t.Fatalf("%s, %v", data, err)
	}
	if _, err := DecodeStatus(data); err != nil {
		t.Fatal(err)
	}
}

func TestStatusRejections(t *testing.T) {
	good, _ := exampleStatusOnline().Encode()
	alarm := `{"kind":"mismatch"}`
	for name, tc := range map[string]struct{ data, want string }{
		"bad state":         {string(tamper(t, good, `"online"`, `"up"`)), `state "up"`},
		"bad verdict":       {string(tamper(t, good, `"clearing":"mismatch"`, `"clearing":"Bad!"`)), "verified[1]: clearing"},
		"bad verified iv":   {string(tamper(t, good, `"interval":"2026-11-22T12:15Z"`, `"interval":"soon"`)), "verified[0]"},
		"verified unknown":  {string(tamper(t, good, `"settlement":"ok"`, `"settled":"ok"`)), "unknown key"},
		"verified no iv":    {string(tamper(t, good, `{"interval":"2026-11-22T11:45Z",`, `{`)), "interval"},
		"bad alarm kind":    {string(tamper(t, good, `"kind":"mismatch"`, `"kind":"Mismatch!"`)), "alarms[0]: kind"},
		"bad interval":      {string(tamper(t, good, `"interval":"2026-11-22T12:00Z"`, `"interval":"yesterday"`)), "alarms[0]: interval"},
		"control in text":   {string(tamper(t, good, `"detail":"the`, `"detail":"\u0007the`)), "alarms[0]: detail"},
		"no alarms":         {string(tamper(t, good, `,"alarms":[`, `,"x":[`)), `"x": unknown key`},
		"alarms null":       {`{"v":1,"gateway":"g","state":"online","version":"v","time":"2026-11-22T12:31:10Z","alarms":null}`, "want an array"},
		"empty version":     {string(tamper(t, good, `"v0.4.0"`, `""`)), "empty version"},
		"too many alarms":   {`{"v":1,"gateway":"g","state":"online","version":"v","time":"2026-11-22T12:31:10Z","alarms":[` + strings.Repeat(alarm+",", MaxAlarms) + alarm + `]}`, "more than 32 alarms"},
		"unknown alarm key": {string(tamper(t, good, `"detail"`, `"text"`)), `"text": unknown key`},
		"oversize":          {string(good) + strings.Repeat(" ", MaxStatusSize), "at most"},
	} {
		_, err := DecodeStatus([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) || ReasonOf(err) == "" {
			t.Errorf("%s: %v; want an error saying %q", name, err, tc.want)
		}
	}
}
