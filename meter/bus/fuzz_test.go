package bus

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

// FuzzRTUReply sends whatever bytes a device might answer to a read of two
// input registers from unit 1 through the RTU-over-TCP client. It must
// never panic or hang, and must return registers only for a well-formed
// reply: unit 1, function 4, byte count 4, valid CRC.
func FuzzRTUReply(f *testing.F) {
	f.Add(appendCRC([]byte{1, 4, 4, 0x12, 0x34, 0x56, 0x78}))      // good
	f.Add(appendCRC([]byte{1, 0x84, 2}))                           // exception
	f.Add(appendCRC([]byte{1, 4, 2, 0x12, 0x34}))                  // short
	f.Add(appendCRC([]byte{2, 4, 4, 0x12, 0x34, 0x56, 0x78}))      // wrong unit
	f.Add(appendCRC([]byte{1, 3, 4, 0x12, 0x34, 0x56, 0x78}))      // wrong function
	f.Add([]byte{1, 4, 4, 0x12, 0x34, 0x56, 0x78, 0, 0})           // bad CRC
	f.Add([]byte{1, 4, 255})                                       // too long
	f.Add(append(appendCRC([]byte{1, 4, 4, 0, 1, 0, 2}), 1, 2, 3)) // trailing bytes
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, device := net.Pipe()
		defer client.Close()
		go func() {
			defer device.Close()
			req := make([]byte, 8)
			if _, err := io.ReadFull(device, req); err != nil {
				return
			}
			device.Write(reply)
		}()
		p := &rtuPackager{unit: 1}
		tr := &rtuTransporter{
			dial:    func(time.Duration) (net.Conn, error) { return client, nil },
			timeout: time.Second,
		}
		regs, err := readRegisters(modbus.NewClient2(p, tr), modbus.FuncCodeReadInputRegisters, 1, 0, 2, time.Second)
		if err != nil {
			return
		}
		good := len(reply) >= 9 && slices.Equal(reply[:3], []byte{1, 4, 4}) &&
			binary.LittleEndian.Uint16(reply[7:]) == CRC16(reply[:7])
		if !good {
			t.Fatalf("reply % x gave registers %v and no error", reply, regs)
		}
		if want := []uint16{binary.BigEndian.Uint16(reply[3:]), binary.BigEndian.Uint16(reply[5:])}; !slices.Equal(regs, want) {
			t.Fatalf("reply % x gave registers %v, want %v", reply, regs, want)
		}
	})
}
