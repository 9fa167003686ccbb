package dashboard

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

func newTestServer(t *testing.T, dir string, auth Auth) *Server {
	t.Helper()
	s, err := New(Options{Ledger: dir, Minor: 2, Auth: auth, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CatchUp(); err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRefusesNonLoopbackWithoutLogin(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	s := newTestServer(t, dir, Auth{})
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8080"} {
		err := s.Run(context.Background(), addr, nil)
		if err == nil || !strings.Contains(err.Error(), "without a login") || !strings.Contains(err.Error(), "--token") {
			t.Errorf("Run(%q) without a login: %v, want a refusal naming --token", addr, err)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "localhost:80": true, "0.0.0.0:80": false, ":80": false, "10.0.0.1:80": false, "nonsense": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestLogin(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	h := newTestServer(t, dir, Auth{Token: "s3cret", Users: map[string]string{"op": "pw"}}).Handler()
	if w := get(t, h, "GET", "/"); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("no login: %d %q, want 401 with WWW-Authenticate", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := get(t, h, "GET", "/", "Authorization", "Bearer wrong"); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", w.Code)
	}
	if w := get(t, h, "GET", "/", "Authorization", "Bearer s3cret"); w.Code != http.StatusOK {
		t.Errorf("bearer token: %d, want 200", w.Code)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("op", "pw")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("basic auth: %d, want 200", w.Code)
	}
	r.SetBasicAuth("op", "nope")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("basic auth, wrong password: %d, want 401", w.Code)
	}
	w = get(t, h, "GET", "/participant/bob?token=s3cret&from=2026-11-22T00:00:00Z")
	cookies := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/participant/bob?from=2026-11-22T00%3A00%3A00Z" || len(cookies) != 1 {
		t.Fatalf("?token=: %d to %q with %d cookies; want 303 to the URL without the token, a cookie", w.Code, w.Header().Get("Location"), len(cookies))
	}
	if w := get(t, h, "GET", "/", "Cookie", cookies[0].String()); w.Code != http.StatusOK {
		t.Errorf("with the cookie: %d, want 200", w.Code)
	}
	if w := get(t, h, "GET", "/?token=wrong"); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong ?token=: %d, want 401", w.Code)
	}
}

func TestReadUsers(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "users")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users, err := ReadUsers(write("# operators\nop:pa:ss\n\nann:x\n"))
	if err != nil || users["op"] != "pa:ss" || users["ann"] != "x" || len(users) != 2 {
		t.Errorf("users %v, %v", users, err)
	}
	for body, want := range map[string]string{"op\n": "line 1: want user:password", "a:b\na:c\n": `line 2: user "a" twice`, "# none\n": "no user:password line", ":pw\n": "line 1"} {
		if _, err := ReadUsers(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadUsers(%q): %v, want %q", body, err, want)
		}
	}
}

func TestReadOnlyAndErrors(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	h := newTestServer(t, dir, Auth{}).Handler()
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		if w := get(t, h, m, "/"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q; want 405, GET, HEAD", m, w.Code, w.Header().Get("Allow"))
		}
	}
	if w := get(t, h, "HEAD", "/"); w.Code != http.StatusOK {
		t.Errorf("HEAD /: %d", w.Code)
	}
	w := get(t, h, "GET", "/interval/2026-11-23T10:00Z")
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "interval 2026-11-23T10:00Z is not in this ledger") {
		t.Errorf("unknown interval: %d %s", w.Code, w.Body)
	}
	w = get(t, h, "GET", "/interval/yesterday")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "is not an interval id") {
		t.Errorf("bad interval id: %d %s", w.Code, w.Body)
	}
	w = get(t, h, "GET", "/participant/bob?from=monday")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "from=&#34;monday&#34; is not a time") {
		t.Errorf("bad from: %d %s", w.Code, w.Body)
	}
	if w := get(t, h, "GET", "/participant/zed"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "has no statement") {
		t.Errorf("unknown participant: %d %s", w.Code, w.Body)
	}
	if w := get(t, h, "GET", "/static/nothing.js"); w.Code != http.StatusNotFound {
		t.Errorf("unknown asset: %d", w.Code)
	}
}

func TestPagesShowTheFigures(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	h := newTestServer(t, dir, Auth{}).Handler()
	for target, wants := range map[string][]string{
		"/": {`id="local-share">60.0 %`, `id="money-kept">0.25 EUR`, `id="saving-total">0.38 EUR`, // 0.375 half to even
			`<td class="saving">0.18</td>`, `<td class="saving">0.20</td>`, // ann 0.175, bob 0.2
			`href="/interval/2026-11-22T12:15Z"`, `<td class="price">0.2</td>`, "not known from a ledger alone", "<svg"},
		"/interval/2026-11-22T12:15Z": {`id="price">0.2 EUR/kWh`, `id="volume">0.5 kWh`, `<td class="seller">ann</td><td class="buyer">bob</td>`,
			`<td class="amount">0.1</td>`, `<td class="imbalance">-1</td>`, "The sealed book is not in this ledger", "The signed result is not in this ledger"},
		"/participant/bob":     {`<tr class="total" id="total"><td>total</td>`, "<td>-0.55</td>", "print.css"},
		"/static/dashboard.js": {"EventSource"},
	} {
		w := get(t, h, "GET", target)
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("%s lacks %q", target, want)
			}
		}
	}
}

func readCSV(t *testing.T, h http.Handler, target string) [][]string {
	t.Helper()
	w := get(t, h, "GET", target)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("%s: %d %s", target, w.Code, w.Header().Get("Content-Type"))
	}
	recs, err := csv.NewReader(w.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// The exports' decimals are the ledger's, rounded as p2pgrid settlements
// rounds statements: money half to even to the minor unit.
func TestCSVExports(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	h := newTestServer(t, dir, Auth{}).Handler()
	recs := readCSV(t, h, "/export/statements.csv?participant=ann&from=2026-11-22T12:15:00Z")
	col := func(name string) int { return slices.Index(recs[0], name) }
	// ann's 12:15 saving is 0.075: 0.08, half to even.
	if len(recs) != 3 || recs[1][0] != "2026-11-22T12:15Z" || recs[1][col("saving")] != "0.08" || recs[1][col("sold_kwh")] != "0.5" ||
		recs[2][0] != "total" || recs[2][col("received")] != "0.10" || recs[1][col("currency")] != "EUR" {
		t.Errorf("statements.csv of ann from 12:15: %v", recs)
	}
	recs = readCSV(t, h, "/export/trades.csv")
	if !slices.Equal(recs[0], TradeColumns) || len(recs) != 3 {
		t.Fatalf("trades.csv: %v", recs)
	}
	if got := strings.Join(recs[2], ","); got != "2026-11-22T12:15Z,2026-11-22T12:15Z/s1/b1,ann,bob,0.5,0.5,0.2,0.1,0,0,EUR" {
		t.Errorf("trades.csv row %s", got)
	}
	if recs := readCSV(t, h, "/export/trades.csv?to=2026-11-22T12:15:00Z"); len(recs) != 2 || recs[1][0] != "2026-11-22T12:00Z" {
		t.Errorf("trades.csv to 12:15: %v", recs)
	}
}

// An interval older than the detail kept is read from the ledger.
func TestOldIntervalFromLedger(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	s, err := New(Options{Ledger: dir, Minor: 2, KeepDetail: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CatchUp(); err != nil {
		t.Fatal(err)
	}
	w := get(t, s.Handler(), "GET", "/interval/2026-11-22T12:00Z")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<td class="amount">0.15</td>`) {
		t.Errorf("old interval: %d, lacks its trade of 0.15:\n%s", w.Code, w.Body)
	}
}

// A record appended while the dashboard runs is announced on /events.
func TestEventsAnnounceNewIntervals(t *testing.T) {
	dir, l := testLedger(t, twoIntervals[0])
	s := newTestServer(t, dir, Auth{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, "127.0.0.1:0", func(a string) { addrs <- a }) }()
	addr := <-addrs
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("/events content type %q", ct)
	}
	appendSettled(t, l, twoIntervals[1])
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("/events ended before announcing 12:15")
			}
			if line == "data: 2026-11-22T12:15Z" {
				cancel()
				if err := <-ran; err != nil {
					t.Errorf("Run after cancel: %v", err)
				}
				return
			}
		case <-deadline:
			t.Fatal("no event for the interval appended within 30s")
		}
	}
}

// The commented example of docs/operator.md reads, with its two users.
func TestExampleUsersFile(t *testing.T) {
	users, err := ReadUsers("../configs/examples/dashboard.users")
	if err != nil || len(users) != 2 || users["operator"] == "" || users["treasurer"] == "" {
		t.Errorf("configs/examples/dashboard.users: %v, %v; want the users operator and treasurer", users, err)
	}
}

// A book record the dashboard cannot read is named on the interval page,
// which still shows the rest; its book.json is refused with the reason.
func TestBadBookRecord(t *testing.T) {
	dir, l := testLedger(t, twoIntervals...)
	bad := `{"book_sha256":"` + strings.Repeat("ab", 32) + `","interval":"2026-11-22T12:15Z","message":{"v":1},"orders":2}`
	if _, err := l.Append(ledger.Entry{Kind: record.KindBook, Key: "2026-11-22T12:15Z", Time: t0.Add(time.Hour), Data: []byte(bad)}); err != nil {
		t.Fatal(err)
	}
	h := newTestServer(t, dir, Auth{}).Handler()
	w := get(t, h, "GET", "/interval/2026-11-22T12:15Z")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<p class="error">book record: `) || !strings.Contains(w.Body.String(), `<td class="seller">ann</td>`) {
		t.Errorf("interval with a bad book record: %d\n%s", w.Code, w.Body)
	}
	if w := get(t, h, "GET", "/interval/2026-11-22T12:15Z/book.json"); w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "book record: ") {
		t.Errorf("book.json of a bad book record: %d %s", w.Code, w.Body)
	}
	if w := get(t, h, "GET", "/interval/2026-11-22T12:00Z/book.json"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "the sealed book is not in this ledger") {
		t.Errorf("book.json without a book record: %d %s", w.Code, w.Body)
	}
}

// A browser that reconnects with the id of the last event it saw, behind
// the ledger, is told at once to catch up; one that is up to date is not.
func TestEventsAfterReconnect(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	s := newTestServer(t, dir, Auth{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	read := func(lastID string) []string {
		req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
		req.Header.Set("Last-Event-ID", lastID)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() { // until the deadline ends the stream
			lines = append(lines, sc.Text())
		}
		return lines
	}
	seq := fmt.Sprint(s.Model().Seq())
	if got := read("3"); !slices.Contains(got, "id: "+seq) || !slices.Contains(got, "event: interval") {
		t.Errorf("reconnect behind the ledger: %q, want an interval event with id %s", got, seq)
	}
	if got := read(seq); slices.Contains(got, "event: interval") || !slices.Contains(got, "retry: 2000") {
		t.Errorf("reconnect up to date: %q, want the retry line and no event", got)
	}
}
