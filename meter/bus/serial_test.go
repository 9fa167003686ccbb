package bus

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// fakePort is a serial port as goburrow/serial presents one: a read finds
// what is waiting (at most chunk bytes) or, after a short wait, gives
// serial.ErrTimeout.
type fakePort struct {
	mu      sync.Mutex
	waiting []byte
	chunk   int                       // most bytes one read returns; 0 for all
	reply   func(req []byte) []byte   // what the device answers to a write
	read    func() (int, error, bool) // overrides Read when its bool is true
	writes  int
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	if p.read != nil {
		if n, err, ok := p.read(); ok {
			p.mu.Unlock()
			return n, err
		}
	}
	if len(p.waiting) == 0 {
		p.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		return 0, serial.ErrTimeout
	}
	defer p.mu.Unlock()
	n := len(p.waiting)
	if p.chunk > 0 {
		n = min(n, p.chunk)
	}
	n = copy(b, p.waiting[:n])
	p.waiting = p.waiting[n:]
	return n, nil
}

func (p *fakePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes++
	if p.reply != nil {
		p.waiting = append(p.waiting, p.reply(slices.Clone(b))...)
	}
	return len(b), nil
}

func (p *fakePort) Close() error { return nil }

// serialClient is a goburrow client on a serialTransporter over port.
func serialClient(port *fakePort, timeout time.Duration) (modbus.Client, *serialTransporter) {
	p := &rtuPackager{unit: 1}
	tr := &serialTransporter{
		open:    func() (io.ReadWriteCloser, error) { return port, nil },
		timeout: timeout,
		log:     slog.New(slog.DiscardHandler),
	}
	return modbus.NewClient2(p, tr), tr
}

// answer replies to a read of holding registers with the fake device's image.
func answer(req []byte) []byte {
	count := uint16(req[4])<<8 | uint16(req[5])
	addr := uint16(req[2])<<8 | uint16(req[3])
	pdu := []byte{req[1], byte(2 * count)}
	for _, v := range want(req[0], req[1], addr, count) {
		pdu = append(pdu, byte(v>>8), byte(v))
	}
	return appendCRC(append([]byte{req[0]}, pdu...))
}

func TestSerialTransporter(t *testing.T) {
	stale := appendCRC([]byte{1, 3, 4, 0xde, 0xad, 0xbe, 0xef})
	for _, tc := range []struct {
		name    string
		port    *fakePort
		want    []uint16 // registers 0+2 of unit 1, or
		wantErr string   // an error (the cases that time out do so after 20ms)
	}{
		{"clean line", &fakePort{reply: answer}, []uint16{1000, 1001}, ""},
		{"stale reply waiting is discarded", &fakePort{waiting: stale, reply: answer}, []uint16{1000, 1001}, ""},
		{"reply in 3-byte pieces", &fakePort{chunk: 3, reply: answer}, []uint16{1000, 1001}, ""},
		{"trailing bytes after the reply are left", &fakePort{reply: func(req []byte) []byte { return append(answer(req), 1, 2, 3) }}, []uint16{1000, 1001}, ""},
		{"exception", &fakePort{reply: func([]byte) []byte { return appendCRC([]byte{1, 0x83, 2}) }}, nil,
			"unit 1: modbus exception 2 (illegal data address) on function 3"},
		{"exception in pieces", &fakePort{chunk: 1, reply: func([]byte) []byte { return appendCRC([]byte{1, 0x83, 4}) }}, nil,
			"unit 1: modbus exception 4 (server device failure) on function 3"},
		{"no reply", &fakePort{}, nil, "timeout: no complete reply within 20ms (i/o timeout)"},
		{"half a reply", &fakePort{reply: func(req []byte) []byte { return answer(req)[:5] }}, nil, "timeout: no complete reply within 20ms (i/o timeout)"},
		{"bad crc", &fakePort{reply: func(req []byte) []byte { r := answer(req); r[3] ^= 1; return r }}, nil, "rtu reply crc"},
		{"line never silent", &fakePort{read: func() (int, error, bool) { return 1, nil, true }}, nil,
			"timeout: no complete reply within 20ms (i/o timeout: the line was not silent before the request"},
		{"reads that return nothing", &fakePort{read: func() (int, error, bool) { return 0, nil, true }}, nil, "multiple Read calls return no data or error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := 10 * time.Second // never reached on a machine however busy
			if strings.Contains(tc.wantErr, "timeout") {
				timeout = 20 * time.Millisecond
			}
			c, _ := serialClient(tc.port, timeout)
			start := time.Now()
			got, err := readRegisters(c, 3, 1, 0, 2, timeout)
			if elapsed := time.Since(start); elapsed > timeout+5*time.Second {
				t.Errorf("took %v with a timeout of %v: hangs?", elapsed, timeout)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// The next request on the same port gets its own reply too.
			got, err = readRegisters(c, 3, 1, 10, 1, timeout)
			if err != nil || !slices.Equal(got, []uint16{1010}) {
				t.Errorf("second read: got %v, %v; want [1010]", got, err)
			}
		})
	}
}

func TestFrameGap(t *testing.T) {
	for _, tc := range []struct {
		baud int
		want time.Duration
	}{
		{1200, 32083333 * time.Nanosecond},
		{9600, 4010416 * time.Nanosecond},
		{19200, 2005208 * time.Nanosecond},
		{38400, 2 * time.Millisecond},
		{115200, 2 * time.Millisecond},
	} {
		if got := frameGap(tc.baud); got != tc.want {
			t.Errorf("frameGap(%d) = %v, want %v", tc.baud, got, tc.want)
		}
	}
}
