// Package statusfeed follows a community's gateways from their retained
// status messages (status/<gateway>, gateway/protocol.Status): whether each
// is online, its open alarms, and its verdicts on its latest intervals'
// clearing and settlement. It is the operator dashboard's live feed when
// the dashboard runs apart from the gateways (p2pgrid operator --mqtt).
//
// A status is not signed: it is what a gateway says about itself, shown to
// people and trusted for nothing else. The feed still takes only what is
// well formed: a status must decode (protocol.DecodeStatus), name the
// gateway of its topic and be for the feed's community; anything else is
// counted and its reason kept (Rejected), and changes nothing.
package statusfeed

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// Subscriber is what the feed needs of an MQTT client: gateway/mqtt.Client
// has it.
type Subscriber interface {
	Subscribe(filter string, h func(topic string, payload []byte)) error
}

// Limits: the feed's memory is bounded whatever the broker sends.
const (
	// MaxGateways is how many gateways' statuses the feed holds; a status
	// of one more gateway is rejected.
	MaxGateways = 10000
	// KeepIntervals is how many intervals' verdicts the feed keeps, the
	// newest.
	KeepIntervals = 192
)

// Feed holds the latest status of every gateway and every verdict it has
// seen. Its methods are safe for concurrent use.
type Feed struct {
	community string

	mu       sync.Mutex
	statuses map[string]protocol.Status
	verdicts map[string]map[string]protocol.Verification // interval -> gateway -> verdict
	rejected int
	lastErr  string
}

// New returns an empty feed for community.
func New(community string) *Feed {
	return &Feed{community: community, statuses: map[string]protocol.Status{},
		verdicts: map[string]map[string]protocol.Verification{}}
}

// Follow subscribes the feed to every gateway's status on s.
func (f *Feed) Follow(s Subscriber) error {
	tp, err := protocol.NewTopics(f.community)
	if err != nil {
		return fmt.Errorf("status feed: %w", err)
	}
	filter := tp.StatusAll()
	if err := s.Subscribe(filter, f.Handle); err != nil {
		return fmt.Errorf("status feed: subscribe %s: %w", filter, err)
	}
	return nil
}

// Handle takes one message of a status topic. An empty
// payload (a retained status cleared) forgets the gateway.
func (f *Feed) Handle(topic string, payload []byte) {
	if err := f.handle(topic, payload); err != nil {
		f.mu.Lock()
		f.rejected++
		f.lastErr = err.Error()
		f.mu.Unlock()
	}
}

func (f *Feed) handle(topic string, payload []byte) error {
	kind, community, gw, err := protocol.ParseTopic(topic)
	if err != nil {
		return fmt.Errorf("status feed: %w", err)
	}
	if kind != protocol.KindStatus || community != f.community {
		return fmt.Errorf("status feed: topic %q is not a status of community %q", topic, f.community)
	}
	if len(payload) == 0 {
		f.mu.Lock()
		delete(f.statuses, gw)
		f.mu.Unlock()
		return nil
	}
	st, err := protocol.DecodeStatus(payload)
	if err != nil {
		return fmt.Errorf("status feed: %s: %w", topic, err)
	}
	if st.Gateway != gw {
		return fmt.Errorf("status feed: %s: the status is %q's", topic, st.Gateway)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.statuses[gw]; !ok && len(f.statuses) >= MaxGateways {
		return fmt.Errorf("status feed: %s: already following %d gateways", topic, MaxGateways)
	}
	f.statuses[gw] = *st
	for _, v := range st.Verified {
		m := f.verdicts[v.Interval]
		if m == nil {
			m = map[string]protocol.Verification{}
			f.verdicts[v.Interval] = m
		}
		m[gw] = v
	}
	if len(f.verdicts) > KeepIntervals {
		ids := make([]string, 0, len(f.verdicts))
		for id := range f.verdicts {
			ids = append(ids, id)
		}
		slices.Sort(ids) // interval ids sort as their times do
		for _, id := range ids[:len(ids)-KeepIntervals] {
			delete(f.verdicts, id)
		}
	}
	return nil
}

// Statuses returns the latest status of every gateway, by gateway id.
func (f *Feed) Statuses() []protocol.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]protocol.Status, 0, len(f.statuses))
	for _, st := range f.statuses {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b protocol.Status) int { return strings.Compare(a.Gateway, b.Gateway) })
	return out
}

// Verdicts returns what each gateway said of interval, by gateway id:
// the latest of each gateway's statuses that named it.
func (f *Feed) Verdicts(interval string) map[string]protocol.Verification {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]protocol.Verification, len(f.verdicts[interval]))
	for gw, v := range f.verdicts[interval] {
		out[gw] = v
	}
	return out
}

// Rejected returns how many status messages the feed refused, and why it
// refused the last.
func (f *Feed) Rejected() (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rejected, f.lastErr
}
