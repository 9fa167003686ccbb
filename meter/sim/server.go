package sim

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// regType tells holding from input registers.
type regType uint8

const (
	holdingRegs regType = iota
	inputRegs
)

// image is the register image of one device at one moment.
type image struct {
	regs [2]map[uint16]uint16
	// lo, hi bound the addresses a device answers, per type: inside the
	// range an unmapped register reads 0 (as on real meters, so reads
	// merged across gaps work), outside it is an illegal data address.
	lo, hi [2]uint16
	any    [2]bool
}

func (im *image) set(t regType, addr uint16, vals ...uint16) {
	if im.regs[t] == nil {
		im.regs[t] = map[uint16]uint16{}
	}
	for i, v := range vals {
		a := addr + uint16(i)
		im.regs[t][a] = v
		if !im.any[t] || a < im.lo[t] {
			im.lo[t] = a
		}
		if !im.any[t] || a > im.hi[t] {
			im.hi[t] = a
		}
		im.any[t] = true
	}
}

func (im *image) read(t regType, addr, count uint16) ([]uint16, error) {
	end := uint32(addr) + uint32(count) - 1
	if count == 0 || !im.any[t] || addr < im.lo[t] || end > uint32(im.hi[t]) {
		return nil, mbserver.ErrIllegalDataAddress
	}
	out := make([]uint16, count)
	for i := range out {
		out[i] = im.regs[t][addr+uint16(i)]
	}
	return out, nil
}

// device builds a device's register image from its home's state.
type device func(State) (*image, error)

// endpoint is what one listener serves: devices by unit id.
type endpoint struct {
	sim   *Sim
	units map[uint8]unitDevice
}

type unitDevice struct {
	home *Home
	dev  device
}

func (e *endpoint) image(unit uint8) (*image, error) {
	u, ok := e.units[unit]
	if !ok {
		return nil, errNoSuchUnit
	}
	return u.dev(u.home.At(e.sim.Now()))
}

var errNoSuchUnit = errors.New("no device at this unit id")

// The simonvetter server calls these.

func (e *endpoint) HandleCoils(*mbserver.CoilsRequest) ([]bool, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (e *endpoint) HandleDiscreteInputs(*mbserver.DiscreteInputsRequest) ([]bool, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (e *endpoint) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, mbserver.ErrIllegalFunction
	}
	return e.read(req.UnitId, holdingRegs, req.Addr, req.Quantity)
}

func (e *endpoint) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	return e.read(req.UnitId, inputRegs, req.Addr, req.Quantity)
}

func (e *endpoint) read(unit uint8, t regType, addr, count uint16) ([]uint16, error) {
	im, err := e.image(unit)
	if errors.Is(err, errNoSuchUnit) {
		// On TCP, an absent unit behind a gateway: "gateway target device
		// failed to respond" is the honest answer.
		return nil, mbserver.ErrGWTargetFailedToRespond
	}
	if err != nil {
		e.sim.opts.Logger.Error("simulated device cannot build its registers", "unit", unit, "err", err)
		return nil, mbserver.ErrServerDeviceFailure
	}
	return im.read(t, addr, count)
}

// Listener is one running Modbus server of the simulation.
type Listener struct {
	URL  string // what a client dials: tcp://host:port or rtu:///dev/...
	stop func() error
}

// Close stops the listener.
func (l *Listener) Close() error { return l.stop() }

// ServeTCP serves the devices of the given homes (indices into Homes) on
// addr (host:port). With one home, its meter is unit 1 and its inverter
// unit 2; with several, home i's are SharedMeterUnit(i), SharedInverterUnit(i).
func (s *Sim) ServeTCP(addr string, homes ...int) (*Listener, error) {
	ep, err := s.endpoint(homes)
	if err != nil {
		return nil, err
	}
	url := "tcp://" + addr
	srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{
		URL:        url,
		Timeout:    5 * time.Minute,
		MaxClients: 32,
		Logger:     log.New(slogWriter{s.opts.Logger}, "", 0),
	}, ep)
	if err != nil {
		return nil, fmt.Errorf("sim: modbus server on %s: %w", addr, err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("sim: modbus server on %s: %w", addr, err)
	}
	s.opts.Logger.Info("serving simulated devices", "url", url, "homes", len(ep.units)/2)
	return &Listener{URL: url, stop: srv.Stop}, nil
}

// endpoint maps unit ids to the devices of homes (all homes if none given).
func (s *Sim) endpoint(homes []int) (*endpoint, error) {
	if len(homes) == 0 {
		for i := range s.homes {
			homes = append(homes, i)
		}
	}
	if err := checkShared(len(homes)); err != nil {
		return nil, err
	}
	ep := &endpoint{sim: s, units: map[uint8]unitDevice{}}
	for n, i := range homes {
		if i < 0 || i >= len(s.homes) {
			return nil, fmt.Errorf("sim: no home %d", i)
		}
		h := s.homes[i]
		mu, iu := MeterUnit, InverterUnit
		if len(homes) > 1 {
			mu, iu = SharedMeterUnit(n), SharedInverterUnit(n)
		}
		ep.units[mu] = unitDevice{h, meterDevice(s.meterProfile)}
		ep.units[iu] = unitDevice{h, inverterDevice(h)}
	}
	return ep, nil
}

// slogWriter adapts the server library's log.Logger output to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("modbus server", "msg", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// ServeAll serves every home on its own TCP port, from basePort up, on
// host, and returns the listeners in home order. It closes what it opened
// if one fails.
func (s *Sim) ServeAll(host string, basePort int) ([]*Listener, error) {
	var ls []*Listener
	for i := range s.homes {
		l, err := s.ServeTCP(fmt.Sprintf("%s:%d", host, basePort+i), i)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Run serves until ctx is done, then closes the listeners.
func Run(ctx context.Context, ls []*Listener) error {
	<-ctx.Done()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); l.Close() }()
	}
	wg.Wait()
	return nil
}
