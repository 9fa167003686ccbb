"""Serve a register image over Modbus TCP with Debian's pymodbus 3.0.

Usage: /usr/bin/python3 pymodbus_image.py IMAGE.json PORT

IMAGE.json is a golden-case image (see ../README.md): {"input": {"0x0000":
"0x4366", ...}, "holding": {...}} with 0-based protocol addresses. Every
register not in the image reads 0, so reads merged across gaps work as on
an Eastron meter. The server answers every unit id (a single context).

pymodbus and 1-based addresses: a ModbusSlaveContext built with the
default zero_mode=False adds 1 to the address of every request before it
reaches the data block (Modbus's "register 1 is address 0" numbering), so
a block starting at 0 would answer wire address a with its value a+1: an
off-by-one that shifts every float32 by a register. We pass
zero_mode=True: wire address a is values[a] of a block that starts at
address 0. (Checked in pymodbus/datastore/context.py, 3.0.0.)

metertest.StartPymodbusImage starts this script: it prints "ready" once
the server listens and exits when its stdin closes.
"""

import asyncio
import json
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncTcpServer


def block(table):
    """A data block over the whole 16-bit address space, zero-filled."""
    values = [0] * 65536
    for addr, value in table.items():
        values[int(addr, 0)] = int(value, 0)
    return ModbusSequentialDataBlock(0, values)


async def main():
    path, port = sys.argv[1], int(sys.argv[2])
    with open(path, encoding="utf-8") as f:
        image = json.load(f)
    slave = ModbusSlaveContext(
        ir=block(image.get("input", {})),
        hr=block(image.get("holding", {})),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves=slave, single=True)
    server = await StartAsyncTcpServer(
        context=context,
        address=("127.0.0.1", port),
        allow_reuse_address=True,
        defer_start=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
