package broker

import (
	"strings"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// hook is the broker's only mochi hook: authentication and the ACL (all
// allowed unless Options.ACL), and retainGuard.
//
// ACL: mochi's own answer to a denied QoS 1 publish from an MQTT 3 client
// is to disconnect it; paho would then re-send the stored publish after
// every reconnect and be thrown out again, forever. So publishes are
// checked in OnPublish, where the hook can make mochi acknowledge and drop
// the message, as Mosquitto does. Subscriptions with wildcards are granted
// (as Mosquitto grants them) and every delivery is checked; a subscription
// to a literal topic the user may not read (outside p2pgrid/v1/, or a
// neighbour's telemetry) is refused (Mosquitto grants it and never
// delivers).
//
// retainGuard: mochi v2.7.9 writes a topic node's retained-message path
// under the node's lock (Topics.RetainMessage) but reads it without any lock
// when it looks for the retained messages of a new wildcard subscription
// (Topics.Messages): a data race (upstream issue mochi-mqtt/server#200).
// The hook serialises the two with a RWMutex, taken and released in hooks
// that mochi calls in pairs on the same goroutine:
//
//   - a retained publish: OnPublish (no error) ... OnRetainMessage, both in
//     processPublish; a retained will: OnWill ... OnRetainMessage in sendLWT;
//   - a subscription: OnSubscribe ... OnPacketProcessed, around
//     processSubscribe.
//
// Which client holds the lock is recorded, so an unpaired call (a delayed
// MQTT 5 will sent by mochi's event loop) never unlocks someone else's lock.
type hook struct {
	mochi.HookBase
	acl      bool
	clearers []string

	retain  sync.RWMutex
	mu      sync.Mutex
	writers map[*mochi.Client][]byte // holds retain.Lock, with the payload it is retaining
	readers map[*mochi.Client]bool   // holds retain.RLock
}

var _ mochi.Hook = (*hook)(nil)

func newHook(acl bool, clearers []string) *hook {
	return &hook{
		acl:      acl,
		clearers: append([]string(nil), clearers...),
		writers:  make(map[*mochi.Client][]byte),
		readers:  make(map[*mochi.Client]bool),
	}
}

func (h *hook) ID() string { return "p2pgrid" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnRetainMessage,
		mochi.OnWill, mochi.OnSubscribe, mochi.OnPacketProcessed:
		return true
	}
	return false
}

// OnConnectAuthenticate admits everybody, or with the ACL any client that
// gives a username: the broker listens on loopback, the username is who the
// ACL is about.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	return !h.acl || len(cl.Properties.Username) > 0
}

// OnACLCheck decides subscriptions and deliveries (write=false); publishes
// (write=true) are let through to OnPublish.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if !h.acl || write {
		return true
	}
	return strings.ContainsAny(topic, "+#") || CanRead(string(cl.Properties.Username), topic, h.clearers)
}

// OnPublish acknowledges and drops a publish the ACL denies, and takes the
// retain lock for a retained one (released in OnRetainMessage).
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if h.acl && !CanPublish(string(cl.Properties.Username), pk.TopicName, h.clearers) {
		h.Log.Info("publish denied by ACL; acknowledged and dropped", "client", cl.ID, "username", string(cl.Properties.Username), "topic", pk.TopicName)
		return pk, packets.CodeSuccessIgnore
	}
	if pk.FixedHeader.Retain {
		h.lockRetain(cl, pk.Payload)
	}
	return pk, nil
}

// OnWill takes the retain lock for a retained will sent now (a delayed
// will never reaches sendLWT's retainMessage).
func (h *hook) OnWill(cl *mochi.Client, will mochi.Will) (mochi.Will, error) {
	if will.Retain && will.WillDelayInterval == 0 {
		h.lockRetain(cl, will.Payload)
	}
	return will, nil
}

// OnRetainMessage runs right after mochi has stored a retained message.
func (h *hook) OnRetainMessage(cl *mochi.Client, pk packets.Packet, _ int64) {
	h.mu.Lock()
	payload, ok := h.writers[cl]
	if ok && samePayload(payload, pk.Payload) {
		delete(h.writers, cl)
	} else {
		ok = false
	}
	h.mu.Unlock()
	if ok {
		h.retain.Unlock()
	}
}

// OnSubscribe takes the retain read lock for the subscription, which
// mochi answers with the matching retained messages.
func (h *hook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	h.retain.RLock()
	h.mu.Lock()
	h.readers[cl] = true
	h.mu.Unlock()
	return pk
}

// OnPacketProcessed releases the read lock of a subscription.
func (h *hook) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return
	}
	h.mu.Lock()
	ok := h.readers[cl]
	delete(h.readers, cl)
	h.mu.Unlock()
	if ok {
		h.retain.RUnlock()
	}
}

func (h *hook) lockRetain(cl *mochi.Client, payload []byte) {
	h.retain.Lock()
	h.mu.Lock()
	h.writers[cl] = payload
	h.mu.Unlock()
}

// samePayload reports whether a and b are the same slice (not just equal).
func samePayload(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
