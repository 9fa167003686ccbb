package mqtt

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the client's Prometheus metrics, read from Stats, as
// settlement/influx's sink does: the daemon only registers them.
func (c *Client) Collectors() []prometheus.Collector {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(c.Stats())) })
	}
	return []prometheus.Collector{
		counter("p2pgrid_mqtt_reconnects_total", "MQTT reconnections after the first connection.", func(s Stats) uint64 { return s.Reconnects }),
		counter("p2pgrid_mqtt_connection_lost_total", "MQTT connections that died.", func(s Stats) uint64 { return s.ConnectionLost }),
		counter("p2pgrid_mqtt_published_total", "MQTT messages published.", func(s Stats) uint64 { return s.Published }),
		counter("p2pgrid_mqtt_received_total", "MQTT messages received.", func(s Stats) uint64 { return s.Received }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "p2pgrid_mqtt_connected", Help: "1 when connected to the broker."}, func() float64 {
			if c.Connected() {
				return 1
			}
			return 0
		}),
	}
}
