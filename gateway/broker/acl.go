package broker

import (
	"slices"
	"strings"
)

// The ACL below mirrors configs/mosquitto/acl; change both together (the
// tests run the same cases against this hook and against Mosquitto with
// the shipped file). The clearers play the shipped operator's part: they
// read every home's telemetry and status too.
//
//	pattern readwrite p2pgrid/v1/+/orders/%u
//	pattern readwrite p2pgrid/v1/+/telemetry/%u
//	pattern readwrite p2pgrid/v1/+/status/%u
//	pattern readwrite p2pgrid/v1/+/metered/%u
//	pattern readwrite p2pgrid/v1/+/app/%u/+
//	pattern readwrite homeassistant/sensor/p2pgrid_%u/+/config
//	pattern read p2pgrid/v1/+/orders/+, p2pgrid/v1/+/book/+, p2pgrid/v1/+/result/+,
//	             p2pgrid/v1/+/settlement/+, p2pgrid/v1/+/roster
//	user <clearer>: topic write p2pgrid/v1/+/book/#, p2pgrid/v1/+/result/#,
//	                p2pgrid/v1/+/settlement/#, p2pgrid/v1/+/roster
//	                topic read p2pgrid/v1/+/metered/+, p2pgrid/v1/+/telemetry/+,
//	                p2pgrid/v1/+/status/+

// CanPublish reports whether user may publish to topic under the shipped
// ACL, clearers being the users with clearer rights.
func CanPublish(user, topic string, clearers []string) bool {
	if user == "" || strings.ContainsAny(user, "/+#") {
		// Mosquitto does not match %u for a username with '+' or '#'; a '/'
		// would split the gateway's topic level. The README forbids all three.
		return false
	}
	l := strings.Split(topic, "/")
	if ownApp(user, l) {
		return true
	}
	if len(l) < 4 || l[0] != "p2pgrid" || l[1] != "v1" {
		return false
	}
	switch l[3] {
	case "orders", "telemetry", "status", "metered":
		return len(l) == 5 && l[4] == user
	}
	if !slices.Contains(clearers, user) {
		return false
	}
	switch l[3] {
	case "book", "result", "settlement":
		return true // .../book/# also matches .../book itself
	case "roster":
		return len(l) == 4
	}
	return false
}

// ownApp reports whether the topic of levels l is one of user's app
// topics (p2pgrid/v1/+/app/<user>/+) or Home Assistant discovery configs
// (homeassistant/sensor/p2pgrid_<user>/+/config), which the shipped ACL's
// patterns give each login, to write and to read.
func ownApp(user string, l []string) bool {
	switch {
	case len(l) == 6 && l[0] == "p2pgrid" && l[1] == "v1" && l[3] == "app":
		return l[4] == user
	case len(l) == 5 && l[0] == "homeassistant" && l[1] == "sensor" && l[4] == "config":
		return l[2] == "p2pgrid_"+user
	}
	return false
}

// CanRead reports whether a message on topic may be delivered to user
// under the shipped ACL: the market (orders, books, results, settlements,
// the roster) to everybody, a gateway's telemetry, status and metered
// figures to that gateway and to the clearers, its app topics and
// discovery configs to that gateway alone, nothing else outside
// p2pgrid/v1/.
func CanRead(user, topic string, clearers []string) bool {
	if user == "" || strings.ContainsAny(user, "/+#") {
		return false // as in CanPublish
	}
	l := strings.Split(topic, "/")
	if ownApp(user, l) {
		return true
	}
	if len(l) < 4 || l[0] != "p2pgrid" || l[1] != "v1" {
		return false
	}
	switch l[3] {
	case "orders", "book", "result", "settlement":
		return len(l) == 5
	case "roster":
		return len(l) == 4
	case "telemetry", "status", "metered":
		return len(l) == 5 && (l[4] == user || slices.Contains(clearers, user))
	}
	return false
}
