package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeDevice is an in-test Modbus server on a loopback TCP port: a register
// image per unit id, Modbus TCP (MBAP) or RTU framing, and a hook through
// which a test makes it misbehave. It answers functions 3 and 4 only.
type fakeDevice struct {
	t   testing.TB
	ln  net.Listener
	rtu bool

	quit chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	units    map[uint8]*registers
	hook     func(fakeRequest) fakeReply
	requests int
	conns    []net.Conn
}

type registers struct{ holding, input []uint16 }

// fakeRequest is a request as the device received it.
type fakeRequest struct {
	N           int    // 1 for the first request the device gets
	TID         uint16 // MBAP transaction id (TCP only)
	Unit        uint8
	Function    byte
	Addr, Count uint16
}

// fakeReply says how to misbehave; the zero value answers normally.
type fakeReply struct {
	PDU    []byte          // reply with this PDU (function code first) instead
	Raw    []byte          // write these bytes, unframed, instead of a reply
	Silent bool            // answer nothing
	BadCRC bool            // RTU: corrupt the CRC
	Hangup bool            // close the connection after replying
	Hold   <-chan struct{} // reply only once this is closed
	Then   chan<- struct{} // closed once the reply is written (or failed to be)
}

// Register images of the fake device (and of pymodbus, in startPymodbus):
// unit u has holding register i = u*1000+i and input register
// i = u*1000+500+i, for i in 0..99.
const imageSize = 100

func holdingValue(unit uint8, i int) uint16 { return uint16(int(unit)*1000 + i) }
func inputValue(unit uint8, i int) uint16   { return uint16(int(unit)*1000 + 500 + i) }

// want returns what unit's image holds for a read.
func want(unit uint8, function byte, addr, count uint16) []uint16 {
	out := make([]uint16, count)
	for i := range out {
		if function == 3 {
			out[i] = holdingValue(unit, int(addr)+i)
		} else {
			out[i] = inputValue(unit, int(addr)+i)
		}
	}
	return out
}

// newFakeDevice starts a fake device serving units 1 and 2; it stops when
// the test ends.
func newFakeDevice(t testing.TB, rtu bool) *fakeDevice {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDevice{t: t, ln: ln, rtu: rtu, quit: make(chan struct{}), units: map[uint8]*registers{}}
	for _, u := range []uint8{1, 2} {
		r := &registers{holding: make([]uint16, imageSize), input: make([]uint16, imageSize)}
		for i := range imageSize {
			r.holding[i] = holdingValue(u, i)
			r.input[i] = inputValue(u, i)
		}
		d.units[u] = r
	}
	d.wg.Add(1)
	go d.accept()
	t.Cleanup(d.stop)
	return d
}

// url is the bus URL of the device.
func (d *fakeDevice) url() string {
	if d.rtu {
		return "rtutcp://" + d.ln.Addr().String()
	}
	return "tcp://" + d.ln.Addr().String()
}

func (d *fakeDevice) setHook(h func(fakeRequest) fakeReply) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hook = h
}

// setHolding overwrites unit's holding registers from addr.
func (d *fakeDevice) setHolding(unit uint8, addr int, values ...uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.units[unit].holding[addr:], values)
}

// counts returns how many requests and connections the device has had.
func (d *fakeDevice) counts() (requests, conns int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests, len(d.conns)
}

func (d *fakeDevice) stop() {
	close(d.quit)
	d.ln.Close()
	d.mu.Lock()
	for _, c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *fakeDevice) accept() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
		d.wg.Add(1)
		go d.serve(c)
	}
}

// serve answers requests on one connection, one at a time, in order.
func (d *fakeDevice) serve(c net.Conn) {
	defer d.wg.Done()
	defer c.Close()
	for {
		req, err := d.readRequest(c)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				d.t.Errorf("fake device: %v", err)
			}
			return
		}
		d.mu.Lock()
		d.requests++
		req.N = d.requests
		pdu := d.answer(req)
		hook := d.hook
		d.mu.Unlock()

		var r fakeReply
		if hook != nil {
			r = hook(req)
		}
		if r.Hold != nil {
			select {
			case <-r.Hold:
			case <-d.quit:
				return
			}
		}
		if r.PDU != nil {
			pdu = r.PDU
		}
		var out []byte
		switch {
		case r.Silent:
		case r.Raw != nil:
			out = r.Raw
		case d.rtu:
			out = appendCRC(append([]byte{req.Unit}, pdu...))
			if r.BadCRC {
				out[len(out)-1] ^= 0xFF
			}
		default:
			out = binary.BigEndian.AppendUint16(nil, req.TID)
			out = binary.BigEndian.AppendUint16(out, 0)
			out = binary.BigEndian.AppendUint16(out, uint16(1+len(pdu)))
			out = append(out, req.Unit)
			out = append(out, pdu...)
		}
		if len(out) > 0 {
			c.Write(out) // the client may have gone: that is what some tests are about
		}
		if r.Then != nil {
			close(r.Then)
		}
		if r.Hangup {
			return
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// readRequest reads one request frame: MBAP header and PDU, or an RTU
// frame of a read request (8 bytes), whose CRC it checks.
func (d *fakeDevice) readRequest(c net.Conn) (fakeRequest, error) {
	var req fakeRequest
	var pdu []byte
	if d.rtu {
		frame := make([]byte, 8)
		if _, err := io.ReadFull(c, frame); err != nil {
			return req, err
		}
		if CRC16(frame[:6]) != uint16(frame[6])|uint16(frame[7])<<8 {
			return req, fmt.Errorf("rtu request % x has a bad CRC", frame)
		}
		req.Unit, pdu = frame[0], frame[1:6]
	} else {
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return req, err
		}
		if proto := binary.BigEndian.Uint16(hdr[2:]); proto != 0 {
			return req, fmt.Errorf("mbap protocol id %d, want 0", proto)
		}
		n := int(binary.BigEndian.Uint16(hdr[4:]))
		if n < 2 || n > 254 {
			return req, fmt.Errorf("mbap length %d", n)
		}
		pdu = make([]byte, n-1)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return req, err
		}
		req.TID, req.Unit = binary.BigEndian.Uint16(hdr), hdr[6]
	}
	if len(pdu) != 5 {
		return req, fmt.Errorf("request pdu % x is not a read request", pdu)
	}
	req.Function = pdu[0]
	req.Addr = binary.BigEndian.Uint16(pdu[1:])
	req.Count = binary.BigEndian.Uint16(pdu[3:])
	return req, nil
}

// answer is the device's normal reply PDU to req. The caller holds d.mu.
func (d *fakeDevice) answer(req fakeRequest) []byte {
	regs, ok := d.units[req.Unit]
	if !ok {
		return []byte{req.Function | 0x80, 11} // gateway target failed to respond
	}
	var image []uint16
	switch req.Function {
	case 3:
		image = regs.holding
	case 4:
		image = regs.input
	default:
		return []byte{req.Function | 0x80, 1}
	}
	if req.Count < 1 || req.Count > 125 || int(req.Addr)+int(req.Count) > len(image) {
		return []byte{req.Function | 0x80, 2}
	}
	pdu := []byte{req.Function, byte(2 * req.Count)}
	for _, v := range image[req.Addr : req.Addr+req.Count] {
		pdu = binary.BigEndian.AppendUint16(pdu, v)
	}
	return pdu
}

// sleepRecorder replaces Bus.sleep: it records each pause and returns at
// once, so that tests of backoff and unit switching take no wall-clock time.
type sleepRecorder struct {
	mu     sync.Mutex
	pauses []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pauses = append(s.pauses, d)
	return ctx.Err()
}

func (s *sleepRecorder) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.pauses...)
}

// openBus opens a Bus that is closed when the test ends. Unless the test
// sets one, the timeout is 10s: never reached, however busy the machine
// (`go test ./...` runs packages side by side), so that only tests about
// timeouts see any.
func openBus(t testing.TB, rawURL string, opts Options) *Bus {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	b, err := Open(rawURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openRecorded opens a Bus whose pauses are recorded instead of slept.
func openRecorded(t testing.TB, rawURL string, opts Options) (*Bus, *sleepRecorder) {
	t.Helper()
	b := openBus(t, rawURL, opts)
	rec := &sleepRecorder{}
	b.sleep = rec.sleep
	return b, rec
}
