package mqtt

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckBroker: the broker URL of a gateway's configuration. It must
// never panic, never quote a URL or password that carries credentials, and
// accept only what Connect can dial: a known scheme, a host, a port.
func FuzzCheckBroker(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:1883", "mqtts://broker.lan:8883", "wss://broker.lan/mqtt", "ws://[::1]:9001/mqtt",
		"tcp://home1:s3cret@broker:1883", "tcp://broker", "tcp://:1883", "tcp://broker:0", "tcp://broker:65536", "udp://broker:1883",
		"tcp://broker:1883/x?y#z", "%zz", "tcp://home1:s3cret@[::1", "", "broker:1883"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tls, err := CheckBroker(raw)
		u, perr := url.Parse(raw)
		if err != nil {
			if (perr != nil || u.User != nil) && strings.Contains(raw, "@") && strings.Contains(err.Error(), raw) {
				t.Fatalf("error quotes a URL with credentials: %v", err)
			}
			if perr == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) >= 4 && strings.Contains(err.Error(), p) {
					t.Fatalf("error quotes the password %q: %v", p, err)
				}
			}
			return
		}
		if perr != nil {
			t.Fatalf("accepted %q, which is not a URL: %v", raw, perr)
		}
		want, known := brokerSchemes[u.Scheme]
		if !known || tls != want || u.User != nil || u.Hostname() == "" {
			t.Fatalf("accepted %q: scheme %q, tls %v, user %v, host %q", raw, u.Scheme, tls, u.User, u.Hostname())
		}
		if u.Port() == "" && !strings.HasPrefix(u.Scheme, "ws") {
			t.Fatalf("accepted %q without a port", raw)
		}
	})
}
