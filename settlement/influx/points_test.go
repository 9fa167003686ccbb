package influx

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

func rec(seq uint64, kind, data string) ledger.Record {
	return ledger.Record{Seq: seq, Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Kind: kind, Key: "k", Data: json.RawMessage(data)}
}

func lineOf(t *testing.T, r ledger.Record) string {
	t.Helper()
	p, err := Point(r)
	if err != nil {
		t.Fatalf("Point(%s %s): %v", r.Kind, r.Data, err)
	}
	return write.PointToLineProtocol(p, time.Nanosecond)
}

// TestPointSchema pins the line protocol of each kind: the schema the
// package doc promises.
func TestPointSchema(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    ledger.Record
		want string
	}{
		{"clearing", rec(7, record.KindClearing, `{"community":"elm st","interval":"2026-11-22T10:15Z","price":"0.210","volume_kwh":"3.5","orders":4,"trades":2}`),
			`clearing,community=elm\ st,interval=2026-11-22T10:15Z price="0.210",price_f=0.21,volume_kwh="3.5",volume_kwh_f=3.5,orders=4i,trades=2i,ledger_seq=7i 1795342500000000000` + "\n"},
		{"clearing not cleared", rec(8, record.KindClearing, `{"interval":"2026-11-22T10:15:00Z","price":null,"volume_kwh":"0","orders":1,"trades":0}`),
			`clearing,interval=2026-11-22T10:15:00Z volume_kwh="0",volume_kwh_f=0,orders=1i,trades=0i,ledger_seq=8i 1795342500000000000` + "\n"},
		{"trade", rec(9, record.KindTrade, `{"interval":"2026-11-22T10:15Z","id":"2026-11-22T10:15Z/s1/b2","seller":"ann","buyer":"bob","kwh":"1.2","price":"0.21","amount":"0.252"}`),
			`trade,interval=2026-11-22T10:15Z,trade=2026-11-22T10:15Z/s1/b2,seller=ann,buyer=bob kwh="1.2",kwh_f=1.2,price="0.21",price_f=0.21,amount="0.252",amount_f=0.252,ledger_seq=9i 1795342500000000000` + "\n"},
		{"settlement", rec(10, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"bob","paid":"0.252","bought_kwh":"1.2","net":-0.252,"note_free":null}`),
			`settlement,interval=2026-11-22T10:15Z,participant=bob bought_kwh="1.2",bought_kwh_f=1.2,net="-0.252",net_f=-0.252,paid="0.252",paid_f=0.252,ledger_seq=10i 1795342500000000000` + "\n"},
		{"settlement without figures", rec(12, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"bob","intervals":"1","missing_intervals":"1","import_kwh":"0"}`),
			`settlement,interval=2026-11-22T10:15Z,participant=bob import_kwh="0",import_kwh_f=0,intervals=1i,missing_intervals=1i,ledger_seq=12i 1795342500000000000` + "\n"},
		{"reading", rec(11, record.KindReading, `{"gateway":"gw1","device":"sdm630","time":"2026-11-22T10:16:05.5Z","power_w":-812.5,"import_wh":123456,"export_wh":789}`),
			`reading,gateway=gw1,device=sdm630 power_w=-812.5,import_wh=123456i,export_wh=789i,ledger_seq=11i 1795342565500000000` + "\n"},
		// The interval record of settlement/record/testdata/interval: the
		// community's totals (1.71 kWh consumed, 1 of it from neighbours).
		{"community", rec(13, record.KindInterval, intervalRecord), `community,interval=2026-11-22T12:15Z consumption_kwh="1.71",consumption_kwh_f=1.71,export_kwh="1.2",export_kwh_f=1.2,traded_kwh="1.5",traded_kwh_f=1.5,local_kwh="1",local_kwh_f=1,spilled_kwh="0",spilled_kwh_f=0,local_consumed_kwh="1",local_consumed_kwh_f=1,grid_import_kwh="0.71",grid_import_kwh_f=0.71,grid_export_kwh="0.2",grid_export_kwh_f=0.2,local_share="0.584795",local_share_f=0.584795,money_kept_locally="0.15",money_kept_locally_f=0.15,compensation="0.075",compensation_f=0.075,fees="0",fees_f=0,grid="0.203",grid_f=0.203,saving="0.25",saving_f=0.25,participants=3i,missing_figures=1i,ledger_seq=13i 1795349700000000000` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lineOf(t, tc.r); got != tc.want {
				t.Errorf("line protocol\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// intervalRecord is the data of an interval record: a whole settlement
// of three homes, one (cat) without metered figures.
const intervalRecord = `{"format":"p2pgrid-settlement/1","interval":"2026-11-22T12:15Z","policy":"seller-bears-shortfall","retail":"0.3","feed_in":"0.05","grid":"0.203","fees":"0","trades":[{"id":"2026-11-22T12:15Z/s1/b1","seller":"ann","buyer":"bob","wh":1000,"delivered_wh":1000,"missing_wh":0,"price":"0.15","amount":"0.15","fee":"0","compensation":"0"},{"id":"2026-11-22T12:15Z/s2/b1","seller":"cat","buyer":"bob","wh":500,"delivered_wh":0,"missing_wh":500,"price":"0.15","amount":"0","fee":"0","compensation":"0.075"}],"participants":[{"participant":"ann","intervals":1,"missing_intervals":0,"bought_wh":0,"sold_wh":1000,"received_wh":0,"delivered_wh":1000,"import_wh":10,"export_wh":1200,"grid_import_wh":10,"grid_export_wh":200,"spilled_wh":0,"imbalance_wh":190,"paid_p2p":"0","received_p2p":"0.15","fees":"0","compensation_paid":"0","compensation_received":"0","grid_cost":"0.003","grid_credit":"0.01","net":"0.157","baseline":"0.057","saving":"0.1"},{"participant":"bob","intervals":1,"missing_intervals":0,"bought_wh":1500,"sold_wh":0,"received_wh":1000,"delivered_wh":0,"import_wh":1700,"export_wh":0,"grid_import_wh":700,"grid_export_wh":0,"spilled_wh":0,"imbalance_wh":-200,"paid_p2p":"0.15","received_p2p":"0","fees":"0","compensation_paid":"0","compensation_received":"0.075","grid_cost":"0.21","grid_credit":"0","net":"-0.285","baseline":"-0.51","saving":"0.225"},{"participant":"cat","intervals":1,"missing_intervals":1,"bought_wh":0,"sold_wh":500,"received_wh":0,"delivered_wh":0,"import_wh":0,"export_wh":0,"grid_import_wh":0,"grid_export_wh":0,"spilled_wh":0,"imbalance_wh":-500,"paid_p2p":"0","received_p2p":"0","fees":"0","compensation_paid":"0.075","compensation_received":"0","grid_cost":"0","grid_credit":"0","net":"-0.075","baseline":"0","saving":"-0.075"}]}`

// TestPointIsIdempotent: the same record maps to the same point, whatever
// the clock or Record.Time say, so a rewrite overwrites it.
func TestPointIsIdempotent(t *testing.T) {
	src := &memSource{}
	fill(src, 8)
	for _, r := range src.recs {
		a := lineOf(t, r)
		r2 := r
		r2.Time = r.Time.Add(time.Hour) // a re-read must not depend on it
		r2.Data = append(json.RawMessage(nil), r.Data...)
		time.Sleep(time.Millisecond)
		if b := lineOf(t, r2); a != b {
			t.Errorf("record %d maps differently on a second call:\n%s%s", r.Seq, a, b)
		}
	}
}

func TestPointErrors(t *testing.T) {
	for _, tc := range []struct {
		r    ledger.Record
		want error
	}{
		{rec(1, "audit_note", `{}`), ErrUnknownKind},
		{rec(1, record.KindClearing, `{"price":"1"}`), ErrMalformed},                                  // no interval
		{rec(1, record.KindClearing, `{"interval":"2026-11-22T10:15Z","price":"one"}`), ErrMalformed}, // not a decimal
		{rec(1, record.KindClearing, `{"interval":"2026-11-22T10:15Z","orders":"4"}`), ErrMalformed},  // wrong type
		{rec(1, record.KindTrade, `{"interval":"2026-11-22T10:15Z","seller":"a","buyer":"b"}`), ErrMalformed},
		{rec(1, record.KindInterval, `{"format":"p2pgrid-settlement/1","interval":"2026-11-22T10:15Z"}`), ErrMalformed}, // not a whole settlement
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z"}`), ErrMalformed},
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","paid_f":"1"}`), ErrMalformed},
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","ledger_seq":"1"}`), ErrMalformed},
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","flag":true}`), ErrMalformed},
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","missing_intervals":"0.5"}`), ErrMalformed},
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","intervals":"-1"}`), ErrMalformed},
		{rec(1, record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","intervals":"1e30"}`), ErrMalformed},
		{rec(1, record.KindReading, `{"gateway":"g","device":"d"}`), ErrMalformed},
		{rec(1, record.KindReading, `{"gateway":"g","device":"d","time":"2026-11-22T10:15:00Z","import_wh":1.5}`), ErrMalformed},
		{rec(1, record.KindReading, `[]`), ErrMalformed},
	} {
		_, err := Point(tc.r)
		if !errors.Is(err, tc.want) {
			t.Errorf("Point(%s %s) error = %v, want %v", tc.r.Kind, tc.r.Data, err, tc.want)
		}
	}
}

func FuzzPoint(f *testing.F) {
	f.Add(record.KindClearing, `{"community":"elm","interval":"2026-11-22T10:15Z","price":"0.21","volume_kwh":"3.5","orders":4,"trades":2}`)
	f.Add(record.KindTrade, `{"interval":"2026-11-22T10:15Z","id":"x","seller":"a","buyer":"b","kwh":"1","price":"2","amount":"2"}`)
	f.Add(record.KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","net":"-1e3"}`)
	f.Add(record.KindReading, `{"gateway":"g","device":"d","time":"2026-11-22T10:15:00Z","power_w":1}`)
	f.Fuzz(func(t *testing.T, kind, data string) {
		p, err := Point(rec(1, kind, data))
		if err != nil {
			return
		}
		// A mapped point always carries its ledger_seq and has a timestamp.
		if seqOf(p) != int64(1) || p.Time().IsZero() {
			t.Fatalf("point %v: no ledger_seq or time", p)
		}
		_ = write.PointToLineProtocol(p, time.Nanosecond)
	})
}

// A reading's profile (added to the record later) is not mapped: the point
// is the one a reading without it gave, so its identity is unchanged.
func TestReadingProfileKeepsThePoint(t *testing.T) {
	old := lineOf(t, rec(11, record.KindReading, `{"device":"grid","export_wh":789,"gateway":"home1","import_wh":123456,"power_w":-812.5,"time":"2026-11-22T12:15:05.5Z"}`))
	now := lineOf(t, rec(11, record.KindReading, `{"device":"grid","export_wh":789,"gateway":"home1","import_wh":123456,"power_w":-812.5,"profile":"sdm630","time":"2026-11-22T12:15:05.5Z"}`))
	if old != now || !strings.HasPrefix(now, "reading,gateway=home1,device=grid ") {
		t.Errorf("reading with profile maps to\n%swithout\n%s", now, old)
	}
}
