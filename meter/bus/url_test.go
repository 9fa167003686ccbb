package bus

import (
	"testing"
	"time"
)

func TestOpenURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want endpoint
	}{
		{"tcp://127.0.0.1:5020", endpoint{scheme: "tcp", addr: "127.0.0.1:5020"}},
		{"tcp://meter.local", endpoint{scheme: "tcp", addr: "meter.local:502"}},
		{"tcp://meter.local/", endpoint{scheme: "tcp", addr: "meter.local:502"}},
		{"TCP://Meter.local:1502", endpoint{scheme: "tcp", addr: "Meter.local:1502"}},
		{"tcp://[::1]:5020", endpoint{scheme: "tcp", addr: "[::1]:5020"}},
		{"tcp://[fe80::1]", endpoint{scheme: "tcp", addr: "[fe80::1]:502"}},
		{"tcp://10.0.0.5:502?timeout=500ms", endpoint{scheme: "tcp", addr: "10.0.0.5:502", timeout: 500 * time.Millisecond}},
		{"rtutcp://10.0.0.7:8899", endpoint{scheme: "rtutcp", addr: "10.0.0.7:8899"}},
		{"rtutcp://10.0.0.7?timeout=2s", endpoint{scheme: "rtutcp", addr: "10.0.0.7:502", timeout: 2 * time.Second}},
		{"rtu:///dev/ttyUSB0", endpoint{scheme: "rtu", addr: "/dev/ttyUSB0", baud: 9600, parity: "N", stopBits: 1, dataBits: 8}},
		{"rtu:/dev/ttyAMA0", endpoint{scheme: "rtu", addr: "/dev/ttyAMA0", baud: 9600, parity: "N", stopBits: 1, dataBits: 8}},
		{"rtu:///dev/ttyUSB0?baud=9600&parity=N&stop=1&data=8", endpoint{scheme: "rtu", addr: "/dev/ttyUSB0", baud: 9600, parity: "N", stopBits: 1, dataBits: 8}},
		{"rtu:///dev/serial/by-id/usb-FTDI-if00?baud=19200&parity=e&stop=2&timeout=250ms",
			endpoint{scheme: "rtu", addr: "/dev/serial/by-id/usb-FTDI-if00", baud: 19200, parity: "E", stopBits: 2, dataBits: 8, timeout: 250 * time.Millisecond}},
		{"rtu:///dev/ttyS1?parity=O&baud=115200", endpoint{scheme: "rtu", addr: "/dev/ttyS1", baud: 115200, parity: "O", stopBits: 1, dataBits: 8}},
	} {
		got, err := parseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.url, got, tc.want)
		}
		b, err := Open(tc.url, Options{})
		if err != nil {
			t.Errorf("Open(%s): %v", tc.url, err)
			continue
		}
		if b.URL() != tc.url {
			t.Errorf("URL() = %q, want %q", b.URL(), tc.url)
		}
		b.Close()
	}
}

func TestOpenURLErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"udp://host:502", `modbus url "udp://host:502": unknown scheme "udp" (want tcp, rtu or rtutcp)`},
		{"x", `modbus url "x": missing scheme (want tcp, rtu or rtutcp, as in tcp://host:502)`},
		{"", `modbus url "": missing scheme (want tcp, rtu or rtutcp, as in tcp://host:502)`},
		{"127.0.0.1:502", `modbus url "127.0.0.1:502": first path segment in URL cannot contain colon`},
		{"tcp://host:port", `modbus url "tcp://host:port": invalid port ":port" after host`},
		{"tcp://host:0", `modbus url "tcp://host:0": port "0" out of range 1..65535`},
		{"tcp://host:70000", `modbus url "tcp://host:70000": port "70000" out of range 1..65535`},
		{"tcp://host:", `modbus url "tcp://host:": empty port (want tcp://host:port, or no colon for port 502)`},
		{"tcp://", `modbus url "tcp://": missing host (want tcp://host:port)`},
		{"tcp://:502", `modbus url "tcp://:502": missing host (want tcp://host:port)`},
		{"tcp:host:502", `modbus url "tcp:host:502": want tcp://, not tcp:host:502`},
		{"tcp://user:pw@host", `modbus url "tcp://user:pw@host": user information is not supported`},
		{"tcp://host/unit/1", `modbus url "tcp://host/unit/1": unexpected path "/unit/1" (a tcp url is tcp://host:port)`},
		{"tcp://host#x", `modbus url "tcp://host#x": unexpected fragment "x"`},
		{"tcp://host?baud=9600", `modbus url "tcp://host?baud=9600": parameter "baud" applies only to rtu urls`},
		{"rtutcp://host?parity=E", `modbus url "rtutcp://host?parity=E": parameter "parity" applies only to rtu urls`},
		{"tcp://host?unit=1", `modbus url "tcp://host?unit=1": unknown parameter "unit" (want timeout)`},
		{"tcp://host?timeout=fast", `modbus url "tcp://host?timeout=fast": timeout "fast": want a positive duration such as 500ms`},
		{"tcp://host?timeout=0s", `modbus url "tcp://host?timeout=0s": timeout "0s": want a positive duration such as 500ms`},
		{"tcp://host?timeout=-1s", `modbus url "tcp://host?timeout=-1s": timeout "-1s": want a positive duration such as 500ms`},
		{"tcp://host?timeout=1s&timeout=2s", `modbus url "tcp://host?timeout=1s&timeout=2s": parameter "timeout" given 2 times`},
		{"tcp://host?timeout=%zz", `modbus url "tcp://host?timeout=%zz": query: invalid URL escape "%zz"`},
		{"rtu://dev/ttyUSB0", `modbus url "rtu://dev/ttyUSB0": host "dev" in an rtu url: the device path goes after three slashes, as in rtu:///dev/ttyUSB0`},
		{"rtu://", `modbus url "rtu://": missing serial device path (want rtu:///dev/ttyUSB0)`},
		{"rtu:///", `modbus url "rtu:///": missing serial device path (want rtu:///dev/ttyUSB0)`},
		{"rtu:ttyUSB0", `modbus url "rtu:ttyUSB0": want rtu://, not rtu:ttyUSB0`},
		{"rtu:///dev/ttyUSB0?baud=9601", `modbus url "rtu:///dev/ttyUSB0?baud=9601": baud "9601": want a standard rate such as 9600 or 19200`},
		{"rtu:///dev/ttyUSB0?baud=fast", `modbus url "rtu:///dev/ttyUSB0?baud=fast": baud "fast": want a standard rate such as 9600 or 19200`},
		{"rtu:///dev/ttyUSB0?parity=X", `modbus url "rtu:///dev/ttyUSB0?parity=X": parity "X": want N, E or O`},
		{"rtu:///dev/ttyUSB0?stop=3", `modbus url "rtu:///dev/ttyUSB0?stop=3": stop bits "3": want 1 or 2`},
		{"rtu:///dev/ttyUSB0?data=7", `modbus url "rtu:///dev/ttyUSB0?data=7": data bits "7": Modbus RTU needs 8`},
		{"rtu:///dev/ttyUSB0?speed=9600", `modbus url "rtu:///dev/ttyUSB0?speed=9600": unknown parameter "speed" (want baud, parity, stop, data, timeout)`},
		{"rtu:///dev/ttyUSB0?stop=2&baud=1", `modbus url "rtu:///dev/ttyUSB0?stop=2&baud=1": baud "1": want a standard rate such as 9600 or 19200`},
	} {
		b, err := Open(tc.url, Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded, want error %s", tc.url, tc.want)
			b.Close()
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Open(%q):\n got %s\nwant %s", tc.url, err, tc.want)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		url                           string
		opts                          Options
		timeout, switchDelay, backoff time.Duration
		retries                       int
	}{
		{"tcp defaults", "tcp://h", Options{}, time.Second, 0, 100 * time.Millisecond, 2},
		{"rtu defaults", "rtu:///dev/ttyUSB0", Options{}, time.Second, 20 * time.Millisecond, 100 * time.Millisecond, 2},
		{"rtutcp defaults", "rtutcp://h", Options{}, time.Second, 20 * time.Millisecond, 100 * time.Millisecond, 2},
		{"set", "rtutcp://h", Options{Timeout: 3 * time.Second, UnitSwitchDelay: 50 * time.Millisecond, Retries: 5, Backoff: time.Second},
			3 * time.Second, 50 * time.Millisecond, time.Second, 5},
		{"none", "rtu:///dev/ttyUSB0", Options{UnitSwitchDelay: -1, Retries: -1, Backoff: -1}, time.Second, 0, 0, 0},
		{"url timeout wins", "tcp://h?timeout=250ms", Options{Timeout: 3 * time.Second}, 250 * time.Millisecond, 0, 100 * time.Millisecond, 2},
	} {
		b, err := Open(tc.url, tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if b.timeout != tc.timeout || b.switchDelay != tc.switchDelay || b.backoff != tc.backoff || b.retries != tc.retries {
			t.Errorf("%s: timeout %v, switch delay %v, backoff %v, retries %d; want %v, %v, %v, %d", tc.name,
				b.timeout, b.switchDelay, b.backoff, b.retries, tc.timeout, tc.switchDelay, tc.backoff, tc.retries)
		}
		b.Close()
	}
	if _, err := Open("tcp://h", Options{Timeout: -time.Second}); err == nil || err.Error() != "modbus tcp://h: timeout -1s is negative" {
		t.Errorf("negative timeout: got %v", err)
	}
}
