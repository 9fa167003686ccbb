package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/internal/neighbourhood"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
	"github.com/p2pgrid/p2pgrid/settlement/report"
)

// browser starts Debian's chromium, headless, for the test; the returned
// context runs actions in one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := testtool.Require(t, "chromium", "apt-get install chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium %s did not start: %v", path, err)
	}
	return ctx
}

// screenshots is where the test's screenshots go: $P2PGRID_SCREENSHOTS,
// else the test's temporary directory.
func screenshots(t *testing.T) string {
	if dir := os.Getenv("P2PGRID_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, js string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func open(t *testing.T, ctx context.Context, url, ready string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
		t.Fatalf("open %s (waiting for %s): %v", url, ready, err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, deadline)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// settledIntervals reads the ids of the intervals settled in the ledger.
func settledIntervals(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	_, err := ledger.Scan(dir, 1, func(r ledger.Record) error {
		if r.Kind == record.KindInterval {
			ids = append(ids, r.Key)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
		t.Fatal(err)
	}
	return ids
}

// The dashboard in a real browser over a real demo neighbourhood: while
// the demo runs, the overview shows the live feed and takes each newly
// settled interval without a reload; then, over the ledger the demo left
// (p2pgrid operator's way), every page shows what the ledger holds.
func TestDashboardInBrowser(t *testing.T) {
	testtool.Integration(t)
	ctx := browser(t)
	shots := screenshots(t)

	data := t.TempDir()
	var out testtool.Output
	demoCtx, stopDemo := context.WithCancel(context.Background())
	defer stopDemo()
	f := demoFlags{homes: 3, interval: 3 * time.Second, data: data, seed: 1, http: "127.0.0.1:0", dash: dashboardFlags{minor: 2}}
	demoDone := make(chan error, 1)
	go func() { demoDone <- runDemo(demoCtx, f, &out, slog.New(slog.DiscardHandler)) }()
	addrRE := regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:[0-9]+/)`)
	waitFor(t, "the demo prints the dashboard's address", time.Minute, func() bool { return addrRE.MatchString(out.String()) })
	base := addrRE.FindStringSubmatch(out.String())[1]
	dir := filepath.Join(data, neighbourhood.Operator, "ledger")
	waitFor(t, "two intervals settled in the operator's ledger", 2*time.Minute, func() bool { return len(settledIntervals(t, dir)) >= 2 })

	// Live: the gateways' status from the demo, and a new interval's row
	// appears without a reload.
	open(t, ctx, base, "#recent tbody tr[data-interval]")
	if n := eval[int](t, ctx, `document.querySelectorAll('#gateways tr[data-gateway] td.ok').length`); n != 4 {
		t.Errorf("%d gateways shown online, want the operator and 3 homes", n)
	}
	first := eval[string](t, ctx, `document.querySelector('#recent tbody tr').dataset.interval`)
	eval[bool](t, ctx, `window.p2pgridTestMark = true`)
	waitFor(t, "a newer interval's row on the open overview", 2*time.Minute, func() bool {
		return eval[string](t, ctx, `document.querySelector('#recent tbody tr').dataset.interval`) > first
	})
	if !eval[bool](t, ctx, `window.p2pgridTestMark === true && Number(document.body.dataset.updates) >= 1`) {
		t.Error("the overview was reloaded, not updated in place by the event")
	}
	shoot(t, ctx, shots, "overview-live")
	open(t, ctx, base+"interval/"+first, "#verification")
	if n := eval[int](t, ctx, `document.querySelectorAll('#verification td.ok').length`); n != 4 {
		t.Errorf("interval %s: %d gateways shown as verified, want 4", first, n)
	}
	shoot(t, ctx, shots, "interval-live")

	stopDemo()
	select {
	case <-demoDone:
	case <-time.After(time.Minute):
		t.Fatal("the demo did not stop within a minute of its cancel")
	}

	// The ledger as the demo left it, served as p2pgrid operator serves
	// it, behind a token: the browser logs in with ?token= once, and its
	// cookie carries the pages, the event stream and the exports.
	opCtx, stopOp := context.WithCancel(context.Background())
	defer stopOp()
	var opOut testtool.Output
	df := dashboardFlags{minor: 2, token: "browser-test-token"}
	o, err := df.options(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opDone := make(chan error, 1)
	port := testtool.FreePort(t)
	go func() { opDone <- serveDashboard(opCtx, o, fmt.Sprintf("127.0.0.1:%d", port), &opOut) }()
	waitFor(t, "p2pgrid operator prints its address", time.Minute, func() bool { return strings.Contains(opOut.String(), "dashboard: http://") })
	base = fmt.Sprintf("http://127.0.0.1:%d/", port)

	rows, community, currency, err := report.FromLedger(dir, time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "")
	if err != nil {
		t.Fatal(err)
	}
	totals := report.Totals(rows)
	var iv *settlement.IntervalSettlement
	var clearing record.Clearing
	books := map[string]record.Book{}
	_, err = ledger.Scan(dir, 1, func(r ledger.Record) error {
		switch r.Kind {
		case record.KindBook:
			b, err := record.DecodeBook(r.Data)
			if err != nil {
				return err
			}
			books[b.Interval] = b
		case record.KindClearing:
			if c, err := record.DecodeClearing(r.Data); err == nil && c.Price.IsSet() && iv == nil {
				clearing = c
			}
		case record.KindInterval:
			v, err := record.Decode(r)
			if err != nil {
				return err
			}
			if s := v.(*settlement.IntervalSettlement); iv == nil && len(s.Trades) > 0 && s.Interval == clearing.Interval {
				iv = s
			}
		}
		return nil
	})
	if err != nil || iv == nil {
		t.Fatalf("no settled interval with trades in the ledger (%v)", err)
	}

	open(t, ctx, base, "body")
	if got := eval[string](t, ctx, `document.body.textContent`); !strings.Contains(got, "login required") {
		t.Errorf("without the token: %q, want a login required", got)
	}
	open(t, ctx, base+"?token=browser-test-token", "#recent")
	if got := eval[string](t, ctx, `location.href`); got != base {
		t.Errorf("after ?token=: at %s, want redirected to %s", got, base)
	}
	waitFor(t, "the event stream connected with the cookie", time.Minute, func() bool {
		return eval[string](t, ctx, `document.getElementById('live').textContent`) == "live"
	})
	if n := eval[int](t, ctx, `document.querySelectorAll('#gateways tr[data-gateway]').length`); n != 0 ||
		!strings.Contains(eval[string](t, ctx, `document.getElementById('gateways').textContent`), "not known from a ledger alone") {
		t.Error("over a ledger alone, the overview should say the gateways' status is not known")
	}
	sel := fmt.Sprintf(`document.querySelector('#recent tr[data-interval="%s"]')`, iv.Interval)
	if got := eval[string](t, ctx, sel+`.querySelector('.price').textContent`); got != clearing.Price.Value().String() {
		t.Errorf("overview: price of %s %q, the ledger's %s", iv.Interval, got, clearing.Price)
	}
	if got := eval[string](t, ctx, sel+`.querySelector('.volume').textContent`); got != clearing.VolumeKWh.Value().String() {
		t.Errorf("overview: volume of %s %q, the ledger's %s", iv.Interval, got, clearing.VolumeKWh)
	}
	for _, home := range totals {
		want := settlement.Format(home.Saving, 2)
		got := eval[string](t, ctx, fmt.Sprintf(`document.querySelector('#homes tr[data-participant="%s"] .saving').textContent`, home.Participant))
		if got != want {
			t.Errorf("overview: %s saved %q, the ledger's %s (exact %s)", home.Participant, got, want, home.Saving)
		}
	}
	if got, want := eval[string](t, ctx, `document.getElementById('saving-total').textContent`), settlement.Format(community.Saving, 2)+" "+currency; got != want {
		t.Errorf("overview: total saving %q, the ledger's %q", got, want)
	}
	if got, want := eval[string](t, ctx, `document.getElementById('money-kept').textContent`), settlement.Format(community.MoneyKeptLocally, 2)+" "+currency; got != want {
		t.Errorf("overview: money kept %q, the ledger's %q", got, want)
	}
	// The local share (docs/settlement.md), per interval's possible
	// exchange, as p2pgrid settlements adds it up from the same ledger.
	if got, want := eval[string](t, ctx, `document.getElementById('exchange-share').textContent`), settlement.Format(community.ExchangeShare.Shift(2), 1)+" %"; got != want {
		t.Errorf("overview: local share %q, the ledger's %q (%d of %d Wh)", got, want, community.ExchangedWh(), community.PossibleLocalWh)
	}
	shoot(t, ctx, shots, "overview")

	open(t, ctx, base+"interval/"+iv.Interval, "#trades")
	tr := iv.Trades[0]
	row := fmt.Sprintf(`document.querySelector('#trades tr[data-trade="%s"]')`, tr.ID)
	got := eval[string](t, ctx, row+`.querySelector('.seller').textContent + ' ' + `+row+`.querySelector('.buyer').textContent + ' ' + `+
		row+`.querySelector('.kwh').textContent + ' ' + `+row+`.querySelector('.price').textContent + ' ' + `+row+`.querySelector('.amount').textContent`)
	if want := strings.Join([]string{tr.Seller, tr.Buyer, decimal.New(tr.DeliveredWh, -3).String(), tr.Price.String(), tr.Amount.String()}, " "); got != want {
		t.Errorf("interval %s: trade %q, the ledger's %q", iv.Interval, got, want)
	}
	// The sealed book: its digest, its orders, and a book.json that
	// p2pgrid clear clears to that digest.
	book, ok := books[iv.Interval]
	if !ok {
		t.Fatalf("no book record of %s in the clearer's ledger", iv.Interval)
	}
	if got := eval[string](t, ctx, `document.getElementById('book-digest').textContent`); got != book.BookSHA256 {
		t.Errorf("interval %s: book digest %q, the ledger's %q", iv.Interval, got, book.BookSHA256)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#book tr.order').length`); int64(n) != book.Orders {
		t.Errorf("interval %s: %d orders shown, the book has %d", iv.Interval, n, book.Orders)
	}
	if sig := eval[string](t, ctx, `document.querySelector('#result .sig').textContent`); len(sig) != 128 {
		t.Errorf("interval %s: signature %q, want 64 bytes in hex", iv.Interval, sig)
	}
	bookFile := filepath.Join(t.TempDir(), "book.json")
	if err := os.WriteFile(bookFile, []byte(eval[string](t, ctx, `fetch('/interval/`+iv.Interval+`/book.json').then(r => r.text())`, chromedp.EvalAwaitPromise)), 0o644); err != nil {
		t.Fatal(err)
	}
	var cleared, clearErr strings.Builder
	if code := run([]string{"clear", bookFile}, strings.NewReader(""), &cleared, &clearErr); code != 0 {
		t.Fatalf("p2pgrid clear book.json: exit %d: %s", code, clearErr.String())
	}
	if !strings.Contains(cleared.String(), `"book_sha256":"`+book.BookSHA256+`"`) {
		t.Errorf("p2pgrid clear of the page's book.json: %s; want book_sha256 %s", cleared.String(), book.BookSHA256)
	}
	if !strings.Contains(eval[string](t, ctx, `document.getElementById('verification').textContent`), "not known from a ledger alone") {
		t.Error("interval page over a ledger alone: no note that verification is not known")
	}
	shoot(t, ctx, shots, "interval")

	// The statement of the buyer of that trade, over the whole ledger.
	var home report.Row
	for _, r := range totals {
		if r.Participant == tr.Buyer {
			home = r
		}
	}
	open(t, ctx, base+"participant/"+home.Participant, "#total")
	cells := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#total td')).map(td => td.textContent)`)
	head := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('table.statement thead th')).map(th => th.dataset.col || th.textContent)`)
	rounded := report.Row{Interval: "total", Statement: home.Rounded(2)}
	for i, col := range head {
		if i == 0 || col == "no figures" || i >= len(cells) {
			continue
		}
		if want := report.Cell(rounded, col, 2, false); cells[i] != want {
			t.Errorf("statement of %s: %s %q, the ledger's %q", home.Participant, col, cells[i], want)
		}
	}
	shoot(t, ctx, shots, "participant")

	// The export is p2pgrid settlements --format csv, byte for byte.
	csvText := eval[string](t, ctx, `fetch('/export/statements.csv').then(r => r.text())`, chromedp.EvalAwaitPromise)
	var want strings.Builder
	if code := run([]string{"settlements", "--ledger", dir, "--format", "csv"}, strings.NewReader(""), &want, &want); code != 0 {
		t.Fatalf("p2pgrid settlements: exit %d: %s", code, want.String())
	}
	if csvText != want.String() {
		t.Errorf("statements.csv differs from p2pgrid settlements --format csv:\n%s\nwant:\n%s", csvText, want.String())
	}

	stopOp()
	if err := <-opDone; err != nil {
		t.Errorf("operator dashboard after shutdown: %v", err)
	}
}
