package bus

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzCheckURL: a device's bus URL, as the configuration and `p2pgrid
// meter` give it. It must never panic; an error names the URL; the same
// URL gets the same answer every time; an accepted URL names something
// Open can reach: host and port, or a serial device with sane settings.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:5020", "tcp://meter.lan", "rtutcp://192.168.1.40:502?timeout=500ms",
		"rtu:///dev/ttyUSB0?baud=9600&parity=N", "rtu:///dev/ttyUSB0?baud=9601", "rtu:///dev/ttyUSB0?stop=2&data=8&parity=E",
		"rtu://dev/ttyUSB0", "tcp://meter:0", "tcp://meter:", "tcp://meter/x", "tcp://[::1]:502?baud=9600", "tcp:meter",
		"tcp://u:p@meter:502", "tcp://meter:502#f", "tcp://meter:502?timeout=-1s&timeout=1s", "%", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ep, err := parseURL(raw)
		if err2 := CheckURL(raw); fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("two answers for %q: %v, then %v", raw, err, err2)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("modbus url %q: ", raw)) {
				t.Fatalf("error does not name the URL: %v", err)
			}
			return
		}
		switch ep.scheme {
		case schemeTCP, schemeRTUTCP:
			host, port, err := net.SplitHostPort(ep.addr)
			n, perr := strconv.Atoi(port)
			if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				t.Fatalf("accepted %q with address %q", raw, ep.addr)
			}
		case schemeRTU:
			if ep.addr == "" || ep.baud <= 0 || ep.dataBits != 8 || (ep.stopBits != 1 && ep.stopBits != 2) ||
				(ep.parity != "N" && ep.parity != "E" && ep.parity != "O") {
				t.Fatalf("accepted %q as %+v", raw, ep)
			}
		default:
			t.Fatalf("accepted %q with scheme %q", raw, ep.scheme)
		}
		if ep.timeout < 0 {
			t.Fatalf("accepted %q with timeout %v", raw, ep.timeout)
		}
	})
}
