package main

import (
	"sort"
	"sync"

	"github.com/p2pgrid/p2pgrid/dashboard"
	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// demoLive is the demo dashboard's live feed: each in-process gateway's
// health (online when connected to MQTT, its open alarms) and its
// verification of each recent interval, as its Observer tells them.
type demoLive struct {
	ids []string // every gateway, operator first

	mu       sync.Mutex
	gateways map[string]*gateway.Gateway // those started
	verified map[string]map[string]dashboard.Verification
	order    []string // intervals verified, oldest first
}

// demoLiveIntervals bounds the intervals whose verifications are kept.
const demoLiveIntervals = 512

func newDemoLive(ids []string) *demoLive {
	return &demoLive{ids: ids, gateways: map[string]*gateway.Gateway{}, verified: map[string]map[string]dashboard.Verification{}}
}

var (
	_ dashboard.Live   = (*demoLive)(nil)
	_ gateway.Observer = (*demoLive)(nil)
)

// ready is neighbourhood.Options.Ready: g has started.
func (l *demoLive) ready(g *gateway.Gateway) {
	h := g.Health()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gateways[h.Gateway] = g
}

// Gateways implements dashboard.Live.
func (l *demoLive) Gateways() []dashboard.GatewayStatus {
	l.mu.Lock()
	gws := make(map[string]*gateway.Gateway, len(l.gateways))
	for id, g := range l.gateways {
		gws[id] = g
	}
	l.mu.Unlock()
	var out []dashboard.GatewayStatus
	for _, id := range l.ids {
		g := gws[id]
		if g == nil {
			out = append(out, dashboard.GatewayStatus{ID: id, Status: "not started"})
			continue
		}
		h := g.Health()
		out = append(out, dashboard.GatewayStatus{ID: id, Online: h.MQTT == "connected", Status: h.Status + ", MQTT " + h.MQTT, Alarms: h.AlarmKinds})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Verifications implements dashboard.Live.
func (l *demoLive) Verifications(interval string) []dashboard.Verification {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []dashboard.Verification
	for _, v := range l.verified[interval] {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Gateway < out[j].Gateway })
	return out
}

// Verified implements gateway.Observer.
func (l *demoLive) Verified(gw, interval string, _ *clearing.Verdict, err error) {
	v := dashboard.Verification{Gateway: gw, Verified: err == nil}
	if err != nil {
		v.Err = err.Error()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.verified[interval]
	if m == nil {
		m = map[string]dashboard.Verification{}
		l.verified[interval] = m
		l.order = append(l.order, interval)
		if len(l.order) > demoLiveIntervals {
			delete(l.verified, l.order[0])
			l.order = l.order[1:]
		}
	}
	m[gw] = v
}

// Sealed implements gateway.Observer.
func (l *demoLive) Sealed(string, *clearing.Sealed) {}

// Settled implements gateway.Observer.
func (l *demoLive) Settled(string, *settlement.IntervalSettlement) {}

// observers tells every one of its Observers, in order.
type observers []gateway.Observer

var _ gateway.Observer = observers(nil)

func (os observers) Verified(gw, interval string, v *clearing.Verdict, err error) {
	for _, o := range os {
		o.Verified(gw, interval, v, err)
	}
}

func (os observers) Sealed(gw string, s *clearing.Sealed) {
	for _, o := range os {
		o.Sealed(gw, s)
	}
}

func (os observers) Settled(gw string, s *settlement.IntervalSettlement) {
	for _, o := range os {
		o.Settled(gw, s)
	}
}
