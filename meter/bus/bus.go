package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/goburrow/modbus"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout         = time.Second
	DefaultUnitSwitchDelay = 20 * time.Millisecond // RTU and RTU over TCP only
	DefaultRetries         = 2
	DefaultBackoff         = 100 * time.Millisecond
)

// NoRetries, as Options.Retries, makes every read a single attempt: a
// timeout or I/O error is returned at once. (A zero Retries means
// DefaultRetries; any negative value means none, and NoRetries says so.)
const NoRetries = -1

// maxBackoff caps the doubling of Options.Backoff.
const maxBackoff = 30 * time.Second

// MaxCount is the most registers one read may ask for (the Modbus limit).
const MaxCount = 125

// Options tune a Bus. The zero value of each field means its default; a
// negative UnitSwitchDelay, Retries or Backoff means none.
type Options struct {
	// Timeout is how long one request waits for its complete reply,
	// connecting included. Default 1s. A timeout=... parameter in the URL
	// takes precedence; a nearer context deadline shortens it. On RTU,
	// which has no transaction ids, set it above the slowest device's reply
	// time: a reply later than Timeout plus Backoff can still be taken for
	// the answer to the next request.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// UnitSwitchDelay is a pause before a request to a different unit id
	// than the previous request's. Default 20ms on RTU and RTU over TCP,
	// none on TCP.
	UnitSwitchDelay time.Duration `yaml:"unit_switch_delay" json:"unit_switch_delay"`
	// Retries is how many more attempts a read makes after a timeout, an
	// I/O error, a malformed reply or exception 6 (server device busy).
	// 0 means the default, 2; NoRetries (or any negative value) means a
	// single attempt, for probing units that may not exist (meter scan).
	Retries int `yaml:"retries" json:"retries"`
	// Backoff is the pause before the first retry, doubled for each further
	// retry, plus up to a tenth of jitter. Default 100ms.
	Backoff time.Duration `yaml:"backoff" json:"backoff"`
	// Logger gets debug records of retries and reconnects. Nil discards.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Stats are a Bus's counters since Open, for metrics.
type Stats struct {
	Requests   uint64 // reads asked for (ReadHolding and ReadInput calls)
	Failures   uint64 // reads that returned an error
	Retries    uint64 // extra attempts made after a failed attempt
	Reconnects uint64 // connections dropped after a fault, to be reopened by the next attempt
	Exceptions uint64 // exception replies received, busy ones included
}

// Bus is one Modbus connection or serial line, shared by the unit ids on
// it. Its methods are safe for concurrent use; requests take turns.
type Bus struct {
	url         string
	ep          endpoint
	timeout     time.Duration
	switchDelay time.Duration
	retries     int
	backoff     time.Duration
	log         *slog.Logger

	// wire holds a token while one goroutine owns the connection; the
	// fields below it are guarded by it.
	wire     chan struct{}
	link     *link
	lastUnit int // unit id of the previous request, -1 before the first
	closed   bool

	// sleep pauses for d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	requests, failures, retried, reconnects, exceptions atomic.Uint64
}

// Open validates rawURL and opts and returns a Bus for it. It does not
// connect: the first request does.
func Open(rawURL string, opts Options) (*Bus, error) {
	ep, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("modbus %s: timeout %s is negative", rawURL, opts.Timeout)
	}
	b := &Bus{
		url:      rawURL,
		ep:       ep,
		timeout:  orDefault(opts.Timeout, DefaultTimeout),
		retries:  opts.Retries,
		backoff:  orDefault(opts.Backoff, DefaultBackoff),
		log:      opts.Logger,
		wire:     make(chan struct{}, 1),
		lastUnit: -1,
		sleep:    sleepContext,
	}
	if ep.timeout > 0 {
		b.timeout = ep.timeout
	}
	if ep.scheme != schemeTCP {
		b.switchDelay = orDefault(opts.UnitSwitchDelay, DefaultUnitSwitchDelay)
	} else {
		b.switchDelay = max(opts.UnitSwitchDelay, 0)
	}
	switch {
	case b.retries == 0:
		b.retries = DefaultRetries
	case b.retries < 0:
		b.retries = 0
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("bus", rawURL)
	b.link = newLink(ep, b.timeout, b.log)
	return b, nil
}

// orDefault returns def for 0, 0 for a negative d, and d otherwise.
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// URL returns the URL the Bus was opened with.
func (b *Bus) URL() string { return b.url }

// Stats returns the counters so far.
func (b *Bus) Stats() Stats {
	return Stats{
		Requests:   b.requests.Load(),
		Failures:   b.failures.Load(),
		Retries:    b.retried.Load(),
		Reconnects: b.reconnects.Load(),
		Exceptions: b.exceptions.Load(),
	}
}

// ReadHolding reads count (1..125) holding registers from addr on unit
// (function 3).
func (b *Bus) ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error) {
	return b.read(ctx, modbus.FuncCodeReadHoldingRegisters, unit, addr, count)
}

// ReadInput reads count (1..125) input registers from addr on unit
// (function 4).
func (b *Bus) ReadInput(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error) {
	return b.read(ctx, modbus.FuncCodeReadInputRegisters, unit, addr, count)
}

// Close closes the connection, waiting for a request in flight to finish.
// Reads after Close fail.
func (b *Bus) Close() error {
	b.wire <- struct{}{}
	defer b.release()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.link.close()
}

func (b *Bus) read(ctx context.Context, function byte, unit uint8, addr, count uint16) ([]uint16, error) {
	b.requests.Add(1)
	regs, err := b.readRetrying(ctx, function, unit, addr, count)
	if err != nil {
		b.failures.Add(1)
		what := "input"
		if function == modbus.FuncCodeReadHoldingRegisters {
			what = "holding"
		}
		return nil, fmt.Errorf("modbus %s unit %d: read %s registers %d+%d: %w", b.url, unit, what, addr, count, err)
	}
	return regs, nil
}

func (b *Bus) readRetrying(ctx context.Context, function byte, unit uint8, addr, count uint16) ([]uint16, error) {
	if count < 1 || count > MaxCount {
		return nil, fmt.Errorf("count %d out of range 1..%d", count, MaxCount)
	}
	if int(addr)+int(count) > 1<<16 {
		return nil, fmt.Errorf("%d registers from address %d run past address 65535", count, addr)
	}
	for attempt := 1; ; attempt++ {
		regs, err := b.attempt(ctx, function, unit, addr, count)
		if err == nil {
			return regs, nil
		}
		if errors.Is(err, errClosed) {
			return nil, err
		}
		if ctx.Err() != nil {
			if errors.Is(err, ctx.Err()) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		var exc *ExceptionError
		if errors.As(err, &exc) {
			b.exceptions.Add(1)
			if exc.Code != exceptionDeviceBusy {
				return nil, err
			}
		}
		if attempt > b.retries {
			if attempt > 1 {
				return nil, fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return nil, err
		}
		pause := b.backoffFor(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= pause {
			// No time left for another attempt (the request's timeout may
			// have been this same deadline, a moment before ctx's timer).
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		b.log.Debug("modbus read failed, retrying", "unit", unit, "function", function,
			"addr", addr, "count", count, "attempt", attempt, "pause", pause, "err", err)
		if serr := b.sleep(ctx, pause); serr != nil {
			return nil, fmt.Errorf("%w: %w", serr, err)
		}
		b.retried.Add(1)
	}
}

// backoffFor is the pause after the given failed attempt (1 for the first):
// Backoff doubled attempt-1 times, plus up to a tenth of jitter.
func (b *Bus) backoffFor(attempt int) time.Duration {
	if b.backoff <= 0 {
		return 0
	}
	d := b.backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d + rand.N(d/10+1)
}

// attempt makes one request, holding the wire for all of it. If ctx ends
// while the request is on the wire, attempt returns at once and the
// exchange finishes (or times out) in the background before the wire is
// free again, so no other request can read its reply.
func (b *Bus) attempt(ctx context.Context, function byte, unit uint8, addr, count uint16) ([]uint16, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	if b.closed {
		b.release()
		return nil, errClosed
	}
	if b.switchDelay > 0 && b.lastUnit >= 0 && b.lastUnit != int(unit) {
		if err := b.sleep(ctx, b.switchDelay); err != nil {
			b.release()
			return nil, err
		}
	}
	timeout, ctxTimeout := b.timeout, false
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left < timeout {
			timeout, ctxTimeout = left, true
		}
	}
	if timeout <= 0 {
		b.release()
		return nil, context.DeadlineExceeded
	}

	type result struct {
		regs []uint16
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer b.release()
		b.link.prepare(unit, timeout)
		regs, err := readRegisters(b.link.client, function, unit, addr, count, timeout)
		b.lastUnit = int(unit)
		var exc *ExceptionError
		if err != nil && !errors.As(err, &exc) {
			b.reconnect(unit, err)
		}
		if ctxTimeout && errors.Is(err, ErrTimeout) {
			// The request's timeout was ctx's deadline, which may have
			// passed a moment before ctx's own timer says so.
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		done <- result{regs, err}
	}()
	select {
	case r := <-done:
		return r.regs, r.err
	case <-ctx.Done():
		select {
		case r := <-done:
			return r.regs, r.err
		default:
			return nil, ctx.Err()
		}
	}
}

// reconnect drops the connection after a fault: the next request opens a
// new one, so that a late or partial reply on the old one is never read.
// The caller holds the wire.
func (b *Bus) reconnect(unit uint8, cause error) {
	b.reconnects.Add(1)
	err := b.link.close()
	b.log.Debug("modbus connection dropped after a fault", "unit", unit, "cause", cause, "close_err", err)
}

func (b *Bus) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case b.wire <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Bus) release() { <-b.wire }

// readRegisters makes one read with c and checks the reply: the number of
// registers, and whether an error is an exception or a malformed reply. A
// panic in the client library becomes an error.
func readRegisters(c modbus.Client, function byte, unit uint8, addr, count uint16, timeout time.Duration) (regs []uint16, err error) {
	defer func() {
		if r := recover(); r != nil {
			regs, err = nil, fmt.Errorf("modbus client panicked: %v", r)
		}
	}()
	var raw []byte
	if function == modbus.FuncCodeReadHoldingRegisters {
		raw, err = c.ReadHoldingRegisters(addr, count)
	} else {
		raw, err = c.ReadInputRegisters(addr, count)
	}
	if err != nil {
		return nil, classify(err, unit, function, timeout)
	}
	if len(raw) != 2*int(count) {
		return nil, badReply("reply has %d bytes of register data, want %d for %d registers", len(raw), 2*int(count), count)
	}
	regs = make([]uint16, count)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(raw[2*i:])
	}
	return regs, nil
}

// sleepContext pauses for d, or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// link is the connection with a goburrow client on it. Only the goroutine
// holding the wire touches it.
type link struct {
	client modbus.Client
	// prepare sets the unit id and timeout of the next request.
	prepare func(unit uint8, timeout time.Duration)
	// close closes the connection, if open; the next request reopens it.
	close func() error
}

func newLink(ep endpoint, timeout time.Duration, log *slog.Logger) *link {
	switch ep.scheme {
	case schemeRTU:
		p := &rtuPackager{}
		t := newSerialTransporter(ep, log)
		return &link{
			client: modbus.NewClient2(p, t),
			prepare: func(unit uint8, timeout time.Duration) {
				p.unit = unit
				t.timeout = timeout
			},
			close: t.Close,
		}
	case schemeRTUTCP:
		p := &rtuPackager{}
		t := newRTUTransporter(ep.addr)
		return &link{
			client: modbus.NewClient2(p, t),
			prepare: func(unit uint8, timeout time.Duration) {
				p.unit = unit
				t.timeout = timeout
			},
			close: t.Close,
		}
	default:
		h := modbus.NewTCPClientHandler(ep.addr)
		h.Timeout = timeout
		return &link{
			client: modbus.NewClient(h),
			prepare: func(unit uint8, timeout time.Duration) {
				h.SlaveId = unit
				h.Timeout = timeout
			},
			close: h.Close,
		}
	}
}
