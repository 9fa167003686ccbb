package mqtt

import (
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sessionStore is the client's half of the persistent session: the QoS 1
// PUBLISH (and SUBSCRIBE) packets paho keeps until they are acknowledged
// and re-sends after a reconnect. It is paho's memory store with two
// changes that work around paho v1.5.0:
//
//   - It hands out copies of PUBLISH packets. After a reconnect paho's
//     resume() sets the DUP flag on the stored packet while its writer
//     goroutine may be writing that very packet, sent a moment earlier by a
//     Publish (our online status, or a caller's): a data race (paho issue
//     #703, open). Copies make the write harmless.
//   - All() answers nothing until the first connection has been lost. Paho
//     calls OnConnect before resume(), so on the first connection resume()
//     would find, and send a second time, whatever was published in
//     between; a fresh client has nothing to resume. After a reconnect that
//     window remains: a message published just then may go out twice,
//     which QoS 1 allows (at least once).
type sessionStore struct {
	mu      sync.Mutex
	packets map[string]packets.ControlPacket
	armed   bool // a connection has been lost: resume for real
}

var _ paho.Store = (*sessionStore)(nil)

func newSessionStore() *sessionStore {
	return &sessionStore{packets: make(map[string]packets.ControlPacket)}
}

// arm makes All answer from now on; called before every reconnect attempt.
func (s *sessionStore) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

func (s *sessionStore) Open()  {}
func (s *sessionStore) Close() {}

func (s *sessionStore) Put(key string, p packets.ControlPacket) {
	s.mu.Lock()
	s.packets[key] = clonePacket(p)
	s.mu.Unlock()
}

func (s *sessionStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.packets[key]
	if !ok {
		return nil
	}
	return clonePacket(p)
}

func (s *sessionStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.armed {
		return nil
	}
	keys := make([]string, 0, len(s.packets))
	for k := range s.packets {
		keys = append(keys, k)
	}
	return keys
}

func (s *sessionStore) Del(key string) {
	s.mu.Lock()
	delete(s.packets, key)
	s.mu.Unlock()
}

func (s *sessionStore) Reset() {
	s.mu.Lock()
	clear(s.packets)
	s.mu.Unlock()
}

// clonePacket copies a PUBLISH packet (the payload is shared: nobody
// writes to it); other packets are not modified by paho after storing.
func clonePacket(p packets.ControlPacket) packets.ControlPacket {
	if pub, ok := p.(*packets.PublishPacket); ok {
		cp := *pub
		return &cp
	}
	return p
}
