package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/report"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options are a dashboard.
type Options struct {
	// Ledger is the ledger directory shown (a gateway's data_dir/ledger).
	// Required.
	Ledger string
	// Live, if set, tells the gateways' status and verifications.
	Live Live
	// Auth is who may log in; Run refuses a non-loopback address without.
	Auth Auth
	// Minor is the decimals of the currency's minor unit money is rounded
	// to, as p2pgrid settlements --minor (whose default is 2).
	Minor int32
	// Currency is shown when the ledger names none ("": EUR).
	Currency string
	// Poll is how often the ledger is read for new records (0: 1s).
	Poll time.Duration
	// KeepDetail is how many of the latest intervals are kept in full
	// detail (0: DefaultKeepDetail).
	KeepDetail int
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Progress, if set, is told how far a long first scan of the ledger
	// has come, every few seconds.
	Progress func(records uint64, intervals int)
}

// Server is the dashboard: its handler, its model and the follower that
// feeds it.
type Server struct {
	o     Options
	model *Model
	f     *follower
	hub   hub
	pages map[string]*template.Template
	done  chan struct{} // closed when Run returns: ends the event streams
}

// New returns a dashboard over o.Ledger. Nothing is read until Run (or
// CatchUp).
func New(o Options) (*Server, error) {
	if o.Ledger == "" {
		return nil, errors.New("dashboard: no ledger directory")
	}
	if o.Minor < 0 || o.Minor > 8 {
		return nil, fmt.Errorf("dashboard: minor unit of %d decimals is outside 0-8", o.Minor)
	}
	if o.Currency == "" {
		o.Currency = "EUR"
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, model: NewModel(o.KeepDetail), pages: map[string]*template.Template{}, done: make(chan struct{})}
	s.f = &follower{dir: o.Ledger, model: s.model, log: o.Logger, progress: o.Progress, every: 2 * time.Second}
	for _, p := range []string{"overview", "interval", "participant", "error"} {
		t, err := template.New(p).Funcs(s.funcs()).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	return s, nil
}

// Model is the dashboard's model of the ledger.
func (s *Server) Model() *Model { return s.model }

// CatchUp reads the records appended to the ledger since the last read
// and announces their intervals to the open pages. Run does it every
// Options.Poll; call CatchUp only when Run is not running.
func (s *Server) CatchUp() error {
	ids, err := s.f.catchUp()
	s.announce(ids)
	return err
}

func (s *Server) announce(ids []string) {
	for _, id := range ids {
		s.hub.publish(event{interval: id, seq: s.model.Seq()})
	}
}

// Run serves the dashboard on addr, and reads the ledger every
// Options.Poll, until ctx ends, then shuts the server down gracefully
// (open event streams end; the browsers reconnect to the next server). A
// Server runs once. It refuses a non-loopback addr without a login. ready,
// if set, is called with the address listened on (its port resolved)
// before the ledger's first scan.
func (s *Server) Run(ctx context.Context, addr string, ready func(addr string)) error {
	if !IsLoopback(addr) && !s.o.Auth.Enabled() {
		return fmt.Errorf("dashboard: refusing to serve %s without a login: it is not a loopback address; give a token (--token, --token-file) or a basic-auth file (--basic-auth-file), or listen on 127.0.0.1", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelWarn)}
	if ready != nil {
		ready(l.Addr().String())
	}
	s.o.Logger.Info("dashboard serving", "addr", l.Addr().String(), "ledger", s.o.Ledger, "login", s.o.Auth.Enabled())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		s.f.run(followCtx, s.o.Poll, s.announce)
	}()
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	close(s.done)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shut); err == nil && serr != nil {
		err = fmt.Errorf("dashboard: shutdown: %w", serr)
	}
	stopFollowing()
	<-followed
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Handler is the dashboard's HTTP handler: read-only (GET and HEAD; any
// other method is 405) and behind the login, if there is one.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /interval/{id}", s.interval)
	mux.HandleFunc("GET /interval/{id}/book.json", s.bookJSON)
	mux.HandleFunc("GET /participant/{id}", s.participant)
	mux.HandleFunc("GET /export/statements.csv", s.statementsCSV)
	mux.HandleFunc("GET /export/trades.csv", s.tradesCSV)
	mux.HandleFunc("GET /events", s.events)
	readOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard is read-only: "+r.Method+" is not allowed (GET or HEAD)", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
		mux.ServeHTTP(w, r)
	})
	return s.o.Auth.wrap(readOnly)
}

func (s *Server) currency() string {
	if c := s.model.Currency(); c != "" {
		return c
	}
	return s.o.Currency
}

func (s *Server) money(d decimal.Decimal) string { return settlement.Format(d, s.o.Minor) }

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"money": s.money,
		"kwh":   func(wh int64) string { return decimal.New(wh, -3).String() },
		"pct":   func(share decimal.Decimal) string { return settlement.Format(share.Shift(2), 1) },
		"dec":   func(d decimal.Decimal) string { return d.String() },
		// label is a StatementFields name as a column heading, with
		// the currency for money: "import kWh", "net EUR".
		"label": func(name string) string {
			if n, ok := strings.CutSuffix(name, "_kwh"); ok {
				return strings.ReplaceAll(n, "_", " ") + " kWh"
			}
			return strings.ReplaceAll(name, "_", " ") + " " + s.currency()
		},
	}
}

// render writes page with data, status 200, or an error page if it fails.
func (s *Server) render(w http.ResponseWriter, page string, status int, data map[string]any) {
	data["Currency"] = s.currency()
	data["Live"] = s.o.Live != nil
	var b bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		s.o.Logger.Error("page not rendered", "page", page, "err", err)
		http.Error(w, "page not rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	s.render(w, "error", status, map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// recentShown is how many intervals the overview's charts and table show.
const recentShown = 48

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	recent := s.model.Recent(recentShown)
	var price, volume []chartPoint
	for i := len(recent) - 1; i >= 0; i-- {
		iv := recent[i]
		label := iv.ID
		price = append(price, chartPoint{label, iv.Price, iv.Traded})
		volume = append(volume, chartPoint{label, iv.VolumeKWh, iv.Cleared})
	}
	data := map[string]any{
		"Title":       "Overview",
		"Totals":      s.model.Totals(),
		"Recent":      recent,
		"Known":       s.model.Intervals(),
		"PriceChart":  barChart("clearing price per kWh", s.currency()+"/kWh", price, 4),
		"VolumeChart": barChart("traded volume per interval", "kWh", volume, 3),
	}
	if s.o.Live != nil {
		data["Gateways"] = s.o.Live.Gateways()
	}
	s.render(w, "overview", http.StatusOK, data)
}

// orderRow is one order of a sealed book, as the interval page shows it.
type orderRow struct {
	Gateway, Side, KWh, Price string
}

// detail finds the interval the request names, or writes the error page
// and returns false.
func (s *Server) detail(w http.ResponseWriter, r *http.Request) (Detail, bool) {
	id := r.PathValue("id")
	start, err := market.ParseInterval(id)
	if err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Sprintf("%q is not an interval id: %v", id, err))
		return Detail{}, false
	}
	d, kept, known := s.model.Detail(market.IntervalID(start))
	if !known {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("interval %s is not in this ledger (%s): it was not cleared or settled here, or not yet", id, s.o.Ledger))
		return Detail{}, false
	}
	if !kept {
		if d, err = s.readDetail(d.ID); err != nil {
			s.fail(w, http.StatusInternalServerError, fmt.Sprintf("interval %s: reading the ledger: %v", id, err))
			return Detail{}, false
		}
	}
	return d, true
}

func (s *Server) interval(w http.ResponseWriter, r *http.Request) {
	d, ok := s.detail(w, r)
	if !ok {
		return
	}
	data := map[string]any{"Title": "Interval " + d.ID, "D": d}
	b, res, err := decodeBookResult(d)
	if err != nil {
		data["BookErr"] = err.Error()
	}
	data["Book"], data["Res"] = b, res
	if s.o.Live != nil {
		data["Verifications"] = s.o.Live.Verifications(d.ID)
	}
	s.render(w, "interval", http.StatusOK, data)
}

// clearBook is a book as p2pgrid clear reads it.
type clearBook struct {
	Interval string       `json:"interval"`
	Orders   []clearOrder `json:"orders"`
}

type clearOrder struct {
	ID          string `json:"id"`
	Participant string `json:"participant"`
	Side        string `json:"side"`
	KWh         string `json:"kwh"`
	Price       string `json:"price"`
}

// bookJSON is /interval/{id}/book.json: the interval's sealed book as
// p2pgrid clear reads it (each gateway's order under the gateway's id, as
// the clearer cleared it), so that anyone can clear it again and compare
// book_sha256 with the digest the result names.
func (s *Server) bookJSON(w http.ResponseWriter, r *http.Request) {
	d, ok := s.detail(w, r)
	if !ok {
		return
	}
	b, _, err := decodeBookResult(d)
	switch {
	case err != nil:
		s.fail(w, http.StatusUnprocessableEntity, fmt.Sprintf("interval %s: %v", d.ID, err))
		return
	case b == nil:
		s.fail(w, http.StatusNotFound, fmt.Sprintf("interval %s: the sealed book is not in this ledger", d.ID))
		return
	case b.Omitted:
		s.fail(w, http.StatusNotFound, fmt.Sprintf("interval %s: the book was too large for a ledger record; the ledger keeps its digest only", d.ID))
		return
	}
	out := clearBook{Interval: d.ID, Orders: []clearOrder{}}
	for _, o := range b.Rows {
		out.Orders = append(out.Orders, clearOrder{ID: o.Gateway, Participant: o.Gateway, Side: o.Side, KWh: o.KWh, Price: o.Price})
	}
	body, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="book-`+strings.NewReplacer(":", "").Replace(d.ID)+`.json"`)
	w.Write(append(body, '\n'))
}

// readDetail reads the detail of an interval older than the model keeps
// from the ledger.
func (s *Server) readDetail(id string) (Detail, error) {
	d, _, _ := s.model.Detail(id)
	get := func(iv string) (*Detail, error) {
		if t, err := market.ParseIntervalLoose(iv); err != nil || market.IntervalID(t) != id {
			return nil, err
		}
		return &d, nil
	}
	_, err := ledger.Scan(s.o.Ledger, 1, func(r ledger.Record) error {
		if _, err := decodeInto(r, get); err != nil {
			// Skipped, as the model skips it (and logged it).
			s.o.Logger.Debug("ledger record not shown", "err", err)
		}
		return nil
	})
	return d, err
}

func (s *Server) period(w http.ResponseWriter, r *http.Request) (from, to time.Time, ok bool) {
	to = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("%s=%q is not a time as RFC 3339 writes it (2026-11-22T00:00:00Z)", p.name, v))
			return from, to, false
		}
		*p.t = t
	}
	return from, to, true
}

// statements reads the statements of the period, participant's only
// unless "", with a total per participant, rounded as p2pgrid
// settlements rounds them.
func (s *Server) statements(from, to time.Time, participant string) ([]report.Row, *settlement.Community, error) {
	rows, c, _, err := report.FromLedger(s.o.Ledger, from, to, participant)
	if err != nil {
		return nil, nil, err
	}
	rows = append(rows, report.Totals(rows)...)
	for i := range rows {
		rows[i].Statement = rows[i].Rounded(s.o.Minor)
	}
	return rows, c, nil
}

func (s *Server) participant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	from, to, ok := s.period(w, r)
	if !ok {
		return
	}
	rows, _, err := s.statements(from, to, id)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Sprintf("participant %s: reading the ledger: %v", id, err))
		return
	}
	if len(rows) == 0 {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("participant %q has no statement in this ledger for the period chosen", id))
		return
	}
	cols := []string{"bought_kwh", "sold_kwh", "import_kwh", "export_kwh", "imbalance_kwh", "paid", "received", "fees", "grid_cost", "grid_credit", "net", "baseline", "saving"}
	var table [][]string
	for _, row := range rows {
		cells := []string{row.Interval}
		for _, c := range cols {
			cells = append(cells, report.Cell(row, c, s.o.Minor, false))
		}
		table = append(table, append(cells, report.NoFigures(row)))
	}
	q := r.URL.Query()
	s.render(w, "participant", http.StatusOK, map[string]any{
		"Title": "Statement of " + id, "ID": id, "Cols": cols, "Table": table, "Total": table[len(table)-1],
		"From": q.Get("from"), "To": q.Get("to"), "Query": r.URL.RawQuery,
	})
}

func csvHeaders(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

func (s *Server) statementsCSV(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.period(w, r)
	if !ok {
		return
	}
	rows, c, err := s.statements(from, to, r.URL.Query().Get("participant"))
	if err != nil {
		http.Error(w, "reading the ledger: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := report.Write(&b, rows, c, "csv", s.o.Minor, false, s.currency()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	csvHeaders(w, "statements.csv")
	w.Write(b.Bytes())
}

// TradeColumns are the columns of /export/trades.csv.
var TradeColumns = []string{"interval", "id", "seller", "buyer", "traded_kwh", "kwh", "price", "amount", "fee", "compensation", "currency"}

func (s *Server) tradesCSV(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.period(w, r)
	if !ok {
		return
	}
	var b bytes.Buffer
	if err := writeTrades(&b, s.o.Ledger, from, to, s.currency()); err != nil {
		http.Error(w, "reading the ledger: "+err.Error(), http.StatusInternalServerError)
		return
	}
	csvHeaders(w, "trades.csv")
	w.Write(b.Bytes())
}

// writeTrades writes the trades of the intervals settled in [from, to) as
// CSV, exact: kWh delivered (and traded), the price and the money as the
// ledger holds them.
func writeTrades(w io.Writer, dir string, from, to time.Time, currency string) error {
	cw := csv.NewWriter(w)
	cw.Write(TradeColumns)
	_, err := report.ScanSettled(dir, from, to, func(st *settlement.IntervalSettlement) {
		for _, t := range st.Trades {
			cw.Write([]string{st.Interval, t.ID, t.Seller, t.Buyer, decimal.New(t.Wh, -3).String(), decimal.New(t.DeliveredWh, -3).String(),
				t.Price.String(), t.Amount.String(), t.Fee.String(), t.Compensation.String(), currency})
		}
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
