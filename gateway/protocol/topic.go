package protocol

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
)

// TopicRoot is the first two levels of every p2pgrid topic; the version
// changes only with an incompatible protocol.
const TopicRoot = "p2pgrid/v1"

// QoS is the MQTT quality of service of every p2pgrid message: at least once.
// Receivers tolerate redelivery (an order received twice is "replayed").
const QoS byte = 1

// The kinds of topic, the level after the community.
const (
	KindOrders    = "orders"    // orders/<gateway>: a gateway's signed order, retained
	KindBook      = "book"      // book/<interval>: the sealed book, retained
	KindResult    = "result"    // result/<interval> and result/latest, retained
	KindTelemetry = "telemetry" // telemetry/<gateway>: live power
	KindStatus    = "status"    // status/<gateway>: online/offline and alarms, retained
	KindRoster    = "roster"    // roster: the member list, retained
	// KindMetered: metered/<gateway>: what a gateway's grid meter counted
	// in a delivery interval, signed.
	KindMetered = "metered"
	// KindSettlement: settlement/<interval>: the settled interval, retained.
	KindSettlement = "settlement"
	// KindApp: app/<gateway>/<value>: what a home's phone app and Home
	// Assistant show of its trading (gateway/summary), retained. Gateways
	// never subscribe to it, so ParseTopic does not read it.
	KindApp = "app"
)

// Latest is the key of result/latest, the retained copy of the newest result.
const Latest = "latest"

// TelemetryMinPeriod is the shortest time between two telemetry messages of
// one gateway.
const TelemetryMinPeriod = 5 * time.Second

// Retained reports whether messages of a kind are published retained.
// Orders are: a clearer that restarts during an interval gets every
// gateway's latest order from the broker when it subscribes again, so it
// seals the whole book (it acknowledged the ones it had before, and kept
// them only in memory). So are metered figures, each gateway's latest: a
// clearer that was cut off from the brokers, or failed over to another one,
// while the gateways published the figures of the interval that just ended
// gets them when it subscribes again, and settles with them.
func Retained(kind string) bool {
	switch kind {
	case KindOrders, KindMetered, KindBook, KindResult, KindStatus, KindRoster, KindSettlement, KindApp:
		return true
	}
	return false
}

// ErrTopic is wrapped by every error of ParseTopic and NewTopics.
var ErrTopic = errors.New("not a p2pgrid topic")

// Topics builds the topics of one community. The zero value is not usable;
// use NewTopics.
//
// The methods taking a gateway id or an interval id do not check it: pass
// ids checked once at the door (CheckID, ParseInterval, the roster).
type Topics struct {
	prefix    string // "p2pgrid/v1/<community>/"
	community string
}

// NewTopics returns the topics of community, which must be a valid id
// (CheckID): an id holding '/', '+' or '#' would address another part of
// the tree.
func NewTopics(community string) (Topics, error) {
	if err := CheckID(community); err != nil {
		return Topics{}, fmt.Errorf("community %q: %w: %w", community, ErrTopic, err)
	}
	return Topics{prefix: TopicRoot + "/" + community + "/", community: community}, nil
}

// Community returns the community the topics belong to.
func (t Topics) Community() string { return t.community }

// Orders is where gateway publishes its signed orders (QoS 1, not retained).
func (t Topics) Orders(gateway string) string { return t.prefix + KindOrders + "/" + gateway }

// OrdersAll is the subscription to every gateway's orders (the clearer's).
func (t Topics) OrdersAll() string { return t.prefix + KindOrders + "/+" }

// Book is where the clearer publishes the sealed book of an interval
// (retained).
func (t Topics) Book(interval string) string { return t.prefix + KindBook + "/" + interval }

// BookAll is the subscription to every interval's book.
func (t Topics) BookAll() string { return t.prefix + KindBook + "/+" }

// Result is where the clearer publishes the signed result of an interval
// (retained).
func (t Topics) Result(interval string) string { return t.prefix + KindResult + "/" + interval }

// ResultLatest holds a retained copy of the newest result.
func (t Topics) ResultLatest() string { return t.prefix + KindResult + "/" + Latest }

// ResultAll is the subscription to every result, result/latest included.
func (t Topics) ResultAll() string { return t.prefix + KindResult + "/+" }

// Telemetry is where gateway publishes its live power (not retained, at most
// once per TelemetryMinPeriod).
func (t Topics) Telemetry(gateway string) string { return t.prefix + KindTelemetry + "/" + gateway }

// TelemetryAll is the subscription to every gateway's telemetry.
func (t Topics) TelemetryAll() string { return t.prefix + KindTelemetry + "/+" }

// Status is gateway's retained status: "online" when it connects, "offline"
// as its last will.
func (t Topics) Status(gateway string) string { return t.prefix + KindStatus + "/" + gateway }

// StatusAll is the subscription to every gateway's status.
func (t Topics) StatusAll() string { return t.prefix + KindStatus + "/+" }

// Metered is where gateway publishes what its grid meter counted.
func (t Topics) Metered(gateway string) string { return t.prefix + KindMetered + "/" + gateway }

// MeteredAll is the subscription to every gateway's metered figures.
func (t Topics) MeteredAll() string { return t.prefix + KindMetered + "/+" }

// Settlement is the retained settlement of interval.
func (t Topics) Settlement(interval string) string { return t.prefix + KindSettlement + "/" + interval }

// SettlementAll is the subscription to every settlement.
func (t Topics) SettlementAll() string { return t.prefix + KindSettlement + "/+" }

// App is the retained app topic of gateway's value key ("summary" for
// the JSON summary, or a single value's key: gateway/summary).
func (t Topics) App(gateway, key string) string {
	return t.prefix + KindApp + "/" + gateway + "/" + key
}

// AppAll is the subscription to every app topic of gateway (its app's).
func (t Topics) AppAll(gateway string) string { return t.prefix + KindApp + "/" + gateway + "/+" }

// Roster is the community's retained member list.
func (t Topics) Roster() string { return t.prefix + KindRoster }

// All is the subscription to everything of the community.
func (t Topics) All() string { return t.prefix + "#" }

// ParseTopic splits a p2pgrid topic into its kind (KindOrders, ...), its
// community and its key: the gateway id for orders, telemetry and status;
// the interval id, or Latest, for book and result ("latest" only for
// result); "" for the roster. Every part is checked.
func ParseTopic(topic string) (kind, community, key string, err error) {
	fail := func(format string, a ...any) (string, string, string, error) {
		return "", "", "", fmt.Errorf("topic %q: %w: %s", topic, ErrTopic, fmt.Sprintf(format, a...))
	}
	rest, ok := strings.CutPrefix(topic, TopicRoot+"/")
	if !ok {
		return fail("it does not start with %s/", TopicRoot)
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 {
		return fail("want %s/<community>/<kind>[/<key>]", TopicRoot)
	}
	community, kind = parts[0], parts[1]
	if err := CheckID(community); err != nil {
		return fail("community: %v", err)
	}
	want := 3 // levels after the root: community, kind, key
	switch kind {
	case KindRoster:
		want = 2
	case KindOrders, KindTelemetry, KindStatus, KindBook, KindResult, KindMetered, KindSettlement:
	default:
		return fail("unknown kind %q", kind)
	}
	if len(parts) != want {
		if want == 2 {
			return fail("want %s/<community>/roster", TopicRoot)
		}
		return fail("want %s/<community>/%s/<key>", TopicRoot, kind)
	}
	if want == 2 {
		return kind, community, "", nil
	}
	key = parts[2]
	switch kind {
	case KindOrders, KindTelemetry, KindStatus, KindMetered:
		if err := CheckID(key); err != nil {
			return fail("gateway: %v", err)
		}
	default:
		if kind == KindResult && key == Latest {
			break
		}
		if _, err := market.ParseInterval(key); err != nil {
			return fail("%v", err)
		}
	}
	return kind, community, key, nil
}

// CheckID checks a community or gateway id: 1-64 characters of
// [A-Za-z0-9._:-], the rule of auction.CheckName, which also makes it a
// valid MQTT topic level (no '/', '+' or '#').
func CheckID(s string) error { return auction.CheckName(s) }
