package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestTopics(t *testing.T) {
	tp, err := NewTopics("c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		got, want string
		kind, key string // what ParseTopic returns; kind "" for a wildcard
	}{
		{tp.Orders("home1"), "p2pgrid/v1/c1/orders/home1", KindOrders, "home1"},
		{tp.OrdersAll(), "p2pgrid/v1/c1/orders/+", "", ""},
		{tp.Book(testInterval), "p2pgrid/v1/c1/book/2026-11-22T12:15Z", KindBook, testInterval},
		{tp.BookAll(), "p2pgrid/v1/c1/book/+", "", ""},
		{tp.Result(testInterval), "p2pgrid/v1/c1/result/2026-11-22T12:15Z", KindResult, testInterval},
		{tp.ResultLatest(), "p2pgrid/v1/c1/result/latest", KindResult, Latest},
		{tp.ResultAll(), "p2pgrid/v1/c1/result/+", "", ""},
		{tp.Telemetry("home.2"), "p2pgrid/v1/c1/telemetry/home.2", KindTelemetry, "home.2"},
		{tp.TelemetryAll(), "p2pgrid/v1/c1/telemetry/+", "", ""},
		{tp.Status("home:3"), "p2pgrid/v1/c1/status/home:3", KindStatus, "home:3"},
		{tp.StatusAll(), "p2pgrid/v1/c1/status/+", "", ""},
		{tp.Roster(), "p2pgrid/v1/c1/roster", KindRoster, ""},
		{tp.All(), "p2pgrid/v1/c1/#", "", ""},
	} {
		if tc.got != tc.want {
			t.Errorf("topic %q, want %q", tc.got, tc.want)
		}
		kind, community, key, err := ParseTopic(tc.got)
		if tc.kind == "" { // a subscription filter is not a topic
			if err == nil || !errors.Is(err, ErrTopic) {
				t.Errorf("ParseTopic(%q) = %q, %q, %q, %v; want ErrTopic", tc.got, kind, community, key, err)
			}
			continue
		}
		if err != nil || kind != tc.kind || community != "c1" || key != tc.key {
			t.Errorf("ParseTopic(%q) = %q, %q, %q, %v; want %q, c1, %q", tc.got, kind, community, key, err, tc.kind, tc.key)
		}
	}
	if tp.Community() != "c1" {
		t.Errorf("Community() = %q", tp.Community())
	}
	for _, c := range []string{"", "a/b", "c+", "c#", strings.Repeat("c", 65), "ünï"} {
		if _, err := NewTopics(c); !errors.Is(err, ErrTopic) {
			t.Errorf("NewTopics(%q): %v, want ErrTopic", c, err)
		}
	}
}

func TestParseTopicRejects(t *testing.T) {
	for topic, why := range map[string]string{
		"":                                        "does not start",
		"p2pgrid/v2/c1/roster":                    "does not start",
		"/p2pgrid/v1/c1/roster":                   "does not start",
		"p2pgrid/v1/c1":                           "want p2pgrid/v1/<community>",
		"p2pgrid/v1/c1/roster/x":                  "want p2pgrid/v1/<community>/roster",
		"p2pgrid/v1/c1/orders":                    "want p2pgrid/v1/<community>/orders/<key>",
		"p2pgrid/v1/c1/orders/home1/x":            "want p2pgrid/v1/<community>/orders/<key>",
		"p2pgrid/v1/c1/orders/":                   "gateway: empty",
		"p2pgrid/v1/c1/bids/home1":                `unknown kind "bids"`,
		"p2pgrid/v1/c+1/roster":                   "community",
		"p2pgrid/v1//roster":                      "community",
		"p2pgrid/v1/c1/status/home 1":             "gateway",
		"p2pgrid/v1/c1/book/latest":               "interval",
		"p2pgrid/v1/c1/book/2026-11-22T12:15:00Z": "interval",
		"p2pgrid/v1/c1/result/2026-11-22":         "interval",
		"p2pgrid/v1/c1/telemetry/#":               "gateway",
	} {
		kind, _, _, err := ParseTopic(topic)
		if !errors.Is(err, ErrTopic) || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseTopic(%q) = %q, %v; want ErrTopic saying %q", topic, kind, err, why)
		}
	}
}

func TestRetained(t *testing.T) {
	for kind, want := range map[string]bool{
		KindTelemetry: false, KindMetered: true,
		KindOrders: true, KindBook: true, KindResult: true, KindStatus: true, KindRoster: true, KindSettlement: true, "other": false,
		KindApp: true,
	} {
		if Retained(kind) != want {
			t.Errorf("Retained(%q) = %v", kind, !want)
		}
	}
}

// App topics are under the gateway's own level, which the broker's ACL
// binds to its login, and ParseTopic, for what gateways receive, refuses
// them.
func TestAppTopics(t *testing.T) {
	tp, err := NewTopics("c1")
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.App("home1", "summary"); got != "p2pgrid/v1/c1/app/home1/summary" {
		t.Errorf("App = %q", got)
	}
	if got := tp.AppAll("home1"); got != "p2pgrid/v1/c1/app/home1/+" {
		t.Errorf("AppAll = %q", got)
	}
	if _, _, _, err := ParseTopic(tp.App("home1", "price")); !errors.Is(err, ErrTopic) {
		t.Errorf("ParseTopic of an app topic: %v", err)
	}
}
