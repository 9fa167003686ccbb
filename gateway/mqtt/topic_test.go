package mqtt

import "testing"

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"p2pgrid/v1/c1/orders/+", "p2pgrid/v1/c1/orders/gw-a", true},
		{"p2pgrid/v1/c1/orders/+", "p2pgrid/v1/c1/orders/gw-a/x", false},
		{"p2pgrid/v1/c1/orders/+", "p2pgrid/v1/c1/orders", false},
		{"p2pgrid/v1/+/result/#", "p2pgrid/v1/c1/result/latest", true},
		{"p2pgrid/v1/+/result/#", "p2pgrid/v1/c1/result", true}, // '#' includes the parent
		{"p2pgrid/v1/+/result/#", "p2pgrid/v1/c1/book/1", false},
		{"#", "p2pgrid/v1/c1/roster", true},
		{"#", "$SYS/broker/uptime", false},
		{"+/broker/uptime", "$SYS/broker/uptime", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"a/+", "a/", true}, // an empty level is a level
		{"a/+/c", "a//c", true},
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"a/+/+", "a/b", false},
	} {
		if got := matches(tc.filter, tc.topic); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	for _, ok := range []string{"#", "+", "a/#", "a/+/b", "p2pgrid/v1/+/result/#", "$SYS/#", "a//b"} {
		if err := checkFilter(ok); err != nil {
			t.Errorf("checkFilter(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a#", "a/b#", "a+", "+a/b", "$share/g/a/b", "a\x00", "\xff"} {
		if err := checkFilter(bad); err == nil {
			t.Errorf("checkFilter(%q) accepted an invalid filter", bad)
		}
	}
}

func TestCheckTopicName(t *testing.T) {
	if err := checkTopicName("p2pgrid/v1/c1/orders/gw-a"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "a/+", "#", "a\x00b", "\xff"} {
		if err := checkTopicName(bad); err == nil {
			t.Errorf("checkTopicName(%q) accepted an invalid topic", bad)
		}
	}
}
