package device

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// lateBase is a Modbus TCP inverter whose SunSpec image is at 50000 only:
// reads at 40000 and 0 get no reply at all (as on devices that drop
// requests to unmapped blocks), every reply comes after delay.
type lateBase struct {
	ln    net.Listener
	image map[uint16]uint16
	delay time.Duration
	mu    sync.Mutex
	asked map[uint16]int // marker reads by address
}

func newLateBase(t *testing.T, delay time.Duration) *lateBase {
	t.Helper()
	regs, err := sunspec.Image(50000, sunspec.Common("Slow Solar", "SS-1", "SN-7"),
		sunspec.Block{ID: 103, Values: map[string]decimal.Decimal{"W": decimal.NewFromInt(2100), "WH": decimal.NewFromInt(777)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d := &lateBase{ln: ln, image: map[uint16]uint16{}, delay: delay, asked: map[uint16]int{}}
	for i, v := range regs {
		d.image[uint16(50000+i)] = v
	}
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

func (d *lateBase) serve(c net.Conn) {
	defer c.Close()
	for {
		var req [12]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		addr, count := binary.BigEndian.Uint16(req[8:]), binary.BigEndian.Uint16(req[10:])
		if count == 2 {
			d.mu.Lock()
			d.asked[addr]++
			d.mu.Unlock()
		}
		if addr < 50000 {
			continue // no reply
		}
		time.Sleep(d.delay)
		pdu := []byte{req[7], byte(2 * count)}
		for a := int(addr); a < int(addr)+int(count); a++ {
			v, ok := d.image[uint16(a)]
			if !ok {
				pdu = []byte{req[7] | 0x80, 2}
				break
			}
			pdu = binary.BigEndian.AppendUint16(pdu, v)
		}
		reply := binary.BigEndian.AppendUint16(req[:4:4], uint16(len(pdu)+1))
		if _, err := c.Write(append(append(reply, req[6]), pdu...)); err != nil {
			return
		}
	}
}

// Over a real bus, with its timeouts and retries: looking at 40000 and 0
// takes longer than one poll's deadline, yet polls find the inverter, and
// discovery ran once (each base asked once per attempt, not once per poll).
func TestSunSpecAtALaterBaseBehindTimeouts(t *testing.T) {
	d := newLateBase(t, 20*time.Millisecond)
	b, err := bus.Open("tcp://"+d.ln.Addr().String(), bus.Options{Timeout: 200 * time.Millisecond, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dev, err := Open(b, 1, SunSpec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const pollDeadline = 300 * time.Millisecond // what a poll allows one read
	var r meter.Reading
	polls := 0
	for deadline := time.Now().Add(10 * time.Second); ; polls++ {
		ctx, cancel := context.WithTimeout(context.Background(), pollDeadline)
		r, err = dev.Read(ctx)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "discovery still running") {
			t.Fatalf("poll %d: %v", polls, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not found after %d polls", polls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.Kind != meter.KindInverter || r.PowerW == nil || *r.PowerW != 2100 || r.Manufacturer != "Slow Solar" {
		t.Errorf("reading %+v", r)
	}
	if polls < 2 {
		t.Errorf("found after %d polls: discovery was not longer than a poll", polls)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	attempts := 1 + bus.DefaultRetries
	if d.asked[40000] != attempts || d.asked[0] != attempts || d.asked[50000] != 1 {
		t.Errorf("marker reads %v, want %d at 40000 and 0 and 1 at 50000: one discovery", d.asked, attempts)
	}
}
