package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// transports are the two framings the fake device speaks.
var transports = []struct {
	name string
	rtu  bool
}{{"tcp", false}, {"rtutcp", true}}

// Goroutines hammering two units through one Bus each get their own unit's
// registers: the unit id of one request never leaks into another's (the
// -race run also checks goburrow's mutable SlaveId is never raced on).
func TestConcurrentUnits(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := newFakeDevice(t, tr.rtu)
			b := openBus(t, d.url(), Options{UnitSwitchDelay: -1})
			const goroutines, reads = 8, 40
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*reads)
			for g := range goroutines {
				wg.Go(func() {
					for i := range reads {
						unit := uint8(1 + (g+i)%2)
						function := byte(3 + i%2)
						addr, count := uint16((g*7+i)%50), uint16(1+i%20)
						var got []uint16
						var err error
						if function == 3 {
							got, err = b.ReadHolding(t.Context(), unit, addr, count)
						} else {
							got, err = b.ReadInput(t.Context(), unit, addr, count)
						}
						if err != nil {
							errs <- err
						} else if w := want(unit, function, addr, count); !slices.Equal(got, w) {
							errs <- fmt.Errorf("unit %d function %d %d+%d: got %v, want %v", unit, function, addr, count, got, w)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			s := b.Stats()
			if want := (Stats{Requests: goroutines * reads}); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
			if requests, conns := d.counts(); requests != goroutines*reads || conns != 1 {
				t.Errorf("device saw %d requests on %d connections, want %d on 1", requests, conns, goroutines*reads)
			}
		})
	}
}

// THE LATE-REPLY CASE. The device answers the first request only after the
// client has timed out. The Bus must drop that connection, so that the late
// reply (carrying the registers as they were) is never taken for the answer
// to the next request. On TCP, without the guard, goburrow would fail every
// later read on a transaction id mismatch; on RTU over TCP, which has no
// transaction ids, it would return the stale values as if they were fresh.
func TestLateReply(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDevice(t, tr.rtu)
			release, written := make(chan struct{}), make(chan struct{})
			d.setHook(func(r fakeRequest) fakeReply {
				if r.N == 1 {
					return fakeReply{Hold: release, Then: written}
				}
				return fakeReply{}
			})
			// The first request is held until after its timeout, however long;
			// the later ones must not time out on a busy machine.
			b := openBus(t, d.url(), Options{Timeout: time.Second, Retries: -1})

			_, err := b.ReadHolding(t.Context(), 1, 0, 4)
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("first read: got error %v, want a timeout", err)
			}
			if !strings.Contains(err.Error(), "no complete reply within 1s") {
				t.Errorf("timeout error %q does not say how long it waited", err)
			}
			// The registers change, then the late reply to the first request
			// (with the old values) goes out on the first connection.
			fresh := []uint16{7, 8, 9, 10}
			d.setHolding(1, 0, fresh...)
			close(release)
			<-written

			for i := range 3 {
				got, err := b.ReadHolding(t.Context(), 1, 0, 4)
				if err != nil {
					t.Fatalf("read %d after the late reply: %v", i+2, err)
				}
				if !slices.Equal(got, fresh) {
					t.Fatalf("read %d after the late reply: got %v, want %v (the stale reply was read)", i+2, got, fresh)
				}
			}
			s := b.Stats()
			if want := (Stats{Requests: 4, Failures: 1, Reconnects: 1}); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
			if _, conns := d.counts(); conns != 2 {
				t.Errorf("device saw %d connections, want 2 (the first dropped after the timeout)", conns)
			}
		})
	}
}

// With retries, the read that timed out is retried on a new connection and
// succeeds.
func TestLateReplyRetried(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDevice(t, tr.rtu)
			release := make(chan struct{})
			defer close(release)
			d.setHook(func(r fakeRequest) fakeReply {
				if r.N == 1 {
					return fakeReply{Hold: release}
				}
				return fakeReply{}
			})
			b, rec := openRecorded(t, d.url(), Options{Timeout: time.Second})
			got, err := b.ReadInput(t.Context(), 2, 10, 5)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(2, 4, 10, 5); !slices.Equal(got, w) {
				t.Errorf("got %v, want %v", got, w)
			}
			if s, want := b.Stats(), (Stats{Requests: 1, Retries: 1, Reconnects: 1}); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
			if p := rec.get(); len(p) != 1 || p[0] < DefaultBackoff || p[0] > DefaultBackoff*11/10 {
				t.Errorf("pauses %v, want one backoff of 100ms plus up to 10%% jitter", p)
			}
		})
	}
}

// Exception 6 (server device busy) is retried with doubling backoff, on the
// same connection, until the device answers.
func TestBusyRetried(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := newFakeDevice(t, tr.rtu)
			d.setHook(func(r fakeRequest) fakeReply {
				if r.N <= 2 {
					return fakeReply{PDU: []byte{r.Function | 0x80, 6}}
				}
				return fakeReply{}
			})
			b, rec := openRecorded(t, d.url(), Options{})
			got, err := b.ReadHolding(t.Context(), 1, 3, 2)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(1, 3, 3, 2); !slices.Equal(got, w) {
				t.Errorf("got %v, want %v", got, w)
			}
			if s, want := b.Stats(), (Stats{Requests: 1, Retries: 2, Exceptions: 2}); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
			if requests, conns := d.counts(); requests != 3 || conns != 1 {
				t.Errorf("device saw %d requests on %d connections, want 3 on 1 (no reconnect for busy)", requests, conns)
			}
			p := rec.get()
			if len(p) != 2 || p[0] < 100*time.Millisecond || p[0] > 110*time.Millisecond ||
				p[1] < 200*time.Millisecond || p[1] > 220*time.Millisecond {
				t.Errorf("pauses %v, want 100ms then 200ms, each plus up to 10%% jitter", p)
			}
		})
	}
}

// A device busy for longer than the retries gives ErrDeviceBusy.
func TestBusyExhausted(t *testing.T) {
	d := newFakeDevice(t, false)
	d.setHook(func(r fakeRequest) fakeReply { return fakeReply{PDU: []byte{r.Function | 0x80, 6}} })
	b, _ := openRecorded(t, d.url(), Options{Retries: 3})
	_, err := b.ReadInput(t.Context(), 2, 0, 1)
	if !errors.Is(err, ErrDeviceBusy) {
		t.Fatalf("got %v, want ErrDeviceBusy", err)
	}
	var exc *ExceptionError
	if !errors.As(err, &exc) || *exc != (ExceptionError{Unit: 2, Function: 4, Code: 6}) {
		t.Errorf("got %#v, want *ExceptionError{Unit: 2, Function: 4, Code: 6}", exc)
	}
	wantMsg := "modbus " + d.url() + " unit 2: read input registers 0+1: unit 2: modbus exception 6 (server device busy) on function 4 (after 4 attempts)"
	if err.Error() != wantMsg {
		t.Errorf("error\n%q, want\n%q", err, wantMsg)
	}
	if requests, _ := d.counts(); requests != 4 {
		t.Errorf("device saw %d requests, want 4", requests)
	}
}

// Exceptions other than 6 are answers: returned at once, no retry, no
// reconnect, and the next read works.
func TestExceptionNotRetried(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := newFakeDevice(t, tr.rtu)
			b, rec := openRecorded(t, d.url(), Options{})
			_, err := b.ReadInput(t.Context(), 1, 95, 10) // the image ends at 99
			var exc *ExceptionError
			if !errors.As(err, &exc) || *exc != (ExceptionError{Unit: 1, Function: 4, Code: 2}) {
				t.Fatalf("got %v, want *ExceptionError{Unit: 1, Function: 4, Code: 2}", err)
			}
			wantMsg := "modbus " + d.url() + " unit 1: read input registers 95+10: unit 1: modbus exception 2 (illegal data address) on function 4"
			if err.Error() != wantMsg {
				t.Errorf("error\n%q, want\n%q", err, wantMsg)
			}
			if errors.Is(err, ErrDeviceBusy) || errors.Is(err, ErrTimeout) {
				t.Errorf("exception 2 matches ErrDeviceBusy or ErrTimeout: %v", err)
			}
			if _, err := b.ReadInput(t.Context(), 1, 90, 10); err != nil {
				t.Errorf("read after the exception: %v", err)
			}
			if s, want := b.Stats(), (Stats{Requests: 2, Failures: 1, Exceptions: 1}); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
			if requests, conns := d.counts(); requests != 2 || conns != 1 {
				t.Errorf("device saw %d requests on %d connections, want 2 on 1", requests, conns)
			}
			if p := rec.get(); len(p) != 0 {
				t.Errorf("pauses %v, want none (no retry, no unit switch)", p)
			}
		})
	}
}

func TestExceptionError(t *testing.T) {
	for _, tc := range []struct {
		code byte
		want string
	}{
		{1, "unit 3: modbus exception 1 (illegal function) on function 4"},
		{2, "unit 3: modbus exception 2 (illegal data address) on function 4"},
		{3, "unit 3: modbus exception 3 (illegal data value) on function 4"},
		{4, "unit 3: modbus exception 4 (server device failure) on function 4"},
		{5, "unit 3: modbus exception 5 (acknowledge) on function 4"},
		{6, "unit 3: modbus exception 6 (server device busy) on function 4"},
		{7, "unit 3: modbus exception 7 (negative acknowledge) on function 4"},
		{8, "unit 3: modbus exception 8 (memory parity error) on function 4"},
		{9, "unit 3: modbus exception 9 (unknown exception code) on function 4"},
		{10, "unit 3: modbus exception 10 (gateway path unavailable) on function 4"},
		{11, "unit 3: modbus exception 11 (gateway target device failed to respond) on function 4"},
		{0, "unit 3: modbus exception 0 (unknown exception code) on function 4"},
		{200, "unit 3: modbus exception 200 (unknown exception code) on function 4"},
	} {
		e := &ExceptionError{Unit: 3, Function: 4, Code: tc.code}
		if got := e.Error(); got != tc.want {
			t.Errorf("code %d: %q, want %q", tc.code, got, tc.want)
		}
		if busy := errors.Is(e, ErrDeviceBusy); busy != (tc.code == 6) {
			t.Errorf("code %d: errors.Is(ErrDeviceBusy) = %v", tc.code, busy)
		}
	}
}

// A reply that is not an answer to the request is an error, never data or
// a panic; the connection is dropped, and the next read works.
func TestGarbage(t *testing.T) {
	t.Parallel()
	regs := func(fc byte, n int, vals ...byte) []byte { return append([]byte{fc, byte(n)}, vals...) }
	for _, tc := range []struct {
		name string
		rtu  bool
		// reply to a read of 3 input registers (function 4)
		reply   func(fakeRequest) fakeReply
		wantErr string
	}{
		{"tcp/short byte count", false,
			func(fakeRequest) fakeReply { return fakeReply{PDU: regs(4, 4, 0, 1, 0, 2)} },
			"reply has 4 bytes of register data, want 6 for 3 registers"},
		{"tcp/long byte count", false,
			func(fakeRequest) fakeReply { return fakeReply{PDU: regs(4, 8, 0, 1, 0, 2, 0, 3, 0, 4)} },
			"reply has 8 bytes of register data, want 6 for 3 registers"},
		{"tcp/wrong function code", false,
			func(fakeRequest) fakeReply { return fakeReply{PDU: regs(3, 6, 0, 1, 0, 2, 0, 3)} },
			"reply has function code 3, want 4"},
		{"tcp/exception to another function", false,
			func(fakeRequest) fakeReply { return fakeReply{PDU: []byte{0x83, 2}} },
			"reply has function code 131, want 4"},
		{"tcp/byte count disagrees with length", false,
			func(fakeRequest) fakeReply { return fakeReply{PDU: regs(4, 10, 0, 1, 0, 2, 0, 3)} },
			"response data size '6' does not match count '10'"},
		{"tcp/function code only", false,
			func(fakeRequest) fakeReply { return fakeReply{PDU: []byte{4}} },
			"response data is empty"},
		{"tcp/wrong unit", false,
			func(r fakeRequest) fakeReply {
				return fakeReply{Raw: []byte{byte(r.TID >> 8), byte(r.TID), 0, 0, 0, 9, 7, 4, 6, 0, 1, 0, 2, 0, 3}}
			},
			"response unit id '7' does not match request '1'"},
		{"tcp/wrong transaction id", false,
			func(r fakeRequest) fakeReply {
				tid := r.TID + 1
				return fakeReply{Raw: []byte{byte(tid >> 8), byte(tid), 0, 0, 0, 9, 1, 4, 6, 0, 1, 0, 2, 0, 3}}
			},
			"does not match request"},
		{"tcp/zero length", false,
			func(r fakeRequest) fakeReply {
				return fakeReply{Raw: []byte{byte(r.TID >> 8), byte(r.TID), 0, 0, 0, 0, 1}}
			},
			"must not be zero"},
		{"tcp/truncated and hung up", false,
			func(r fakeRequest) fakeReply {
				return fakeReply{Raw: []byte{byte(r.TID >> 8), byte(r.TID), 0, 0, 0, 9, 1, 4, 6, 0}, Hangup: true}
			},
			"EOF"},
		{"tcp/silence", false,
			func(fakeRequest) fakeReply { return fakeReply{Silent: true} },
			"timeout: no complete reply within 1s"},
		{"rtutcp/bad crc", true,
			func(fakeRequest) fakeReply { return fakeReply{BadCRC: true} },
			"rtu reply crc"},
		{"rtutcp/short byte count", true,
			func(fakeRequest) fakeReply { return fakeReply{PDU: regs(4, 4, 0, 1, 0, 2)} },
			"reply has 4 bytes of register data, want 6 for 3 registers"},
		{"rtutcp/wrong function code", true,
			func(fakeRequest) fakeReply { return fakeReply{PDU: regs(3, 6, 0, 1, 0, 2, 0, 3)} },
			"reply has function code 3, want 4"},
		{"rtutcp/wrong unit", true,
			func(fakeRequest) fakeReply { return fakeReply{Raw: appendCRC([]byte{7, 4, 6, 0, 1, 0, 2, 0, 3})} },
			"rtu reply from unit 7 to a request to unit 1"},
		{"rtutcp/byte count too long for a frame", true,
			func(fakeRequest) fakeReply { return fakeReply{Raw: []byte{1, 4, 255, 0, 0}} },
			"rtu reply of 260 bytes is longer than 256"},
		{"rtutcp/truncated and hung up", true,
			func(fakeRequest) fakeReply { return fakeReply{Raw: []byte{1, 4, 6, 0, 1}, Hangup: true} },
			"EOF"},
		{"rtutcp/silence", true,
			func(fakeRequest) fakeReply { return fakeReply{Silent: true} },
			"timeout: no complete reply within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDevice(t, tc.rtu)
			d.setHook(func(r fakeRequest) fakeReply {
				if r.N == 1 {
					return tc.reply(r)
				}
				return fakeReply{}
			})
			var timeout time.Duration // openBus's, never reached
			if strings.Contains(tc.wantErr, "timeout") {
				timeout = time.Second // and then the next read must not time out
			}
			b := openBus(t, d.url(), Options{Timeout: timeout, Retries: -1})
			got, err := b.ReadInput(t.Context(), 1, 0, 3)
			if err == nil {
				t.Fatalf("garbage read gave %v and no error", got)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			prefix := "modbus " + d.url() + " unit 1: read input registers 0+3: "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			var exc *ExceptionError
			if errors.As(err, &exc) {
				t.Errorf("garbage reported as an exception: %v", err)
			}
			got, err = b.ReadInput(t.Context(), 1, 0, 3)
			if err != nil {
				t.Fatalf("read after garbage: %v", err)
			}
			if w := want(1, 4, 0, 3); !slices.Equal(got, w) {
				t.Errorf("read after garbage: got %v, want %v", got, w)
			}
			if s, want := b.Stats(), (Stats{Requests: 2, Failures: 1, Reconnects: 1}); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
		})
	}
}

// With the default retries, one garbled reply costs a retry, not a failure.
func TestGarbageRetried(t *testing.T) {
	d := newFakeDevice(t, true)
	d.setHook(func(r fakeRequest) fakeReply { return fakeReply{BadCRC: r.N == 1} })
	b, _ := openRecorded(t, d.url(), Options{})
	got, err := b.ReadHolding(t.Context(), 2, 0, 25)
	if err != nil {
		t.Fatal(err)
	}
	if w := want(2, 3, 0, 25); !slices.Equal(got, w) {
		t.Errorf("got %v, want %v", got, w)
	}
	if s, want := b.Stats(), (Stats{Requests: 1, Retries: 1, Reconnects: 1}); s != want {
		t.Errorf("Stats() = %+v, want %+v", s, want)
	}
}

// The pause before a request to another unit: by default on RTU (over TCP
// here), not on TCP, and never when switched off.
func TestUnitSwitchDelay(t *testing.T) {
	units := []uint8{1, 1, 2, 2, 1, 2}
	for _, tc := range []struct {
		name string
		rtu  bool
		opts Options
		want []time.Duration
	}{
		{"rtutcp default", true, Options{}, []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}},
		{"rtutcp 5ms", true, Options{UnitSwitchDelay: 5 * time.Millisecond}, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}},
		{"rtutcp off", true, Options{UnitSwitchDelay: -1}, nil},
		{"tcp default", false, Options{}, nil},
		{"tcp 5ms", false, Options{UnitSwitchDelay: 5 * time.Millisecond}, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDevice(t, tc.rtu)
			b, rec := openRecorded(t, d.url(), tc.opts)
			for _, u := range units {
				if _, err := b.ReadHolding(t.Context(), u, 0, 1); err != nil {
					t.Fatal(err)
				}
			}
			if got := rec.get(); !slices.Equal(got, tc.want) {
				t.Errorf("pauses %v, want %v", got, tc.want)
			}
		})
	}
}

// Cancelling a request on the wire returns at once; its exchange finishes in
// the background and keeps the wire until then, so a request waiting for the
// wire gives up on its own deadline, and the next one gets its own reply.
func TestContextCancel(t *testing.T) {
	t.Parallel()
	d := newFakeDevice(t, false)
	release, onWire := make(chan struct{}), make(chan struct{})
	d.setHook(func(r fakeRequest) fakeReply {
		if r.N == 1 {
			close(onWire)
			return fakeReply{Hold: release}
		}
		return fakeReply{}
	})
	b := openBus(t, d.url(), Options{Timeout: time.Minute})

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := b.ReadHolding(ctx, 1, 0, 2)
		first <- err
	}()
	<-onWire
	cancel()
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled read: got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled read did not return while its request was on the wire")
	}

	waitCtx, waitCancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer waitCancel()
	if _, err := b.ReadHolding(waitCtx, 2, 0, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("read waiting for the wire: got %v, want context.DeadlineExceeded", err)
	}
	if requests, _ := d.counts(); requests != 1 {
		t.Errorf("device saw %d requests while the wire was busy, want 1", requests)
	}

	close(release)
	got, err := b.ReadHolding(t.Context(), 2, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if w := want(2, 3, 0, 2); !slices.Equal(got, w) {
		t.Errorf("got %v, want %v (the abandoned request's reply?)", got, w)
	}
	if s := b.Stats(); s.Reconnects != 0 {
		t.Errorf("Stats() = %+v, want no reconnects (the abandoned exchange completed)", s)
	}
}

// A context deadline nearer than the timeout is the request's timeout: the
// read gives up on it, the connection is dropped, and the next read works.
func TestContextDeadline(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDevice(t, tr.rtu)
			d.setHook(func(r fakeRequest) fakeReply { return fakeReply{Silent: r.N == 1} })
			b := openBus(t, d.url(), Options{Timeout: time.Minute})
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := b.ReadInput(ctx, 1, 0, 2)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want context.DeadlineExceeded", err)
			}
			if elapsed := time.Since(start); elapsed > 30*time.Second {
				t.Errorf("read took %v: the deadline did not shorten the 1m timeout", elapsed)
			}
			got, err := b.ReadInput(t.Context(), 1, 0, 2)
			if err != nil || !slices.Equal(got, want(1, 4, 0, 2)) {
				t.Fatalf("next read: %v, %v", got, err)
			}
			if s := b.Stats(); s.Reconnects != 1 || s.Retries != 0 {
				t.Errorf("Stats() = %+v, want 1 reconnect, no retries (the deadline had passed)", s)
			}
		})
	}
}

// Bad arguments are refused before anything goes on the wire.
func TestBadArguments(t *testing.T) {
	d := newFakeDevice(t, false)
	b := openBus(t, d.url(), Options{})
	for _, tc := range []struct {
		addr, count uint16
		want        string
	}{
		{0, 0, "read holding registers 0+0: count 0 out of range 1..125"},
		{0, 126, "read holding registers 0+126: count 126 out of range 1..125"},
		{65535, 2, "read holding registers 65535+2: 2 registers from address 65535 run past address 65535"},
	} {
		_, err := b.ReadHolding(t.Context(), 1, tc.addr, tc.count)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%d+%d: got %v, want ...%s", tc.addr, tc.count, err, tc.want)
		}
	}
	// The last 125 registers are a valid request (which the device, with
	// 100 registers, refuses).
	if _, err := b.ReadHolding(t.Context(), 1, 65535-124, 125); err == nil || !strings.Contains(err.Error(), "illegal data address") {
		t.Errorf("read of the last 125 registers: got %v, want exception 2 from the device", err)
	}
	if requests, _ := d.counts(); requests != 1 {
		t.Errorf("device saw %d requests, want only the last, valid one", requests)
	}
	if s := b.Stats(); s.Retries != 0 || s.Failures != 4 {
		t.Errorf("Stats() = %+v, want 4 failures and no retries", s)
	}
}

func TestClose(t *testing.T) {
	d := newFakeDevice(t, false)
	b := openBus(t, d.url(), Options{})
	if _, err := b.ReadInput(t.Context(), 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.ReadInput(t.Context(), 1, 0, 1); err == nil || !strings.Contains(err.Error(), "bus is closed") {
		t.Errorf("read after Close: got %v, want bus is closed", err)
	}
	if requests, _ := d.counts(); requests != 1 {
		t.Errorf("device saw %d requests, want 1", requests)
	}
}

// Connection refused is an I/O error: retried with backoff, then returned
// naming the bus.
func TestConnectRefused(t *testing.T) {
	url := fmt.Sprintf("tcp://127.0.0.1:%d", testtool.FreePort(t))
	b, rec := openRecorded(t, url, Options{Retries: 2, Backoff: 10 * time.Millisecond})
	_, err := b.ReadInput(t.Context(), 1, 0, 1)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.HasSuffix(err.Error(), "(after 3 attempts)") {
		t.Fatalf("got %v, want connection refused after 3 attempts", err)
	}
	if p := rec.get(); len(p) != 2 || p[0] < 10*time.Millisecond || p[0] > 11*time.Millisecond || p[1] < 20*time.Millisecond || p[1] > 22*time.Millisecond {
		t.Errorf("pauses %v, want 10ms and 20ms plus jitter", p)
	}
	if s, want := b.Stats(), (Stats{Requests: 1, Failures: 1, Retries: 2, Reconnects: 3}); s != want {
		t.Errorf("Stats() = %+v, want %+v", s, want)
	}
}

func TestCRC16(t *testing.T) {
	if got := CRC16([]byte("123456789")); got != 0x4B37 {
		t.Errorf("CRC16(123456789) = %04x, want 4b37 (CRC-16/MODBUS check value)", got)
	}
	// Read 10 holding registers from 0 on unit 1: the frame every Modbus
	// manual shows, 01 03 00 00 00 0a c5 cd.
	if got := appendCRC([]byte{1, 3, 0, 0, 0, 10}); !slices.Equal(got, []byte{1, 3, 0, 0, 0, 10, 0xc5, 0xcd}) {
		t.Errorf("frame % x, want 01 03 00 00 00 0a c5 cd", got)
	}
}

// Zero Retries is the default (2 retries); NoRetries is one attempt, which
// is what a scan needs for a unit that is not there.
func TestNoRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		retries  int
		requests int
	}{{"zero means default", 0, 1 + DefaultRetries}, {"NoRetries", NoRetries, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDevice(t, false)
			d.setHook(func(fakeRequest) fakeReply { return fakeReply{Silent: true} })
			b := openBus(t, d.url(), Options{Timeout: 50 * time.Millisecond, Backoff: time.Millisecond, Retries: tc.retries})
			if _, err := b.ReadHolding(t.Context(), 9, 0, 1); !errors.Is(err, ErrTimeout) {
				t.Fatalf("read of a silent unit: %v, want ErrTimeout", err)
			}
			if n, _ := d.counts(); n != tc.requests {
				t.Errorf("device saw %d requests, want %d", n, tc.requests)
			}
		})
	}
}
