package bus

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// RTU on a serial port. goburrow's RTUClientHandler is not used: it reads
// whatever bytes are waiting, so a late reply still in the port's buffer
// (closing and reopening the port does not discard it) is taken for the
// answer to the next request, and every later read is one reply behind,
// silently. serialTransporter opens the port with github.com/goburrow/serial
// and, before each request, discards what is waiting until the line has
// been silent for the RTU frame gap; then it reads exactly one frame.

var _ modbus.Transporter = (*serialTransporter)(nil)

type serialTransporter struct {
	open    func() (io.ReadWriteCloser, error)
	timeout time.Duration // per request, set by the Bus before each Send
	log     *slog.Logger
	port    io.ReadWriteCloser
}

// frameGap is the silence that ends an RTU frame: 3.5 character times of
// 11 bits, and no less than 2ms (the spec's 1.75ms above 19200 baud, with
// room for the timer).
func frameGap(baud int) time.Duration {
	return max(2*time.Millisecond, time.Duration(3.5*11*float64(time.Second)/float64(baud)))
}

func newSerialTransporter(ep endpoint, log *slog.Logger) *serialTransporter {
	cfg := serial.Config{
		Address:  ep.addr,
		BaudRate: ep.baud,
		DataBits: ep.dataBits,
		StopBits: ep.stopBits,
		Parity:   ep.parity, // always set: goburrow/serial takes "" for even
		// Each read(2) waits this long at most; a request's own timeout is
		// kept by reading again until its deadline.
		Timeout: frameGap(ep.baud),
	}
	return &serialTransporter{
		open: func() (io.ReadWriteCloser, error) { return serial.Open(&cfg) },
		log:  log,
	}
}

// Send discards stale input, writes req and reads one reply frame, all
// within the timeout.
func (t *serialTransporter) Send(req []byte) ([]byte, error) {
	if len(req) < 4 {
		return nil, fmt.Errorf("rtu request of %d bytes is shorter than 4", len(req))
	}
	r := &deadlineReader{deadline: time.Now().Add(t.timeout)}
	if t.port == nil {
		port, err := t.open()
		if err != nil {
			return nil, err
		}
		t.port = port
	}
	r.r = t.port
	if err := t.drain(r); err != nil {
		return nil, err
	}
	if _, err := t.port.Write(req); err != nil {
		return nil, err
	}
	return readRTUFrame(r, req[1])
}

// drain reads and discards input until one read finds the line silent for
// a frame gap, so that the reply read next is an answer to the request
// written next, not a late one to an earlier request.
func (t *serialTransporter) drain(r *deadlineReader) error {
	var buf [rtuMaxFrame]byte
	discarded := 0
	for {
		if time.Now().After(r.deadline) {
			return fmt.Errorf("%w: the line was not silent before the request (%d bytes discarded)", os.ErrDeadlineExceeded, discarded)
		}
		n, err := t.port.Read(buf[:])
		discarded += n
		switch {
		case errors.Is(err, serial.ErrTimeout):
			if discarded > 0 {
				t.log.Debug("modbus rtu: discarded stale input before a request", "bytes", discarded)
			}
			return nil
		case err != nil:
			return err
		case n == 0:
			return io.ErrNoProgress
		}
	}
}

// Close closes the port, if it is open.
func (t *serialTransporter) Close() error {
	if t.port == nil {
		return nil
	}
	err := t.port.Close()
	t.port = nil
	return err
}

// deadlineReader reads from a serial port whose reads give up after a
// frame gap, reading again until the deadline.
type deadlineReader struct {
	r        io.Reader
	deadline time.Time
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	for {
		if time.Now().After(d.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := d.r.Read(p)
		switch {
		case errors.Is(err, serial.ErrTimeout):
			if n > 0 {
				return n, nil
			}
		case n == 0 && err == nil:
			return 0, io.ErrNoProgress
		default:
			return n, err
		}
	}
}
