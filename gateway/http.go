package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Connectivity reports whether the MQTT connection is up; the real client
// has it, fakes may not.
type Connectivity interface{ Connected() bool }

// Health is the body of /healthz.
type Health struct {
	Status  string            `json:"status"` // ok or degraded
	Gateway string            `json:"gateway"`
	MQTT    string            `json:"mqtt"` // connected, disconnected or unknown
	Devices map[string]string `json:"devices,omitempty"`
	Alarms  int               `json:"alarms"`
	// AlarmKinds are the kinds of the open alarms, as in the status message.
	AlarmKinds []string `json:"alarm_kinds,omitempty"`
	// RosterVersion is the seq of the newest roster version held (0: a
	// plain roster file).
	RosterVersion uint64    `json:"roster_version"`
	Time          time.Time `json:"time"`
}

// Health reports the gateway's state: degraded when MQTT is down, a
// device's last reading is stale, or an alarm is open.
func (g *Gateway) Health() Health {
	now := g.now()
	h := Health{Status: "ok", Gateway: g.id, MQTT: "unknown", Devices: map[string]string{}, RosterVersion: g.rosters.Newest().Seq, Time: now}
	if c, ok := g.mq.(Connectivity); ok {
		h.MQTT = "disconnected"
		if c.Connected() {
			h.MQTT = "connected"
		} else {
			h.Status = "degraded"
		}
	}
	devs, ok := g.deviceHealth(now)
	h.Devices = devs
	if !ok {
		h.Status = "degraded"
	}
	for _, a := range g.Alarms() {
		h.Alarms++
		h.AlarmKinds = append(h.AlarmKinds, a.Kind)
		h.Status = "degraded"
	}
	return h
}

// Handler serves /metrics (Prometheus, from reg), /healthz (JSON; 200
// when ok, 503 when degraded) and TariffPath (the price for evcc: tariff.go).
func (g *Gateway) Handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := g.Health()
		w.Header().Set("Content-Type", "application/json")
		if h.Status != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc(TariffPath, g.tariffHandler())
	return mux
}
