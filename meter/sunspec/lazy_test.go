package sunspec

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowRegs is a slow device on a bus: every read takes delay, and a read at
// an address in silent gets no reply, costing timeout (as a bus read with
// its retries would) before it fails. Safe for concurrent use.
type slowRegs struct {
	mu      sync.Mutex
	f       *fakeRegs
	delay   time.Duration
	timeout time.Duration
	silent  map[uint16]bool
	marker  map[uint16]int // reads of each SunSpec base
}

var errNoReply = errors.New("modbus: timeout")

func (s *slowRegs) ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error) {
	s.mu.Lock()
	silent := s.silent[addr]
	if s.marker == nil {
		s.marker = map[uint16]int{}
	}
	if count == 2 && (addr == 40000 || addr == 0 || addr == 50000) {
		s.marker[addr]++
	}
	s.mu.Unlock()
	d := s.delay
	if silent {
		d = s.timeout
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if silent {
		return nil, errNoReply
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.ReadHolding(ctx, unit, addr, count)
}

func (s *slowRegs) markerReads() map[uint16]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uint16]int{}
	for k, v := range s.marker {
		out[k] = v
	}
	return out
}

// An inverter that answers SunSpec only at base 50000, after no reply at
// 40000 and 0, each costing longer than a poll's deadline: polls that each
// wait 150ms find it, discovery runs once, and then every read is one
// request.
func TestLazyFindsASlowDeviceAtALaterBase(t *testing.T) {
	s := &slowRegs{f: newFake(t).load(50000, inverter103(t, 50000)...), delay: 10 * time.Millisecond,
		timeout: 300 * time.Millisecond, silent: map[uint16]bool{40000: true, 0: true}}
	l := NewLazy(s, 1, LazyOptions{Budget: 5 * time.Second, Now: clock})
	var polls int
	for deadline := time.Now().Add(5 * time.Second); ; polls++ {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		r, err := l.Read(ctx)
		cancel()
		if err == nil {
			checkInverter103(t, r)
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "discovery still running") {
			t.Fatalf("poll %d: %v, want the discovery still running", polls, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not found after %d polls", polls)
		}
	}
	if polls < 3 {
		t.Errorf("found after %d polls: the test did not cut discovery short", polls)
	}
	if m := s.markerReads(); m[40000] != 1 || m[0] != 1 || m[50000] != 1 {
		t.Errorf("marker reads %v, want each base once: one discovery", m)
	}
	if d := l.Device(); d == nil || d.Base != 50000 {
		t.Errorf("device %+v", d)
	}
	before := len(s.f.calls)
	if _, err := l.Read(context.Background()); err != nil || len(s.f.calls) != before+1 {
		t.Errorf("read after discovery: %v, %d requests, want one", err, len(s.f.calls)-before)
	}
}

// A failure says what happened: out of time is not "not SunSpec"; either is
// remembered, and Reads in between do not touch the bus.
func TestLazyFailures(t *testing.T) {
	t.Run("budget", func(t *testing.T) {
		s := &slowRegs{f: newFake(t).load(50000, inverter103(t, 50000)...), timeout: time.Second,
			silent: map[uint16]bool{40000: true}}
		l := NewLazy(s, 3, LazyOptions{Budget: 100 * time.Millisecond})
		_, err := l.Read(context.Background())
		if !errors.Is(err, ErrDiscoveryBudget) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotSunSpec) ||
			!strings.Contains(err.Error(), "unit 3") || !strings.Contains(err.Error(), "budget of 100ms") {
			t.Fatalf("error %v, want the budget named, not ErrNotSunSpec", err)
		}
	})
	t.Run("not sunspec", func(t *testing.T) {
		s := &slowRegs{f: newFake(t).load(0, 1, 2)}
		l := NewLazy(s, 4, LazyOptions{RediscoverAfter: 200 * time.Millisecond})
		_, err := l.Read(context.Background())
		if !errors.Is(err, ErrNotSunSpec) || errors.Is(err, ErrDiscoveryBudget) || !strings.Contains(err.Error(), "unit 4") {
			t.Fatalf("error %v, want ErrNotSunSpec", err)
		}
		n := len(s.f.calls)
		_, err2 := l.Read(context.Background())
		if !errors.Is(err2, ErrNotSunSpec) || !strings.Contains(err2.Error(), "next discovery in") || len(s.f.calls) != n {
			t.Errorf("second read: %v after %d more requests, want the remembered failure and none", err2, len(s.f.calls)-n)
		}
		time.Sleep(250 * time.Millisecond)
		s.mu.Lock()
		s.f.load(40000, inverter103(t, 40000)...) // switched on and ready now
		s.mu.Unlock()
		if _, err := l.Read(context.Background()); err != nil {
			t.Errorf("read after RediscoverAfter: %v", err)
		}
	})
}
