package influx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// pointWriter is what the sink needs from InfluxDB: a blocking write that
// returns nil only once the server has accepted every point. The
// influxdb-client-go/v2 api.WriteAPIBlocking satisfies it.
type pointWriter interface {
	WritePoint(ctx context.Context, point ...*write.Point) error
}

// Source is the outbox the sink drains: the ledger satisfies it.
type Source interface {
	// Read returns up to max records with Seq >= from, in Seq order.
	Read(from uint64, max int) ([]ledger.Record, error)
	// Last is the Seq of the newest record (0 when empty).
	Last() uint64
	// Cursor is the last Seq a named consumer has finished (0: none).
	Cursor(name string) (uint64, error)
	SetCursor(name string, seq uint64) error
}

var _ Source = (*ledger.Ledger)(nil)

// DefaultBatch is the default number of records per write.
const DefaultBatch = 500

// DefaultCursor is the default ledger cursor name of the sink.
const DefaultCursor = "influx"

// Options configures the sink and Query.
type Options struct {
	// URL of the InfluxDB server, e.g. "http://127.0.0.1:8086".
	URL string `yaml:"url" json:"url"`
	// Org is the InfluxDB 2 organisation; empty for InfluxDB 1.8.
	Org string `yaml:"org" json:"org"`
	// Bucket is the InfluxDB 2 bucket; for InfluxDB 1.8 "database" or
	// "database/retention-policy".
	Bucket string `yaml:"bucket" json:"bucket"`
	// Token is the InfluxDB 2 API token; for InfluxDB 1.8 "user:password",
	// or empty when authentication is off.
	Token string `yaml:"token" json:"-"`
	// Batch is the most records written per request (default 500).
	Batch int `yaml:"batch" json:"batch"`
	// Cursor is the ledger cursor name (default "influx"); two sinks
	// writing to two servers need two names.
	Cursor string `yaml:"cursor" json:"cursor"`
	// Logger receives the sink's logs (default slog.Default()).
	Logger *slog.Logger `yaml:"-" json:"-"`
}

func (o *Options) check() error {
	if o.URL == "" {
		return errors.New("influx: url is missing")
	}
	if o.Bucket == "" {
		return errors.New("influx: bucket is missing")
	}
	if o.Batch < 0 {
		return fmt.Errorf("influx: batch %d is negative", o.Batch)
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Cursor == "" {
		o.Cursor = DefaultCursor
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// newClient returns a client for o whose own logger is silenced: the
// sink logs through slog.
func newClient(o Options) influxdb2.Client {
	return influxdb2.NewClientWithOptions(o.URL, o.Token,
		influxdb2.DefaultOptions().SetLogLevel(0).SetHTTPRequestTimeout(30))
}

// Sink copies ledger records to InfluxDB. Its ledger cursor moves only
// after InfluxDB has confirmed a write, so nothing is lost while the
// server is down, and a record written twice overwrites itself.
type Sink struct {
	o      Options
	src    Source
	w      pointWriter
	client influxdb2.Client // nil with a fake writer
	log    *slog.Logger

	drain sync.Mutex // one Drain at a time

	mu    sync.Mutex
	stats Stats
}

// Stats counts what the sink has done since New.
type Stats struct {
	Written  uint64 // points confirmed by InfluxDB
	Skipped  uint64 // records of kinds the sink does not map
	Rejected uint64 // malformed records, or refused by InfluxDB (HTTP 400)
	Failures uint64 // failed Drain calls (InfluxDB down, ledger error, ...)
	Cursor   uint64 // last ledger Seq handled
	Backlog  uint64 // ledger records after the cursor
	LastErr  string // the last failure, "" after a successful drain
}

// New returns a sink writing src's records to the InfluxDB server in o.
func New(o Options, src Source) (*Sink, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	c := newClient(o)
	s := newSink(o, src, c.WriteAPIBlocking(o.Org, o.Bucket))
	s.client = c
	return s, nil
}

// Close releases the sink's HTTP connections. The ledger stays open.
func (s *Sink) Close() {
	if s.client != nil {
		s.client.Close()
	}
}

func newSink(o Options, src Source, w pointWriter) *Sink {
	return &Sink{o: o, src: src, w: w, log: o.Logger.With("sink", "influx", "bucket", o.Bucket)}
}

// Stats returns the counters, with the backlog as of now.
func (s *Sink) Stats() Stats {
	cur, err := s.src.Cursor(s.o.Cursor)
	last := s.src.Last()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if err == nil {
		st.Cursor = cur
	}
	if last > st.Cursor {
		st.Backlog = last - st.Cursor
	} else {
		st.Backlog = 0
	}
	return st
}

func (s *Sink) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Drain writes every record after the cursor, in batches of at most
// Options.Batch records, and advances the cursor after each batch InfluxDB
// confirms. It returns the number of points written. On error the cursor
// stays after the last confirmed batch, so the next Drain resumes there.
//
// Records of unknown kinds and malformed records are skipped with a log
// line and counted (the ledger keeps them). A batch InfluxDB refuses with
// HTTP 400 is retried record by record, and the records it still refuses
// are skipped the same way, so one bad record cannot stall the sink. Any
// other write error (connection refused, 5xx, 401, 404 database not
// found) stops the drain with the cursor unmoved.
func (s *Sink) Drain(ctx context.Context) (written int, err error) {
	s.drain.Lock()
	defer s.drain.Unlock()
	defer func() {
		switch {
		case err != nil && ctx.Err() != nil:
			// shutting down: not a failure of InfluxDB
		case err != nil:
			s.count(func(st *Stats) { st.Failures++; st.LastErr = err.Error() })
		default:
			s.count(func(st *Stats) { st.LastErr = "" })
		}
	}()
	cur, err := s.src.Cursor(s.o.Cursor)
	if err != nil {
		return 0, fmt.Errorf("influx sink: ledger cursor %q: %w", s.o.Cursor, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		recs, err := s.src.Read(cur+1, s.o.Batch)
		if err != nil {
			return written, fmt.Errorf("influx sink: read ledger from %d: %w", cur+1, err)
		}
		if len(recs) == 0 {
			return written, nil
		}
		if len(recs) > s.o.Batch {
			recs = recs[:s.o.Batch]
		}
		n, err := s.writeBatch(ctx, recs)
		if err != nil {
			return written, fmt.Errorf("influx sink: write records %d..%d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
		}
		written += n
		last := recs[len(recs)-1].Seq
		if err := s.src.SetCursor(s.o.Cursor, last); err != nil {
			return written, fmt.Errorf("influx sink: set ledger cursor %q to %d: %w", s.o.Cursor, last, err)
		}
		cur = last
		s.count(func(st *Stats) { st.Written += uint64(n); st.Cursor = last })
	}
}

// writeBatch maps and writes recs, returning the points InfluxDB accepted.
func (s *Sink) writeBatch(ctx context.Context, recs []ledger.Record) (int, error) {
	points := make([]*write.Point, 0, len(recs))
	for _, r := range recs {
		p, err := Point(r)
		switch {
		case errors.Is(err, ErrUnknownKind):
			s.log.Debug("skipping ledger record of unknown kind", "seq", r.Seq, "kind", r.Kind)
			s.count(func(st *Stats) { st.Skipped++ })
		case err != nil:
			s.log.Error("skipping malformed ledger record", "seq", r.Seq, "kind", r.Kind, "err", err)
			s.count(func(st *Stats) { st.Rejected++ })
		default:
			points = append(points, p)
		}
	}
	if len(points) == 0 {
		return 0, nil
	}
	err := s.w.WritePoint(ctx, points...)
	if err == nil {
		return len(points), nil
	}
	if !refused(err) {
		return 0, err
	}
	// Find the points InfluxDB refuses; write the others. Rewriting a
	// point the server kept from a partial write only overwrites it.
	n := 0
	for _, p := range points {
		err := s.w.WritePoint(ctx, p)
		switch {
		case err == nil:
			n++
		case refused(err):
			s.log.Error("InfluxDB refused a point; skipping it (the ledger keeps the record)",
				"measurement", p.Name(), "seq", seqOf(p), "err", err)
			s.count(func(st *Stats) { st.Rejected++ })
		default:
			return 0, err
		}
	}
	return n, nil
}

// refused reports whether InfluxDB rejected the data itself (HTTP 400:
// bad line protocol, field type conflict, points beyond retention), as
// opposed to being unreachable, overloaded or misconfigured.
func refused(err error) bool {
	var he *influxhttp.Error
	return errors.As(err, &he) && he.StatusCode == http.StatusBadRequest
}

func seqOf(p *write.Point) any {
	for _, f := range p.FieldList() {
		if f.Key == FieldSeq {
			return f.Value
		}
	}
	return nil
}

// maxBackoff bounds the wait between failed drains in Run.
const maxBackoff = 5 * time.Minute

// Run drains every period until ctx ends. After a failed drain it logs,
// counts the failure and waits twice as long as before (from every up to
// five minutes, or every if that is longer), and drains again.
func (s *Sink) Run(ctx context.Context, every time.Duration) {
	wait := every
	for {
		n, err := s.Drain(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = min(2*wait, max(maxBackoff, every))
			s.log.Warn("InfluxDB drain failed; the ledger keeps the backlog", "err", err, "written", n, "retry_in", wait.Round(time.Second).String())
		default:
			wait = every
			if n > 0 {
				s.log.Debug("InfluxDB drain", "written", n)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Collectors returns the sink's Prometheus metrics, read from Stats.
func (s *Sink) Collectors() []prometheus.Collector {
	c := func(name, help string, f func(Stats) uint64) prometheus.CounterFunc {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(s.Stats())) })
	}
	return []prometheus.Collector{
		c("p2pgrid_influx_points_written_total", "Points InfluxDB confirmed.", func(st Stats) uint64 { return st.Written }),
		c("p2pgrid_influx_records_skipped_total", "Ledger records of kinds the sink does not map.", func(st Stats) uint64 { return st.Skipped }),
		c("p2pgrid_influx_records_rejected_total", "Malformed ledger records or points InfluxDB refused.", func(st Stats) uint64 { return st.Rejected }),
		c("p2pgrid_influx_drain_failures_total", "Drains that failed (InfluxDB unreachable, ...).", func(st Stats) uint64 { return st.Failures }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "p2pgrid_influx_backlog_records", Help: "Ledger records not yet in InfluxDB."},
			func() float64 { return float64(s.Stats().Backlog) }),
	}
}
