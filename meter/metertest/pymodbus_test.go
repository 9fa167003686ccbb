package metertest

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

func TestPymodbusArgs(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Pymodbus
		want string // the arguments, or the start of the error
	}{
		{"tcp, every unit", Pymodbus{Port: 5020, Image: "a.json"}, "--tcp 5020 --image a.json"},
		{"rtu, units in order, sparse", Pymodbus{Serial: "/dev/pts/3", Baud: 19200, Sparse: true, Units: map[uint8]string{2: "b.json", 1: "a.json"}},
			"--rtu /dev/pts/3 --baud 19200 --sparse --unit 1=a.json --unit 2=b.json"},
		{"no place", Pymodbus{Image: "a.json"}, "error: want a Port"},
		{"two places", Pymodbus{Port: 1, Serial: "/dev/pts/3", Baud: 9600, Image: "a.json"}, "error: want a Port"},
		{"serial without baud", Pymodbus{Serial: "/dev/pts/3", Image: "a.json"}, "error: want a Port"},
		{"no image", Pymodbus{Port: 1}, "error: want an Image"},
		{"image and units", Pymodbus{Port: 1, Image: "a.json", Units: map[uint8]string{1: "a.json"}}, "error: want an Image"},
	} {
		args, err := c.p.args()
		got := strings.Join(args, " ")
		if err != nil {
			got = "error: " + err.Error()
		}
		wantErr := strings.HasPrefix(c.want, "error: ")
		if !strings.HasPrefix(got, c.want) || (err != nil) != wantErr {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// readHolding sends one Modbus TCP read of holding registers and returns
// the reply's PDU (function code first).
func readHolding(t *testing.T, c net.Conn, unit uint8, addr, count uint16) []byte {
	t.Helper()
	req := binary.BigEndian.AppendUint16([]byte{0, 1, 0, 0, 0, 6, unit, 3}, addr)
	req = binary.BigEndian.AppendUint16(req, count)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 7)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatalf("unit %d %d+%d: %v", unit, addr, count, err)
	}
	pdu := make([]byte, binary.BigEndian.Uint16(head[4:])-1)
	if _, err := io.ReadFull(c, pdu); err != nil {
		t.Fatal(err)
	}
	return pdu
}

// TestPymodbusUnitsSparse serves two units their own sparse images over
// TCP and reads them back: each unit its values, a register outside the
// image an exception 2, another unit no answer at all.
func TestPymodbusUnitsSparse(t *testing.T) {
	testtool.Integration(t)
	port := testtool.FreePort(t)
	StartPymodbus(t, Pymodbus{Port: port, Sparse: true, Units: map[uint8]string{
		1: WriteImage(t, Image{Holding: map[uint16]uint16{40000: 0x5375, 40001: 0x6E53}}),
		2: WriteImage(t, Image{Holding: map[uint16]uint16{40000: 2}}),
	}})
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, r := range []struct {
		unit        uint8
		addr, count uint16
		want        []byte
	}{
		{1, 40000, 2, []byte{3, 4, 0x53, 0x75, 0x6E, 0x53}},
		{2, 40000, 1, []byte{3, 2, 0, 2}},
		{1, 40001, 2, []byte{0x83, 2}}, // runs past the image
		{2, 0, 1, []byte{0x83, 2}},     // not in the image: not 0
	} {
		if got := readHolding(t, c, r.unit, r.addr, r.count); !slices.Equal(got, r.want) {
			t.Errorf("unit %d %d+%d: PDU % x, want % x", r.unit, r.addr, r.count, got, r.want)
		}
	}
	req := []byte{0, 2, 0, 0, 0, 6, 9, 3, 0, 0, 0, 1}
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	c.Write(req)
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Errorf("unit 9, which has no image, answered %d bytes", n)
	}
}

// TestPymodbusImageZeroFill serves one image to every unit: a register the
// image does not hold reads 0.
func TestPymodbusImageZeroFill(t *testing.T) {
	testtool.Integration(t)
	port := testtool.FreePort(t)
	StartPymodbus(t, Pymodbus{Port: port, Image: WriteImage(t, Image{Holding: map[uint16]uint16{1: 0xBEEF}})})
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, unit := range []uint8{1, 7} {
		if got, want := readHolding(t, c, unit, 0, 3), []byte{3, 6, 0, 0, 0xBE, 0xEF, 0, 0}; !slices.Equal(got, want) {
			t.Errorf("unit %d: PDU % x, want % x", unit, got, want)
		}
	}
}
