package influx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// FieldSeq is the integer field every point carries: the ledger sequence
// number of the record it came from.
const FieldSeq = "ledger_seq"

// floatSuffix names the float64 display copy of a decimal field.
const floatSuffix = "_f"

// ErrUnknownKind is returned by Point for a record kind the sink does not
// map: record.ErrUnknownKind, so that errors.Is works with either name.
var ErrUnknownKind = record.ErrUnknownKind

// ErrMalformed wraps every error about a record whose Data does not have
// the documented shape.
var ErrMalformed = errors.New("malformed ledger record")

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
	case record.KindClearing:
		p, err = clearingPoint(r.Data)
	case record.KindTrade:
		p, err = tradePoint(r.Data)
	case record.KindStatement:
		p, err = settlementPoint(r.Data)
	case record.KindReading:
		p, err = readingPoint(r.Data)
	case record.KindInterval:
		p, err = communityPoint(r.Data)
	default:
		return nil, fmt.Errorf("ledger record %d: kind %q: %w", r.Seq, r.Kind, ErrUnknownKind)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger record %d (%s): %w: %w", r.Seq, r.Kind, ErrMalformed, err)
	}
	p.AddField(FieldSeq, int64(r.Seq))
	return p, nil
}

// addDecimal adds name = the exact decimal string and name_f = its float64
// approximation (for graphs only), when d is set.
func addDecimal(p *write.Point, name string, d record.Decimal) {
	if !d.IsSet() {
		return
	}
	p.AddField(name, string(d))
	if f, _ := d.Value().Float64(); !math.IsInf(f, 0) {
		p.AddField(name+floatSuffix, f)
	}
}

func clearingPoint(data json.RawMessage) (*write.Point, error) {
	d, err := record.DecodeClearing(data)
	if err != nil {
		return nil, err
	}
	start, _ := market.ParseIntervalLoose(d.Interval) // checked by DecodeClearing
	p := write.NewPointWithMeasurement(record.KindClearing).SetTime(start)
	if d.Community != "" {
		p.AddTag("community", d.Community)
	}
	p.AddTag("interval", d.Interval)
	addDecimal(p, "price", d.Price)
	addDecimal(p, "volume_kwh", d.VolumeKWh)
	p.AddField("orders", d.Orders)
	p.AddField("trades", d.Trades)
	return p, nil
}

func tradePoint(data json.RawMessage) (*write.Point, error) {
	d, err := record.DecodeTrade(data)
	if err != nil {
		return nil, err
	}
	start, _ := market.ParseIntervalLoose(d.Interval) // checked by DecodeTrade
	p := write.NewPointWithMeasurement(record.KindTrade).SetTime(start)
	p.AddTag("interval", d.Interval)
	p.AddTag("trade", d.ID)
	p.AddTag("seller", d.Seller)
	p.AddTag("buyer", d.Buyer)
	addDecimal(p, "kwh", d.KWh)
	addDecimal(p, "price", d.Price)
	addDecimal(p, "amount", d.Amount)
	return p, nil
}

func settlementPoint(data json.RawMessage) (*write.Point, error) {
	d, err := record.DecodeStatement(data)
	if err != nil {
		return nil, err
	}
	start, _ := market.ParseIntervalLoose(d.Interval) // checked by DecodeStatement
	p := write.NewPointWithMeasurement(record.KindStatement).SetTime(start)
	p.AddTag("interval", d.Interval)
	p.AddTag("participant", d.Participant)
	for _, f := range d.Figures() {
		// Every figure is a decimal amount. Names that would collide
		// with a display copy or with ledger_seq are refused, so a field's
		// type never depends on the data.
		if strings.HasSuffix(f.Name, floatSuffix) || f.Name == FieldSeq || f.Name == "" {
			return nil, fmt.Errorf("field name %q is reserved", f.Name)
		}
		if settlement.IsCountField(f.Name) {
			// A count of intervals (missing_intervals says the figures
			// were missing): an integer field, no float copy. DecodeStatement
			// checked it is one.
			p.AddField(f.Name, f.Value.Value().IntPart())
			continue
		}
		addDecimal(p, f.Name, f.Value)
	}
	return p, nil
}

func readingPoint(data json.RawMessage) (*write.Point, error) {
	d, err := record.DecodeReading(data)
	if err != nil {
		return nil, err
	}
	p := write.NewPointWithMeasurement(record.KindReading).SetTime(d.Time)
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

// MeasurementCommunity is the measurement of an interval record: the
// community's figures of one settled interval (settlement.CommunityTotals
// of its settlement), for the dashboards' local share and money kept in
// the community.
const MeasurementCommunity = "community"

// communityPoint maps an interval record (the whole settlement) to the
// community's totals of that interval: energies in kWh, exact from whole
// Wh; money exact; local_share as settlement.CommunityTotals rounds it.
func communityPoint(data json.RawMessage) (*write.Point, error) {
	s, err := settlement.DecodeIntervalSettlement(data)
	if err != nil {
		return nil, err
	}
	start, err := market.ParseIntervalLoose(s.Interval)
	if err != nil {
		return nil, err
	}
	c := settlement.CommunityTotals(s)
	p := write.NewPointWithMeasurement(MeasurementCommunity).SetTime(start)
	p.AddTag("interval", s.Interval)
	for _, e := range []struct {
		name string
		wh   int64
	}{
		{"consumption_kwh", c.ConsumptionWh}, {"export_kwh", c.ExportWh}, {"traded_kwh", c.TradedWh},
		{"local_kwh", c.LocalWh}, {"spilled_kwh", c.SpilledWh}, {"local_consumed_kwh", c.LocalWh - c.SpilledWh},
		{"grid_import_kwh", c.GridImportWh}, {"grid_export_kwh", c.GridExportWh},
	} {
		addDecimal(p, e.name, record.DecimalOf(decimal.New(e.wh, -3)))
	}
	for _, e := range []struct {
		name string
		v    decimal.Decimal
	}{
		{"local_share", c.LocalShare}, {"money_kept_locally", c.MoneyKeptLocally}, {"compensation", c.Compensation},
		{"fees", c.Fees}, {"grid", c.Grid}, {"saving", c.Saving},
	} {
		addDecimal(p, e.name, record.DecimalOf(e.v))
	}
	p.AddField("participants", int64(c.Participants))
	p.AddField("missing_figures", int64(c.MissingFigures))
	return p, nil
}
