package bus

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the Modbus TCP port, used by tcp:// and rtutcp:// URLs
// that name none.
const DefaultPort = 502

// Transport schemes of a bus URL.
const (
	schemeTCP    = "tcp"
	schemeRTU    = "rtu"
	schemeRTUTCP = "rtutcp"
)

// endpoint is a parsed, validated bus URL.
type endpoint struct {
	scheme string
	// addr is host:port for tcp and rtutcp, the device path for rtu.
	addr string
	// timeout is the URL's timeout parameter, 0 if it has none.
	timeout time.Duration

	// Serial line settings, rtu only.
	baud     int
	parity   string // "N", "E" or "O"
	stopBits int
	dataBits int
}

// serialBauds are the rates a Linux serial port can be set to (the table in
// github.com/goburrow/serial).
var serialBauds = []int{
	50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
	19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600,
	1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
}

// CheckURL checks a bus URL as Open does, without opening anything: the
// scheme, the host and port or the serial device path, and every parameter
// (baud, parity, stop, data, timeout). The error names the URL and what is
// wrong with it, the same error Open returns.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

// parseURL validates a bus URL. Errors name the URL and what is wrong with it.
func parseURL(rawURL string) (endpoint, error) {
	ep, err := parseEndpoint(rawURL)
	if err != nil {
		return endpoint{}, fmt.Errorf("modbus url %q: %w", rawURL, err)
	}
	return ep, nil
}

func parseEndpoint(rawURL string) (endpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return endpoint{}, err
	}
	ep := endpoint{scheme: u.Scheme}
	switch u.Scheme {
	case schemeTCP, schemeRTUTCP, schemeRTU:
	case "":
		return endpoint{}, errors.New("missing scheme (want tcp, rtu or rtutcp, as in tcp://host:502)")
	default:
		return endpoint{}, fmt.Errorf("unknown scheme %q (want tcp, rtu or rtutcp)", u.Scheme)
	}
	if u.Opaque != "" {
		return endpoint{}, fmt.Errorf("want %s://, not %s:%s", u.Scheme, u.Scheme, u.Opaque)
	}
	if u.User != nil {
		return endpoint{}, errors.New("user information is not supported")
	}
	if u.Fragment != "" {
		return endpoint{}, fmt.Errorf("unexpected fragment %q", u.Fragment)
	}
	if u.Scheme == schemeRTU {
		if err := parseSerial(u, &ep); err != nil {
			return endpoint{}, err
		}
	} else {
		if err := parseNetwork(u, &ep); err != nil {
			return endpoint{}, err
		}
	}
	return ep, nil
}

func parseNetwork(u *url.URL, ep *endpoint) error {
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("missing host (want %s://host:port)", u.Scheme)
	}
	port := DefaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q out of range 1..65535", p)
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("empty port (want %s://host:port, or no colon for port %d)", u.Scheme, DefaultPort)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("unexpected path %q (a %s url is %s://host:port)", u.Path, u.Scheme, u.Scheme)
	}
	ep.addr = net.JoinHostPort(host, strconv.Itoa(port))
	return parseQuery(u, ep, "timeout")
}

func parseSerial(u *url.URL, ep *endpoint) error {
	if u.Host != "" {
		return fmt.Errorf("host %q in an rtu url: the device path goes after three slashes, as in rtu:///dev/ttyUSB0", u.Host)
	}
	if u.Path == "" || u.Path == "/" {
		return errors.New("missing serial device path (want rtu:///dev/ttyUSB0)")
	}
	ep.addr = u.Path
	ep.baud, ep.parity, ep.stopBits, ep.dataBits = 9600, "N", 1, 8
	return parseQuery(u, ep, "baud", "parity", "stop", "data", "timeout")
}

// parseQuery reads the query parameters allowed for u's scheme into ep.
func parseQuery(u *url.URL, ep *endpoint, allowed ...string) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report the same error for the same URL every time
	for _, k := range keys {
		vs := q[k]
		if !slices.Contains(allowed, k) {
			switch k {
			case "baud", "parity", "stop", "data":
				return fmt.Errorf("parameter %q applies only to rtu urls", k)
			}
			return fmt.Errorf("unknown parameter %q (want %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) != 1 {
			return fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("timeout %q: want a positive duration such as 500ms", v)
			}
			ep.timeout = d
		case "baud":
			n, err := strconv.Atoi(v)
			if err != nil || !slices.Contains(serialBauds, n) {
				return fmt.Errorf("baud %q: want a standard rate such as 9600 or 19200", v)
			}
			ep.baud = n
		case "parity":
			p := strings.ToUpper(v)
			if p != "N" && p != "E" && p != "O" {
				return fmt.Errorf("parity %q: want N, E or O", v)
			}
			ep.parity = p
		case "stop":
			if v != "1" && v != "2" {
				return fmt.Errorf("stop bits %q: want 1 or 2", v)
			}
			ep.stopBits = int(v[0] - '0')
		case "data":
			if v != "8" {
				return fmt.Errorf("data bits %q: Modbus RTU needs 8", v)
			}
			ep.dataBits = 8
		}
	}
	return nil
}
