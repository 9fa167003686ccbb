#!/usr/bin/python3
"""A SunSpec device served over Modbus TCP by Debian's pymodbus 3.0.0, for
meter/sunspec's integration test.

Usage:
    pymodbus_sunspec.py PORT DEVICE_JSON MODELS_DIR

DEVICE_JSON (see pymodbus/device.json) gives the base address and, for each
model in chain order, register-level point values: integers as the
registers hold them (before scale factors; W_SF is -2, not 0.01), strings
for string points. This script lays out the image on its own, from the
SunSpec JSON definitions in MODELS_DIR (offsets are the running sum of the
point sizes; ID and L are written from the model), so the test checks the
Go decoder against an encoder it does not share. Points not given hold
their type's not-implemented value. After the "SunS" marker, the models and
the end marker (0xFFFF, 0), the image ends: reads past it answer exception
2 (illegal data address), as do reads of other bases.

It serves every unit id on 127.0.0.1:PORT, prints "ready" once listening,
and exits when its stdin closes (the Go test holds it open), so it does not
outlive the test even if the test is killed.

pymodbus 3.0.0 notes:
  - ModbusSlaveContext adds 1 to every request address unless
    zero_mode=True: with zero_mode the block's first address is the Modbus
    address, so the marker is at 40000 as a client asks for it;
  - ModbusSequentialDataBlock(address, values) covers exactly
    [address, address+len(values)): a read that runs past the end is an
    illegal data address;
  - StartAsyncTcpServer(defer_start=True) returns the server object;
    serve_forever() then listens, and server.serving resolves once it does.
"""

import asyncio
import json
import logging
import os
import struct
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncTcpServer

NOT_IMPLEMENTED = {
    "int16": [0x8000], "sunssf": [0x8000], "pad": [0x8000],
    "uint16": [0xFFFF], "enum16": [0xFFFF],
    "acc32": [0, 0], "int32": [0x8000, 0],
    "uint32": [0xFFFF, 0xFFFF], "bitfield32": [0xFFFF, 0xFFFF],
    "float32": [0x7FC0, 0],
}
PACK = {"int16": ">h", "sunssf": ">h", "uint16": ">H", "enum16": ">H",
        "acc32": ">I", "uint32": ">I", "int32": ">i", "bitfield32": ">I",
        "float32": ">f"}


def encode(point, value):
    typ, size = point["type"], point["size"]
    if typ == "string":
        raw = value.encode("utf-8")
        if len(raw) > 2 * size:
            sys.exit(f"{point['name']}: {value!r} longer than {2 * size} bytes")
        raw = raw.ljust(2 * size, b"\0")
    else:
        raw = struct.pack(PACK[typ], value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def model_block(models_dir, model):
    with open(os.path.join(models_dir, f"model_{model['id']}.json")) as f:
        definition = json.load(f)
    points = definition["group"]["points"]
    assert points[0]["name"] == "ID" and points[1]["name"] == "L"
    given = dict(model["points"])
    regs = []
    for p in points[2:]:
        if p["name"] in given:
            words = encode(p, given.pop(p["name"]))
        elif p["type"] == "string":
            words = [0] * p["size"]
        else:
            words = NOT_IMPLEMENTED[p["type"]]
        assert len(words) == p["size"], p
        regs += words
    if given:
        sys.exit(f"model {model['id']}: unknown points {sorted(given)}")
    return [model["id"], len(regs)] + regs


def image(device, models_dir):
    regs = [0x5375, 0x6E53]  # "SunS"
    for model in device["models"]:
        regs += model_block(models_dir, model)
    return regs + [0xFFFF, 0]


async def wait_stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)


async def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    port, models_dir = int(argv[1]), argv[3]
    with open(argv[2]) as f:
        device = json.load(f)
    regs = image(device, models_dir)
    hr = ModbusSequentialDataBlock(device["base"], regs)
    context = ModbusServerContext(slaves=ModbusSlaveContext(hr=hr, zero_mode=True), single=True)
    server = await StartAsyncTcpServer(
        context=context,
        address=("127.0.0.1", port),
        allow_reuse_address=True,
        defer_start=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print("ready", flush=True)
    await wait_stdin_closed()
    task.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv))
    except KeyboardInterrupt:
        pass
