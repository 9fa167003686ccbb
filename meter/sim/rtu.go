package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/goburrow/serial"

	"github.com/p2pgrid/p2pgrid/meter/bus"
	mbserver "github.com/simonvetter/modbus"
)

// RTUOptions configure a serial line.
type RTUOptions struct {
	Baud     int    // default 9600
	Parity   string // N, E or O; default N
	StopBits int    // default 1 (2 with parity N is also common)
}

// ServeRTU serves every home on one RTU bus on the serial device path (a
// real port or one end of a pty pair): home i's meter is unit
// SharedMeterUnit(i) and its inverter SharedInverterUnit(i), even with one
// home, as on a real RS-485 bus.
func (s *Sim) ServeRTU(path string, o RTUOptions) (*Listener, error) {
	if o.Baud == 0 {
		o.Baud = 9600
	}
	if o.Parity == "" {
		o.Parity = "N"
	}
	if o.StopBits == 0 {
		o.StopBits = 1
	}
	ep, err := s.endpoint(nil)
	if err != nil {
		return nil, err
	}
	if len(s.homes) == 1 { // one home: keep the shared numbering on a bus
		h := s.homes[0]
		ep.units = map[uint8]unitDevice{
			SharedMeterUnit(0):    {h, meterDevice(s.meterProfile)},
			SharedInverterUnit(0): {h, inverterDevice(h)},
		}
	}
	port, err := serial.Open(&serial.Config{
		Address: path, BaudRate: o.Baud, DataBits: 8, StopBits: o.StopBits, Parity: o.Parity,
		Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("sim: serial port %s: %w", path, err)
	}
	r := &rtuServer{ep: ep, port: port, done: make(chan struct{})}
	r.wg.Add(1)
	go r.serve()
	url := fmt.Sprintf("rtu://%s?baud=%d&parity=%s&stop=%d", path, o.Baud, o.Parity, o.StopBits)
	s.opts.Logger.Info("serving simulated devices", "url", url, "homes", len(s.homes))
	return &Listener{URL: url, stop: r.close}, nil
}

type rtuServer struct {
	ep   *endpoint
	port serial.Port
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// close stops serve, then closes the port: goburrow/serial's port must not
// be closed while serve reads it (Close writes the descriptor Read uses).
// serve sees done within one read timeout (50 ms).
func (r *rtuServer) close() error {
	var err error
	r.once.Do(func() {
		// serve sees done within one read timeout (50ms); the port is
		// closed only after it has returned, as goburrow/serial's Close
		// writes the descriptor that a Read in flight reads (and a closed
		// descriptor number can be reused under a select in flight).
		close(r.done)
		r.wg.Wait()
		err = r.port.Close()
	})
	return err
}

// serve reads request frames and answers those addressed to our units. A
// frame is found by its CRC; bytes that never make a valid frame are
// dropped at the next silence on the line.
func (r *rtuServer) serve() {
	defer r.wg.Done()
	buf := make([]byte, 0, 256)
	chunk := make([]byte, 256)
	for {
		select {
		case <-r.done:
			return
		default:
		}
		n, err := r.port.Read(chunk)
		if n < 0 { // the serial library reports -1 with some errors
			n = 0
		}
		buf = append(buf, chunk[:n]...)
		for len(buf) >= 8 {
			if bus.CRC16(buf[:6]) != binary.LittleEndian.Uint16(buf[6:8]) {
				buf = buf[1:] // resynchronise
				continue
			}
			r.answer(buf[:8])
			buf = buf[8:]
		}
		if errors.Is(err, serial.ErrTimeout) || n == 0 {
			buf = buf[:0] // silence ends any partial frame
		}
		if err != nil && !errors.Is(err, serial.ErrTimeout) {
			select {
			case <-r.done:
				return
			default:
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// answer handles one 8-byte request: read holding (3) or input (4)
// registers. Other functions get exception 1.
func (r *rtuServer) answer(req []byte) {
	unit, fn := req[0], req[1]
	if _, ok := r.ep.units[unit]; !ok || unit == 0 {
		return // not ours: another device on the bus would answer
	}
	addr := binary.BigEndian.Uint16(req[2:4])
	count := binary.BigEndian.Uint16(req[4:6])
	var regs []uint16
	var err error
	switch fn {
	case 3:
		regs, err = r.ep.read(unit, holdingRegs, addr, count)
	case 4:
		regs, err = r.ep.read(unit, inputRegs, addr, count)
	default:
		err = mbserver.ErrIllegalFunction
	}
	if err == nil && (count == 0 || count > 125) {
		err = mbserver.ErrIllegalDataValue
	}
	var resp []byte
	if err != nil {
		resp = []byte{unit, fn | 0x80, exceptionCode(err)}
	} else {
		resp = append(make([]byte, 0, 5+2*len(regs)), unit, fn, byte(2*len(regs)))
		for _, v := range regs {
			resp = binary.BigEndian.AppendUint16(resp, v)
		}
	}
	resp = binary.LittleEndian.AppendUint16(resp, bus.CRC16(resp))
	r.port.Write(resp)
}

func exceptionCode(err error) byte {
	switch {
	case errors.Is(err, mbserver.ErrIllegalFunction):
		return 1
	case errors.Is(err, mbserver.ErrIllegalDataAddress):
		return 2
	case errors.Is(err, mbserver.ErrIllegalDataValue):
		return 3
	}
	return 4
}
