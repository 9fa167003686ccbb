package mqtt

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// checkTopicName validates a topic to publish to (MQTT 3.1.1 section 4.7).
// An invalid topic must never reach paho: the broker would drop the
// connection, and paho would re-send the stored message after every
// reconnect, forever.
func checkTopicName(topic string) error {
	if err := checkTopicString(topic); err != nil {
		return err
	}
	if strings.ContainsAny(topic, "+#") {
		return errors.New("a topic to publish to cannot contain the wildcards + or #")
	}
	return nil
}

// checkFilter validates a subscription filter: '#' only as the whole last
// level, '+' only as a whole level. Shared subscriptions ($share/...) are
// not supported.
func checkFilter(filter string) error {
	if err := checkTopicString(filter); err != nil {
		return err
	}
	if strings.HasPrefix(filter, "$share/") || strings.HasPrefix(filter, "$queue/") {
		return errors.New("shared subscriptions are not supported")
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return errors.New("'#' must be the last level")
		case l != "#" && strings.Contains(l, "#"):
			return errors.New("'#' must be a whole level")
		case l != "+" && strings.Contains(l, "+"):
			return errors.New("'+' must be a whole level")
		}
	}
	return nil
}

func checkTopicString(s string) error {
	switch {
	case s == "":
		return errors.New("empty topic")
	case len(s) > 65535:
		return errors.New("topic longer than 65535 bytes")
	case !utf8.ValidString(s):
		return errors.New("topic is not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("topic contains a NUL character")
	}
	return nil
}

// matches reports whether topic matches the (valid) filter. As MQTT wants,
// a filter starting with a wildcard does not match topics starting with '$'.
func matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true // also matches the parent level: "a/#" matches "a"
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// Both must end here, or the filter may continue with a lone "#".
			return fmore == tmore || (fmore && !tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
