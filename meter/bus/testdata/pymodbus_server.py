#!/usr/bin/python3
"""Modbus slave for meter/bus integration tests, on Debian's pymodbus 3.0.0.

Usage:
    pymodbus_server.py tcp PORT
    pymodbus_server.py rtu DEVICE BAUD

Serves units 1 and 2 on 127.0.0.1:PORT (Modbus TCP) or on the serial
DEVICE (Modbus RTU, 8N1 at BAUD). Unit u has, for register address i in
0..99:
    holding register i = u*1000 + i
    input register i   = u*1000 + 500 + i
Every other address answers exception 2 (illegal data address). A request
to any other unit is not answered at all, on RTU and on TCP alike (pymodbus
3.0.0 drops it; it sends no exception 11), so the client times out.

It prints "ready" on stdout once it is serving, and exits when stdin is
closed (the Go test holds the write end), so it never outlives its test.

pymodbus 3.0.0 notes, for whoever copies this:
  - ModbusSlaveContext adds 1 to every address unless zero_mode=True;
  - ModbusServerContext gives EVERY unit the same context unless single=False;
  - StartAsyncSerialServer defaults to the ASCII framer: pass
    framer=ModbusRtuFramer;
  - Start*Server(defer_start=True) returns the server object instead of
    running it, which is how readiness can be reported.
"""

import asyncio
import logging
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer

REGISTERS = 100


def context():
    slaves = {}
    for unit in (1, 2):
        hr = ModbusSequentialDataBlock(0, [unit * 1000 + i for i in range(REGISTERS)])
        ir = ModbusSequentialDataBlock(0, [unit * 1000 + 500 + i for i in range(REGISTERS)])
        slaves[unit] = ModbusSlaveContext(hr=hr, ir=ir, zero_mode=True)
    return ModbusServerContext(slaves=slaves, single=False)


async def wait_stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)


async def main(argv):
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if len(argv) == 3 and argv[1] == "tcp":
        server = await StartAsyncTcpServer(
            context=context(),
            address=("127.0.0.1", int(argv[2])),
            allow_reuse_address=True,
            defer_start=True,
        )
        task = asyncio.create_task(server.serve_forever())
        await server.serving
    elif len(argv) == 4 and argv[1] == "rtu":
        server = await StartAsyncSerialServer(
            context=context(),
            framer=ModbusRtuFramer,
            port=argv[2],
            baudrate=int(argv[3]),
            bytesize=8,
            parity="N",
            stopbits=1,
            defer_start=True,
        )
        await server.start()
        if server.transport is None:
            sys.exit(f"could not open serial port {argv[2]}")
        task = asyncio.create_task(server.serve_forever())
    else:
        sys.exit(__doc__)
    print("ready", flush=True)
    await wait_stdin_closed()
    task.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv))
    except KeyboardInterrupt:
        pass
