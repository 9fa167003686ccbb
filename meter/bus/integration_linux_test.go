package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter/metertest"
)

// Integration tests against a Modbus peer we did not write: Debian's
// pymodbus 3.0.0 (metertest.StartPymodbus), over a socat pty pair for RTU
// and over loopback TCP.

// startPymodbus serves units 1 and 2 their images (those of the fake
// device: holding and input registers 0..99, every other address an
// exception 2, other units unanswered) with pymodbus at p's Port or
// Serial, until the test ends.
func startPymodbus(t *testing.T, p metertest.Pymodbus) {
	t.Helper()
	p.Sparse = true
	p.Units = map[uint8]string{}
	for _, u := range []uint8{1, 2} {
		img := metertest.Image{Holding: map[uint16]uint16{}, Input: map[uint16]uint16{}}
		for i := range imageSize {
			img.Holding[uint16(i)] = holdingValue(u, i)
			img.Input[uint16(i)] = inputValue(u, i)
		}
		p.Units[u] = metertest.WriteImage(t, img)
	}
	metertest.StartPymodbus(t, p)
}

// inputQueued is how many bytes wait to be read on the tty at path: it asks
// the kernel (TIOCINQ) without reading them.
func inputQueued(t *testing.T, path string) int {
	t.Helper()
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("TIOCINQ on %s: %v", path, errno)
	}
	return int(n)
}

// waitFor polls cond every 10ms until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkReads reads both units' holding and input registers, concurrently,
// and compares them with the image startPymodbus serves.
func checkReads(t *testing.T, b *Bus) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, unit := range []uint8{1, 2} {
		for _, function := range []byte{3, 4} {
			wg.Go(func() {
				for _, r := range []struct{ addr, count uint16 }{{0, 10}, {37, 1}, {50, 50}} {
					var got []uint16
					var err error
					if function == 3 {
						got, err = b.ReadHolding(t.Context(), unit, r.addr, r.count)
					} else {
						got, err = b.ReadInput(t.Context(), unit, r.addr, r.count)
					}
					if err != nil {
						errs <- err
					} else if w := want(unit, function, r.addr, r.count); !slices.Equal(got, w) {
						errs <- fmt.Errorf("unit %d function %d %d+%d: got %v, want %v", unit, function, r.addr, r.count, got, w)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkException reads past the end of pymodbus's 100 registers.
func checkException(t *testing.T, b *Bus) {
	t.Helper()
	_, err := b.ReadHolding(t.Context(), 1, 95, 10)
	var exc *ExceptionError
	if !errors.As(err, &exc) || *exc != (ExceptionError{Unit: 1, Function: 3, Code: 2}) {
		t.Errorf("read past the registers: got %v, want exception 2 from unit 1 on function 3", err)
	}
}

// checkUnknownUnit reads from a unit pymodbus does not serve: pymodbus 3.0.0
// ignores such requests (no exception 11, on TCP as on RTU), so the read
// times out (here on its context's deadline, nearer than the Bus's
// timeout), the connection is reopened, and the next read works.
func checkUnknownUnit(t *testing.T, b *Bus) {
	t.Helper()
	before := b.Stats()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.ReadInput(ctx, 9, 0, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("read from unit 9: got %v, want a timeout", err)
	}
	got, err := b.ReadInput(t.Context(), 2, 0, 3)
	if err != nil {
		t.Fatalf("read after the timeout: %v", err)
	}
	if w := want(2, 4, 0, 3); !slices.Equal(got, w) {
		t.Errorf("read after the timeout: got %v, want %v", got, w)
	}
	if after := b.Stats(); after.Reconnects != before.Reconnects+1 {
		t.Errorf("reconnects %d -> %d, want one more", before.Reconnects, after.Reconnects)
	}
}

// RTU on a serial line: our Bus on one end of a socat pty pair, pymodbus
// serving units 1 and 2 with RTU framing at 19200 baud on the other.
func TestPymodbusRTU(t *testing.T) {
	testtool.Integration(t)
	t.Parallel()
	a, b := testtool.PtyPair(t, t.TempDir())
	startPymodbus(t, metertest.Pymodbus{Serial: a, Baud: 19200})

	u := url.URL{Scheme: "rtu", Path: b, RawQuery: "baud=19200"}
	bus := openBus(t, u.String(), Options{Retries: -1, UnitSwitchDelay: 5 * time.Millisecond})
	checkReads(t, bus)
	checkException(t, bus)
	checkUnknownUnit(t, bus)
	if s := bus.Stats(); s.Requests != 15 || s.Failures != 2 || s.Exceptions != 1 {
		t.Errorf("Stats() = %+v, want 15 requests, 2 failures, 1 exception", s)
	}
}

// Modbus TCP against pymodbus's TCP server.
func TestPymodbusTCP(t *testing.T) {
	testtool.Integration(t)
	t.Parallel()
	port := testtool.FreePort(t)
	startPymodbus(t, metertest.Pymodbus{Port: port})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, "pymodbus listening on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	bus := openBus(t, "tcp://"+addr, Options{Retries: -1})
	checkReads(t, bus)
	checkException(t, bus)
	checkUnknownUnit(t, bus)
	if s := bus.Stats(); s.Requests != 15 || s.Failures != 2 || s.Exceptions != 1 {
		t.Errorf("Stats() = %+v, want 15 requests, 2 failures, 1 exception", s)
	}
}

// THE LATE-REPLY CASE on a serial line. A slow RTU device (30ms per reply)
// on the other end of a socat pty pair answers the first request only after
// the client timed out. Closing and reopening the port does not discard
// that reply: the pty buffers it. goburrow's own RTU handler would then
// read it as the answer to the next request, and every read after as the
// answer to the one before (measured: reads 2, 3, 4 returned 1, 2, 3). The
// Bus discards waiting input before each request, so every read gets its
// own reply. The device answers request n with register value n.
func TestSerialLateReply(t *testing.T) {
	testtool.Integration(t)
	t.Parallel()
	a, b := testtool.PtyPair(t, t.TempDir())
	device, err := os.OpenFile(a, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	release, written := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		device.Close()
		wg.Wait()
	})
	wg.Go(func() {
		req := make([]byte, 8)
		for n := 1; ; n++ {
			if _, err := io.ReadFull(device, req); err != nil {
				return
			}
			if CRC16(req[:6]) != uint16(req[6])|uint16(req[7])<<8 {
				t.Errorf("request % x has a bad CRC", req)
				return
			}
			if n == 1 {
				<-release
			}
			time.Sleep(30 * time.Millisecond) // a slow device
			device.Write(appendCRC([]byte{req[0], req[1], 2, byte(n >> 8), byte(n)}))
			if n == 1 {
				close(written)
			}
		}
	})

	u := url.URL{Scheme: "rtu", Path: b, RawQuery: "baud=19200"}
	// The first request is held until after its timeout, however long;
	// the later ones must not time out on a busy machine.
	bus := openBus(t, u.String(), Options{Timeout: time.Second, Retries: -1})
	if _, err := bus.ReadHolding(t.Context(), 1, 0, 1); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first read: got %v, want a timeout", err)
	}
	close(release)
	<-written
	waitFor(t, "the late reply waiting on "+b, func() bool { return inputQueued(t, b) >= 7 })
	for n := 2; n <= 5; n++ {
		got, err := bus.ReadHolding(t.Context(), 1, 0, 1)
		if err != nil {
			t.Fatalf("read %d: %v", n, err)
		}
		if len(got) != 1 || got[0] != uint16(n) {
			t.Fatalf("read %d got the reply %v, want [%d] (an earlier request's reply was read)", n, got, n)
		}
	}
	if s, want := bus.Stats(), (Stats{Requests: 5, Failures: 1, Reconnects: 1}); s != want {
		t.Errorf("Stats() = %+v, want %+v", s, want)
	}
}
