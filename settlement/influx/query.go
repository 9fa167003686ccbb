package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// Row is one record of a Flux query result: its columns by name
// (_time, _measurement, _field, _value and the tags).
type Row map[string]any

// Query runs a Flux query against the server in o (InfluxDB 2, or 1.8
// with flux-enabled = true) and returns every record of every table.
func Query(ctx context.Context, o Options, flux string) ([]Row, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	c := newClient(o)
	defer c.Close()
	res, err := c.QueryAPI(o.Org).Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influx query: %w", err)
	}
	defer res.Close()
	var rows []Row
	for res.Next() {
		rows = append(rows, Row(res.Record().Values()))
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("influx query: %w", err)
	}
	return rows, nil
}

// FluxString quotes s as a Flux string literal.
func FluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`)
	return `"` + r.Replace(s) + `"`
}

// SettlementRow is one participant's settlement of one interval, as read
// back from InfluxDB: the exact decimal strings, never the float copies.
type SettlementRow struct {
	Time        time.Time         // interval start
	Interval    string            // interval name
	Participant string            //
	Seq         uint64            // ledger_seq of the record
	Values      map[string]string // bought_kwh, paid, net, ... as exact decimals; missing_intervals, ... as integers
}

// Statement is the row as the statement record it was written from (its
// figures checked as record.DecodeStatement checks them).
func (r SettlementRow) Statement() (record.Statement, error) {
	m := map[string]string{"interval": r.Interval, "participant": r.Participant}
	for k, v := range r.Values {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err == nil {
		var s record.Statement
		if s, err = record.DecodeStatement(b); err == nil {
			return s, nil
		}
	}
	return record.Statement{}, fmt.Errorf("influx: settlement %s %s: %w", r.Interval, r.Participant, err)
}

// Settlements returns the settlement rows with interval start in
// [from, to), of one participant or of all when participant is "",
// ordered by time, then participant.
func Settlements(ctx context.Context, o Options, from, to time.Time, participant string) ([]SettlementRow, error) {
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q)`,
		FluxString(o.Bucket), from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), record.KindStatement)
	if participant != "" {
		flux += fmt.Sprintf("\n  |> filter(fn: (r) => r.participant == %s)", FluxString(participant))
	}
	flux += "\n  |> filter(fn: (r) => r._field !~ /_f$/)"
	rows, err := Query(ctx, o, flux)
	if err != nil {
		return nil, err
	}
	type key struct {
		t                     time.Time
		interval, participant string
	}
	byKey := map[key]*SettlementRow{}
	for _, r := range rows {
		t, _ := r["_time"].(time.Time)
		interval, _ := r["interval"].(string)
		who, _ := r["participant"].(string)
		field, _ := r["_field"].(string)
		k := key{t, interval, who}
		s := byKey[k]
		if s == nil {
			s = &SettlementRow{Time: t, Interval: interval, Participant: who, Values: map[string]string{}}
			byKey[k] = s
		}
		switch v := r["_value"].(type) {
		case string:
			s.Values[field] = v
		case int64:
			if field == FieldSeq {
				s.Seq = uint64(v)
			} else {
				s.Values[field] = strconv.FormatInt(v, 10) // intervals, missing_intervals
			}
		}
	}
	out := make([]SettlementRow, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Participant < out[j].Participant
	})
	return out, nil
}
