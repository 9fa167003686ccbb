// Package metertest has fakes for the tests of Modbus readers: TCPDevice, a
// Modbus TCP device on a loopback port whose units, silences and delays a
// test sets, and which counts the requests it gets; and StartPymodbus, the
// one launcher of a real peer, Debian's pymodbus, serving register images
// over Modbus TCP or RTU. It is for tests only.
package metertest

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TCPDevice is a Modbus TCP server answering reads of holding (3) and
// input (4) registers. A unit it has not been given never answers, as on a
// bus where it does not exist; a read of a unit it has that touches a
// register it lacks is exception 2 (illegal data address); a read starting
// at an address silenced with Silence gets no reply. Every reply waits
// Delay. It stops when the test ends. Safe for concurrent use.
type TCPDevice struct {
	ln net.Listener

	mu    sync.Mutex
	units map[uint8]*unit
	delay time.Duration
	asked map[uint8]map[uint16]int // requests by unit and start address
}

type unit struct {
	holding, input map[uint16]uint16
	silent         map[uint16]bool
}

// NewTCP starts a device with no units on a loopback port.
func NewTCP(t testing.TB) *TCPDevice {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &TCPDevice{ln: ln, units: map[uint8]*unit{}, asked: map[uint8]map[uint16]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go d.serve(c)
		}
	}()
	return d
}

// URL is the device's tcp:// URL.
func (d *TCPDevice) URL() string { return "tcp://" + d.ln.Addr().String() }

func (d *TCPDevice) unit(u uint8) *unit {
	if d.units[u] == nil {
		d.units[u] = &unit{holding: map[uint16]uint16{}, input: map[uint16]uint16{}, silent: map[uint16]bool{}}
	}
	return d.units[u]
}

// SetHolding gives unit u holding registers addr, addr+1, ... with values.
func (d *TCPDevice) SetHolding(u uint8, addr uint16, values ...uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, v := range values {
		d.unit(u).holding[addr+uint16(i)] = v
	}
}

// SetInput gives unit u input registers addr, addr+1, ... with values.
func (d *TCPDevice) SetInput(u uint8, addr uint16, values ...uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, v := range values {
		d.unit(u).input[addr+uint16(i)] = v
	}
}

// Silence makes reads of unit u that start at any of addrs get no reply.
func (d *TCPDevice) Silence(u uint8, addrs ...uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range addrs {
		d.unit(u).silent[a] = true
	}
}

// SetDelay makes every reply wait delay.
func (d *TCPDevice) SetDelay(delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delay = delay
}

// Asked returns how many requests unit u got that start at addr.
func (d *TCPDevice) Asked(u uint8, addr uint16) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[u][addr]
}

// Requests returns how many requests unit u got.
func (d *TCPDevice) Requests(u uint8) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.asked[u] {
		n += c
	}
	return n
}

// Highest returns the highest unit id asked so far (0 if none).
func (d *TCPDevice) Highest() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var top uint8
	for u := range d.asked {
		top = max(top, u)
	}
	return top
}

func (d *TCPDevice) serve(c net.Conn) {
	defer c.Close()
	for {
		var req [12]byte // MBAP header (7) and a read request (5)
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		u, fn := req[6], req[7]
		addr, count := binary.BigEndian.Uint16(req[8:]), binary.BigEndian.Uint16(req[10:])
		pdu, delay, ok := d.answer(u, fn, addr, count)
		if !ok {
			continue
		}
		time.Sleep(delay)
		reply := binary.BigEndian.AppendUint16(req[:4:4], uint16(len(pdu)+1))
		if _, err := c.Write(append(append(reply, u), pdu...)); err != nil {
			return
		}
	}
}

// answer returns the reply PDU to a request, or false for no reply.
func (d *TCPDevice) answer(u, fn byte, addr, count uint16) ([]byte, time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.asked[u] == nil {
		d.asked[u] = map[uint16]int{}
	}
	d.asked[u][addr]++
	un := d.units[u]
	if un == nil || un.silent[addr] {
		return nil, 0, false
	}
	regs := un.holding
	switch fn {
	case 3:
	case 4:
		regs = un.input
	default:
		return []byte{fn | 0x80, 1}, d.delay, true // illegal function
	}
	if count < 1 || count > 125 {
		return []byte{fn | 0x80, 3}, d.delay, true // illegal data value
	}
	pdu := []byte{fn, byte(2 * count)}
	for a := int(addr); a < int(addr)+int(count); a++ {
		v, ok := regs[uint16(a)]
		if a > 0xFFFF || !ok {
			return []byte{fn | 0x80, 2}, d.delay, true // illegal data address
		}
		pdu = binary.BigEndian.AppendUint16(pdu, v)
	}
	return pdu, d.delay, true
}
