package gateway

import (
	"math"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// metrics are the gateway's Prometheus metrics, node_exporter style:
// p2pgrid_<subsystem>_<name>_<unit>, counters ending in _total.
type metrics struct {
	reads            *prometheus.CounterVec
	power            *prometheus.GaugeVec
	lastReading      *prometheus.GaugeVec
	readDuration     *prometheus.HistogramVec
	ordersPlaced     *prometheus.CounterVec
	ordersSkipped    *prometheus.CounterVec
	ordersAccepted   prometheus.Counter
	ordersRejected   *prometheus.CounterVec
	intervalsCleared prometheus.Counter
	verifications    *prometheus.CounterVec
	alarms           *prometheus.CounterVec
	badMessages      *prometheus.CounterVec
	rosterRejected   *prometheus.CounterVec
	rosterVersion    prometheus.Gauge
	meteredMissing   *prometheus.CounterVec
	meteredLost      prometheus.Counter
	ledgerFailures   prometheus.Counter
	price            prometheus.Gauge
	volume           prometheus.Gauge
	orders           prometheus.Gauge
}

func newMetrics(r prometheus.Registerer, version string) *metrics {
	m := buildMetrics(r)
	if version == "" {
		version = "dev"
	}
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "p2pgrid_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}}, func() float64 { return 1 }))
	// Export every rejection reason from the start, at 0, so that a rate
	// or an alert on one works before the first such rejection.
	for _, reason := range protocol.RejectReasons {
		m.ordersRejected.WithLabelValues(string(reason))
	}
	for _, reason := range protocol.RejectReasons {
		m.rosterRejected.WithLabelValues(string(reason))
	}
	for _, result := range []string{"ok", "settlement_ok"} {
		m.verifications.WithLabelValues(result)
	}
	for _, kind := range protocol.AlarmKinds {
		m.alarms.WithLabelValues(kind)
	}
	for _, side := range []string{"buy", "sell"} {
		m.ordersPlaced.WithLabelValues(side)
	}
	for _, reason := range skipReasons() {
		m.ordersSkipped.WithLabelValues(reason)
	}
	for _, kind := range []string{"unknown", protocol.KindMetered, protocol.KindBook, protocol.KindResult, protocol.KindSettlement, protocol.KindRoster} {
		m.badMessages.WithLabelValues(kind)
	}
	for _, reason := range []string{"late_reading", "counter_reset", "not_running"} {
		m.meteredMissing.WithLabelValues(reason)
	}
	m.price.Set(math.NaN())
	return m
}

func buildMetrics(r prometheus.Registerer) *metrics {
	f := func(c prometheus.Collector) prometheus.Collector { r.MustRegister(c); return c }
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)).(*prometheus.CounterVec)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return f(prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})).(prometheus.Gauge)
	}
	return &metrics{
		reads: cv("p2pgrid_meter_reads_total", "Device polls, by device and result (ok, error).", "device", "result"),
		power: f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "p2pgrid_meter_power_watts",
			Help: "Last power reading by device: a grid meter > 0 imports, an inverter > 0 produces; absent while the reading is stale."}, []string{"device"})).(*prometheus.GaugeVec),
		lastReading: f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "p2pgrid_meter_last_reading_timestamp_seconds",
			Help: "Unix time of the last successful reading by device (0: none yet)."}, []string{"device"})).(*prometheus.GaugeVec),
		readDuration: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "p2pgrid_meter_read_duration_seconds",
			Help:    "Time one poll of a device took, failed ones included, by device.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"device"})).(*prometheus.HistogramVec),
		ordersPlaced:     cv("p2pgrid_orders_placed_total", "Orders this gateway placed, by side.", "side"),
		ordersSkipped:    cv("p2pgrid_orders_skipped_total", "Intervals without an order from this gateway, by reason.", "reason"),
		ordersAccepted:   f(prometheus.NewCounter(prometheus.CounterOpts{Name: "p2pgrid_clearer_orders_accepted_total", Help: "Orders the clearer accepted."})).(prometheus.Counter),
		ordersRejected:   cv("p2pgrid_clearer_orders_rejected_total", "Orders the clearer rejected, by reason.", "reason"),
		intervalsCleared: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "p2pgrid_clearer_intervals_cleared_total", Help: "Intervals this gateway cleared and published."})).(prometheus.Counter),
		verifications:    cv("p2pgrid_verifications_total", "Verifications of published clearings, by result (ok or an alarm kind).", "result"),
		alarms:           cv("p2pgrid_alarms_total", "Alarms raised, by kind.", "kind"),
		badMessages:      cv("p2pgrid_mqtt_bad_messages_total", "Messages that could not be used, by topic kind.", "kind"),
		rosterRejected: cv("p2pgrid_roster_rejected_total",
			"Roster versions rejected, from the roster topic or the roster file, by reason (forged, replayed, unsigned, wrong_community, malformed, late, ...).", "reason"),
		rosterVersion: gauge("p2pgrid_roster_version", "Seq of the newest roster version held (0: a plain roster file, fixed until a restart)."),
		meteredMissing: cv("p2pgrid_metered_missing_total",
			"Intervals for which this gateway could not publish metered figures, by reason (late_reading, counter_reset, not_running).", "reason"),
		meteredLost: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "p2pgrid_metered_lost_total",
			Help: "Intervals whose verified settlement lacks the metered figures this gateway published."})).(prometheus.Counter),
		ledgerFailures: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "p2pgrid_ledger_append_failures_total",
			Help: "Ledger appends that failed."})).(prometheus.Counter),
		price:  gauge("p2pgrid_clearing_price", "Price per kWh of the last verified clearing (NaN: it had no trade, or none yet)."),
		volume: gauge("p2pgrid_clearing_volume_kwh", "kWh traded in the last verified clearing."),
		orders: gauge("p2pgrid_clearing_orders", "Orders in the last verified clearing's book."),
	}
}

// observeClearing records a verified clearing. Metrics are for display:
// the float conversion here never feeds back into market math.
func (m *metrics) observeClearing(r *auction.Result, mk *auction.Market) {
	m.orders.Set(float64(r.Orders))
	vol, _ := mk.KWh(r.Volume).Float64()
	m.volume.Set(vol)
	if r.Cleared {
		p, _ := mk.Price(r.Price).Float64()
		m.price.Set(p)
	} else {
		m.price.Set(math.NaN())
	}
}
