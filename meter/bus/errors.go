package bus

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// ErrDeviceBusy matches (with errors.Is) an *ExceptionError with code 6,
// server device busy, returned once the busy retries are used up.
var ErrDeviceBusy = errors.New("modbus server device busy")

// ErrTimeout matches (with errors.Is) a read that got no complete reply
// within the timeout, on its last attempt.
var ErrTimeout = errors.New("timeout")

// errClosed is returned by reads on a closed Bus.
var errClosed = errors.New("bus is closed")

// Exception codes with a meaning of their own here.
const (
	exceptionDeviceBusy = 6
)

// exceptionNames are the Modbus exception codes 1-11 (9 is unassigned).
var exceptionNames = [...]string{
	1:  "illegal function",
	2:  "illegal data address",
	3:  "illegal data value",
	4:  "server device failure",
	5:  "acknowledge",
	6:  "server device busy",
	7:  "negative acknowledge",
	8:  "memory parity error",
	10: "gateway path unavailable",
	11: "gateway target device failed to respond",
}

// ExceptionError is a Modbus exception reply: the device understood the
// request and refused it.
type ExceptionError struct {
	Unit     uint8
	Function byte // the function code of the request, without the 0x80 bit
	Code     byte
}

func (e *ExceptionError) Error() string {
	name := "unknown exception code"
	if int(e.Code) < len(exceptionNames) && exceptionNames[e.Code] != "" {
		name = exceptionNames[e.Code]
	}
	return fmt.Sprintf("unit %d: modbus exception %d (%s) on function %d", e.Unit, e.Code, name, e.Function)
}

// Is makes errors.Is(err, ErrDeviceBusy) true for exception 6.
func (e *ExceptionError) Is(target error) bool {
	return target == ErrDeviceBusy && e.Code == exceptionDeviceBusy
}

// replyError is a reply that is not a valid answer to the request: wrong
// function code, wrong register count, bad CRC, wrong unit, bad framing.
type replyError struct{ msg string }

func (e *replyError) Error() string { return e.msg }

func badReply(format string, args ...any) error {
	return &replyError{msg: fmt.Sprintf(format, args...)}
}

// isTimeout says whether err is an I/O timeout from the network or from
// goburrow's serial port.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, serial.ErrTimeout) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// classify turns an error from the goburrow client into ours: an
// *ExceptionError for a genuine exception reply (function code with the
// 0x80 bit), a replyError for a reply with any other wrong function code
// (which goburrow reports as an exception too), ErrTimeout for timeouts,
// and anything else unchanged.
func classify(err error, unit uint8, function byte, timeout time.Duration) error {
	var me *modbus.ModbusError
	if errors.As(err, &me) {
		if me.FunctionCode == function|0x80 {
			return &ExceptionError{Unit: unit, Function: function, Code: me.ExceptionCode}
		}
		return badReply("reply has function code %d, want %d", me.FunctionCode, function)
	}
	if isTimeout(err) {
		return fmt.Errorf("%w: no complete reply within %s (%v)", ErrTimeout, timeout, err)
	}
	return err
}
