package dashboard

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// hub fans the intervals of new ledger records out to the open event
// streams.
type hub struct {
	mu   sync.Mutex
	subs map[chan event]struct{}
}

// event is one server-sent event: the interval a new record is about, and
// the ledger sequence number the model has reached.
type event struct {
	interval string
	seq      uint64
}

func (h *hub) subscribe() chan event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan event]struct{}{}
	}
	c := make(chan event, 64)
	h.subs[c] = struct{}{}
	return c
}

func (h *hub) unsubscribe(c chan event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, c)
}

// publish sends e to every stream; a stream too slow to take it misses
// it (the page catches up on the next event).
func (h *hub) publish(e event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// heartbeat is how often an idle stream gets a comment, so that proxies
// keep it open.
const heartbeat = 15 * time.Second

// events is /events: a text/event-stream of "interval" events, each with
// the interval id as data and the ledger sequence number as id. A browser
// reconnecting with a Last-Event-ID behind the model gets one "interval"
// event at once, so that it refreshes what it missed.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	c := s.hub.subscribe()
	defer s.hub.unsubscribe(c)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprint(w, "retry: 2000\n\n")
	if last, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && last < s.model.Seq() {
		writeEvent(w, event{seq: s.model.Seq()})
	}
	fl.Flush()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case e := <-c:
			writeEvent(w, e)
		case <-t.C:
			fmt.Fprint(w, ": still here\n\n")
		}
		fl.Flush()
	}
}

func writeEvent(w http.ResponseWriter, e event) {
	fmt.Fprintf(w, "id: %d\nevent: interval\ndata: %s\n\n", e.seq, e.interval)
}
