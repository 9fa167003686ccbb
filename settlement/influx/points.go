package influx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// The ledger kinds the sink maps, and the measurements they become.
const (
	KindClearing   = "clearing"
	KindTrade      = "trade"
	KindSettlement = "settlement"
	KindReading    = "reading"
)

// FieldSeq is the integer field every point carries: the ledger sequence
// number of the record it came from.
const FieldSeq = "ledger_seq"

// floatSuffix names the float64 display copy of a decimal field.
const floatSuffix = "_f"

// ErrUnknownKind is returned by Point for a record kind the sink does not map.
var ErrUnknownKind = errors.New("unknown ledger kind")

// ErrMalformed wraps every error about a record whose Data does not have
// the documented shape.
var ErrMalformed = errors.New("malformed ledger record")

// intervalLayouts are the accepted spellings of an interval start:
// RFC 3339, with or without seconds (the auction names intervals like
// "2026-11-22T10:15Z").
var intervalLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

// IntervalStart parses an interval name into its start time.
func IntervalStart(interval string) (time.Time, error) {
	if interval == "" {
		return time.Time{}, errors.New("interval is empty")
	}
	for _, l := range intervalLayouts {
		if t, err := time.Parse(l, interval); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("interval %q is not an RFC 3339 start time (e.g. 2026-11-22T10:15Z)", interval)
}

// Point maps one ledger record to its InfluxDB point. The result depends
// only on the record's Seq, Kind and Data (not on Record.Time or the
// wall clock), so writing a record again overwrites the same point.
// It returns an error wrapping ErrUnknownKind for a kind it does not map,
// and one wrapping ErrMalformed for Data without the documented shape.
func Point(r ledger.Record) (*write.Point, error) {
	var (
		p   *write.Point
		err error
	)
	switch r.Kind {
	case KindClearing:
		p, err = clearingPoint(r.Data)
	case KindTrade:
		p, err = tradePoint(r.Data)
	case KindSettlement:
		p, err = settlementPoint(r.Data)
	case KindReading:
		p, err = readingPoint(r.Data)
	default:
		return nil, fmt.Errorf("ledger record %d: kind %q: %w", r.Seq, r.Kind, ErrUnknownKind)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger record %d (%s): %w: %w", r.Seq, r.Kind, ErrMalformed, err)
	}
	p.AddField(FieldSeq, int64(r.Seq))
	return p, nil
}

// decimalText is a decimal quantity in a record: a JSON string or number,
// kept as the exact text the ledger holds. null leaves it unset.
type decimalText struct {
	text string
	val  decimal.Decimal
	set  bool
}

func (d *decimalText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*d = decimalText{}
		return nil
	}
	text := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
	}
	v, err := decimal.NewFromString(text)
	if err != nil {
		return fmt.Errorf("%s is not a decimal", b)
	}
	*d = decimalText{text: text, val: v, set: true}
	return nil
}

// addDecimal adds name = the exact decimal string and name_f = its float64
// approximation (for graphs only), when d is set.
func addDecimal(p *write.Point, name string, d decimalText) {
	if !d.set {
		return
	}
	p.AddField(name, d.text)
	if f, _ := d.val.Float64(); !math.IsInf(f, 0) {
		p.AddField(name+floatSuffix, f)
	}
}

// decode unmarshals data strictly: unknown fields are allowed (producers
// may add some), but wrong types are not.
func decode(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return errors.New("data is empty")
	}
	return json.Unmarshal(data, v)
}

func need(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s is missing", what)
	}
	return nil
}

type clearingData struct {
	Community string      `json:"community"`
	Interval  string      `json:"interval"`
	Price     decimalText `json:"price"`
	VolumeKWh decimalText `json:"volume_kwh"`
	Orders    *int64      `json:"orders"`
	Trades    *int64      `json:"trades"`
}

func clearingPoint(data json.RawMessage) (*write.Point, error) {
	var d clearingData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	start, err := IntervalStart(d.Interval)
	if err != nil {
		return nil, err
	}
	p := write.NewPointWithMeasurement(KindClearing).SetTime(start)
	if d.Community != "" {
		p.AddTag("community", d.Community)
	}
	p.AddTag("interval", d.Interval)
	addDecimal(p, "price", d.Price)
	addDecimal(p, "volume_kwh", d.VolumeKWh)
	if d.Orders != nil {
		p.AddField("orders", *d.Orders)
	}
	if d.Trades != nil {
		p.AddField("trades", *d.Trades)
	}
	return p, nil
}

type tradeData struct {
	Interval string      `json:"interval"`
	ID       string      `json:"id"`
	Seller   string      `json:"seller"`
	Buyer    string      `json:"buyer"`
	KWh      decimalText `json:"kwh"`
	Price    decimalText `json:"price"`
	Amount   decimalText `json:"amount"`
}

func tradePoint(data json.RawMessage) (*write.Point, error) {
	var d tradeData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	start, err := IntervalStart(d.Interval)
	if err != nil {
		return nil, err
	}
	for _, f := range [][2]string{{"id", d.ID}, {"seller", d.Seller}, {"buyer", d.Buyer}} {
		if err := need(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	p := write.NewPointWithMeasurement(KindTrade).SetTime(start)
	p.AddTag("interval", d.Interval)
	p.AddTag("trade", d.ID)
	p.AddTag("seller", d.Seller)
	p.AddTag("buyer", d.Buyer)
	addDecimal(p, "kwh", d.KWh)
	addDecimal(p, "price", d.Price)
	addDecimal(p, "amount", d.Amount)
	return p, nil
}

// settlementTags are the settlement keys that become tags, not fields.
var settlementTags = map[string]bool{"interval": true, "participant": true}

func settlementPoint(data json.RawMessage) (*write.Point, error) {
	var d map[string]json.RawMessage
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	var interval, participant string
	if raw, ok := d["interval"]; ok {
		if err := json.Unmarshal(raw, &interval); err != nil {
			return nil, fmt.Errorf("interval: %w", err)
		}
	}
	if raw, ok := d["participant"]; ok {
		if err := json.Unmarshal(raw, &participant); err != nil {
			return nil, fmt.Errorf("participant: %w", err)
		}
	}
	start, err := IntervalStart(interval)
	if err != nil {
		return nil, err
	}
	if err := need("participant", participant); err != nil {
		return nil, err
	}
	p := write.NewPointWithMeasurement(KindSettlement).SetTime(start)
	p.AddTag("interval", interval)
	p.AddTag("participant", participant)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if settlementTags[k] {
			continue
		}
		// Every other key is a decimal amount. Names that would collide
		// with a display copy or with ledger_seq are refused, so a field's
		// type never depends on the data.
		if strings.HasSuffix(k, floatSuffix) || k == FieldSeq || k == "" {
			return nil, fmt.Errorf("field name %q is reserved", k)
		}
		var v decimalText
		if err := json.Unmarshal(d[k], &v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if settlement.IsCountField(k) {
			// A count of intervals (missing_intervals says the figures
			// were missing): an integer field, no float copy.
			if !v.set {
				continue
			}
			if !v.val.IsInteger() || v.val.IsNegative() || !v.val.LessThan(decimal.New(1, 18)) {
				return nil, fmt.Errorf("%s: %s is not a count", k, v.text)
			}
			p.AddField(k, v.val.IntPart())
			continue
		}
		addDecimal(p, k, v)
	}
	return p, nil
}

type readingData struct {
	Gateway  string    `json:"gateway"`
	Device   string    `json:"device"`
	Time     time.Time `json:"time"`
	PowerW   *float64  `json:"power_w"`
	ImportWh *int64    `json:"import_wh"`
	ExportWh *int64    `json:"export_wh"`
}

func readingPoint(data json.RawMessage) (*write.Point, error) {
	var d readingData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if err := need("gateway", d.Gateway); err != nil {
		return nil, err
	}
	if err := need("device", d.Device); err != nil {
		return nil, err
	}
	if d.Time.IsZero() {
		return nil, errors.New("time is missing")
	}
	p := write.NewPointWithMeasurement(KindReading).SetTime(d.Time)
	p.AddTag("gateway", d.Gateway)
	p.AddTag("device", d.Device)
	if d.PowerW != nil {
		p.AddField("power_w", *d.PowerW)
	}
	if d.ImportWh != nil {
		p.AddField("import_wh", *d.ImportWh)
	}
	if d.ExportWh != nil {
		p.AddField("export_wh", *d.ExportWh)
	}
	return p, nil
}
