// Package bus is one physical Modbus bus or connection, shared by every unit
// id behind it: a Modbus TCP socket, an RS-485 line on a serial port (RTU),
// or RTU frames over a TCP socket (an RS-485-to-Ethernet converter). A Bus
// reads holding and input registers; it knows nothing of register maps,
// scaling, devices or readings (that is meter/profile and meter/sunspec).
//
// Open takes a URL:
//
//	tcp://host[:port]                       Modbus TCP, port 502 by default
//	rtu:///dev/ttyUSB0?baud=9600&parity=N&stop=1&data=8
//	rtutcp://host[:port]                    RTU framing over TCP, port 502 by default
//
// and any of them may add timeout=500ms to the query.
//
// The client library underneath, github.com/goburrow/modbus v0.1.0, is
// unmaintained and has faults that a long-running gateway trips over. Bus
// guards against them:
//
//   - One wire, one request. A handler's unit id (SlaveId) is a mutable
//     field, so two goroutines reading different units would stamp each
//     other's requests. Every request holds the bus for its whole exchange;
//     waiting for the bus honours the context, and a request whose context
//     ends while it is on the wire returns at once, its exchange finishing
//     in the background before the bus is free again.
//   - A late reply must not be read as the answer to the next request.
//     goburrow neither closes a connection after a timeout nor drains it, so
//     a reply that arrives after the timeout stays in the socket: on TCP every
//     later read then fails on a transaction id mismatch, and on RTU (no
//     transaction ids at all) every later read silently returns the reply to
//     the read before. Bus closes the connection after any timeout, I/O
//     error or malformed reply, and the next attempt opens a fresh one
//     (Stats.Reconnects counts these).
//   - On a serial port that is not enough: a late reply already buffered
//     survives closing and reopening the port. goburrow's RTUClientHandler
//     returns whatever bytes are waiting, so it is not used; Bus's own serial
//     transport (on github.com/goburrow/serial) discards waiting input
//     until the line has been silent for an RTU frame gap before each
//     request, then reads exactly one frame. (RTUClientHandler also reads an
//     exception reply only as far as its first read(2) happens to get, as
//     it compares the reply with request&0x80, and its idle timer closes the
//     port without the lock its Send never takes.)
//   - Exception replies are answers, not faults: the connection is kept and
//     the *ExceptionError returned at once, except exception 6 (server device
//     busy), which is retried with backoff.
//   - Timeouts, I/O errors and malformed replies are retried, with
//     exponential backoff, Options.Retries times (0: DefaultRetries;
//     NoRetries: a single attempt, for probing units that may be absent).
//   - A pause (Options.UnitSwitchDelay) before talking to a different unit
//     on RTU, which slow RS-485 devices need to release the line.
//   - goburrow reports a reply with the wrong function code as a Modbus
//     exception, and does not check that a read returned as many registers
//     as asked for: Bus checks both, so garbage is an error, never data.
//   - goburrow has no RTU-over-TCP handler: this package has its own RTU
//     framing (packager) for both RTU transports, which frames replies by
//     function code and byte count and checks CRC, unit and function.
//
// RTU has no transaction ids, so a reply later than the timeout plus the
// backoff, arriving just after the next request went out, is still taken
// for its answer: set Options.Timeout above the slowest device's reply time.
//
// A panic inside the client library is turned into an error on that
// request and the connection is reopened; it never takes the gateway down.
package bus
