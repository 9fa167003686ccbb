package mqtttest

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// Proxy is a TCP forwarder on a free loopback port, put in front of a
// broker's listener to make the faults a network makes: refuse new
// connections for a while (Refuse), hold what passes through existing ones
// (Pause: each side believes it sent what it wrote), and break them,
// dropping what it holds (Cut). A client, or a bridge (Bridge.Address),
// dials Addr instead of the broker. It is closed when the test ends.
type Proxy struct {
	// Addr is 127.0.0.1:Port, where the proxy listens; Port its port.
	Addr string
	Port int

	target string
	ln     net.Listener

	mu      sync.Mutex
	resumed *sync.Cond
	refuse  bool
	paused  bool
	conns   map[net.Conn]bool
}

// NewProxy forwards connections on a free loopback port to target
// (host:port). It dials target anew for every connection, so it forwards
// to a broker that was restarted on the same port.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port, target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.resumed = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Resume()
		p.Cut()
	})
	return p
}

// ProxyFor is NewProxy in front of m's TLS listener.
func ProxyFor(t testing.TB, m *Mosquitto) *Proxy {
	t.Helper()
	if m.TLS == nil {
		t.Fatal("mqtttest: ProxyFor a Mosquitto without a TLS listener")
	}
	return NewProxy(t, "127.0.0.1:"+strconv.Itoa(m.TLSPort))
}

// URL is the tcp:// URL of the proxy, for a client that would dial the
// broker's plain listener.
func (p *Proxy) URL() string { return "tcp://" + p.Addr }

// TLSURL is the ssl:// URL of the proxy, for a client that would dial the
// broker's TLS listener (its certificate holds 127.0.0.1).
func (p *Proxy) TLSURL() string { return "ssl://" + p.Addr }

// Refuse makes the proxy close every new connection at once (on true),
// or forward them again (false). Connections already made go on.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = on
}

// Pause holds what passes through the connections, both ways, until
// Resume or Cut: the proxy still reads (a writer's data leaves it) but
// passes nothing on.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
}

// Resume passes on again what Pause held.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	p.resumed.Broadcast()
}

// Cut closes every connection through the proxy, dropping what it holds.
// New connections are still forwarded (unless refused).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.resumed.Broadcast()
}

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst until either fails, holding each chunk while the
// proxy is paused; it then closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
		dst.Close()
		src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(dst) {
				return // cut while held: the chunk is dropped
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: both ends go
		}
	}
}

// wait blocks while the proxy is paused; it reports whether dst is still
// one of the proxy's connections (false once Cut).
func (p *Proxy) wait(dst net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.paused && p.conns[dst] {
		p.resumed.Wait()
	}
	return p.conns[dst]
}
