package bus

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/goburrow/modbus"
)

// RTU over TCP: RTU frames (unit, PDU, CRC-16/MODBUS) on a TCP socket, as
// RS-485-to-Ethernet converters in transparent mode carry them. goburrow has
// no handler for it; rtuPackager and rtuTransporter are one, for
// modbus.NewClient2. rtuPackager and readRTUFrame are the RTU framing of
// the serial transport too.

var (
	_ modbus.Packager    = (*rtuPackager)(nil)
	_ modbus.Transporter = (*rtuTransporter)(nil)
)

// RTU frame sizes.
const (
	rtuMaxFrame      = 256 // unit + 253 bytes of PDU + CRC
	rtuExceptionSize = 5   // unit, function|0x80, code, CRC
)

// rtuPackager frames PDUs for one unit at a time, like goburrow's own
// (unexported) RTU packager, and checks replies more strictly.
type rtuPackager struct {
	unit byte
}

// Encode frames pdu as unit, function, data, CRC (low byte first).
func (p *rtuPackager) Encode(pdu *modbus.ProtocolDataUnit) ([]byte, error) {
	n := 2 + len(pdu.Data) + 2
	if n > rtuMaxFrame {
		return nil, fmt.Errorf("rtu request of %d bytes is longer than %d", n, rtuMaxFrame)
	}
	adu := make([]byte, 0, n)
	adu = append(adu, p.unit, pdu.FunctionCode)
	adu = append(adu, pdu.Data...)
	return appendCRC(adu), nil
}

// Verify checks the reply's CRC, then that it comes from the unit asked and
// answers the function asked (or is an exception to it).
func (p *rtuPackager) Verify(req, resp []byte) error {
	if len(resp) < 4 {
		return badReply("rtu reply of %d bytes is shorter than 4", len(resp))
	}
	body := resp[:len(resp)-2]
	if got, want := uint16(resp[len(resp)-2])|uint16(resp[len(resp)-1])<<8, CRC16(body); got != want {
		return badReply("rtu reply crc %04x does not match computed %04x", got, want)
	}
	if resp[0] != req[0] {
		return badReply("rtu reply from unit %d to a request to unit %d", resp[0], req[0])
	}
	if resp[1] != req[1] && resp[1] != req[1]|0x80 {
		return badReply("reply has function code %d, want %d", resp[1], req[1])
	}
	return nil
}

// Decode returns the PDU inside a verified frame.
func (p *rtuPackager) Decode(adu []byte) (*modbus.ProtocolDataUnit, error) {
	if len(adu) < 4 {
		return nil, badReply("rtu reply of %d bytes is shorter than 4", len(adu))
	}
	return &modbus.ProtocolDataUnit{FunctionCode: adu[1], Data: adu[2 : len(adu)-2]}, nil
}

// rtuTransporter sends one RTU frame on a TCP connection and reads exactly
// one reply frame, its length worked out from the function code and byte
// count as goburrow's serial RTU client does. The connection is opened on
// first use; the Bus closes it after any fault.
type rtuTransporter struct {
	dial    func(timeout time.Duration) (net.Conn, error)
	timeout time.Duration // per request, set by the Bus before each Send
	conn    net.Conn
}

func newRTUTransporter(addr string) *rtuTransporter {
	return &rtuTransporter{dial: func(timeout time.Duration) (net.Conn, error) {
		return net.DialTimeout("tcp", addr, timeout)
	}}
}

// Send writes req and reads one reply frame within the timeout.
func (t *rtuTransporter) Send(req []byte) ([]byte, error) {
	if len(req) < 4 {
		return nil, fmt.Errorf("rtu request of %d bytes is shorter than 4", len(req))
	}
	start := time.Now()
	if t.conn == nil {
		conn, err := t.dial(t.timeout)
		if err != nil {
			return nil, err
		}
		t.conn = conn
	}
	if t.timeout > 0 {
		if err := t.conn.SetDeadline(start.Add(t.timeout)); err != nil {
			return nil, err
		}
	}
	if _, err := t.conn.Write(req); err != nil {
		return nil, err
	}
	return readRTUFrame(t.conn, req[1])
}

// readRTUFrame reads one reply frame to a request with the given function
// code. It reads no further than the frame, so that a well-formed reply
// leaves the connection in step; a reply it cannot frame is an error, after
// which the connection must be closed.
func readRTUFrame(r io.Reader, function byte) ([]byte, error) {
	var buf [rtuMaxFrame]byte
	have := 2 // unit and function code
	if _, err := io.ReadFull(r, buf[:have]); err != nil {
		return nil, err
	}
	var n int // length of the whole frame
	switch buf[1] {
	case function | 0x80:
		n = rtuExceptionSize
	case function:
		switch function {
		case modbus.FuncCodeReadCoils, modbus.FuncCodeReadDiscreteInputs,
			modbus.FuncCodeReadHoldingRegisters, modbus.FuncCodeReadInputRegisters,
			modbus.FuncCodeReadWriteMultipleRegisters:
			have = 3 // and the byte count
			if _, err := io.ReadFull(r, buf[2:have]); err != nil {
				return nil, err
			}
			n = 3 + int(buf[2]) + 2
		case modbus.FuncCodeWriteSingleCoil, modbus.FuncCodeWriteSingleRegister,
			modbus.FuncCodeWriteMultipleCoils, modbus.FuncCodeWriteMultipleRegisters:
			n = 2 + 4 + 2
		case modbus.FuncCodeMaskWriteRegister:
			n = 2 + 6 + 2
		default:
			return nil, fmt.Errorf("rtu over tcp cannot frame replies to function %d", function)
		}
	default:
		return nil, badReply("reply has function code %d, want %d", buf[1], function)
	}
	if n > rtuMaxFrame {
		return nil, badReply("rtu reply of %d bytes is longer than %d", n, rtuMaxFrame)
	}
	if _, err := io.ReadFull(r, buf[have:n]); err != nil {
		return nil, err
	}
	return buf[:n:n], nil
}

// Close closes the connection, if one is open.
func (t *rtuTransporter) Close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}

// CRC16 is the Modbus RTU frame check, CRC-16/MODBUS (poly 0xA001
// reflected, init 0xFFFF), sent low byte first. The simulator's RTU server
// uses it too.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// appendCRC appends the CRC of b, low byte first as RTU sends it.
func appendCRC(b []byte) []byte {
	c := CRC16(b)
	return append(b, byte(c), byte(c>>8))
}
