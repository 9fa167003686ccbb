"""Serve register images with Debian's pymodbus 3.0, over Modbus TCP or RTU.

Usage:
    /usr/bin/python3 pymodbus_image.py (--tcp PORT | --rtu DEVICE --baud BAUD)
        [--sparse] (--image IMAGE.json | --unit N=IMAGE.json ...)

An image is a JSON file {"input": {"0x0000": "0x4366", ...}, "holding":
{...}}, 0-based protocol addresses and register values as hex or decimal
strings (other keys, such as "description", are ignored): the format of
meter/profile's golden cases, which metertest.WriteImage also writes.

--tcp serves 127.0.0.1:PORT; --rtu serves the serial DEVICE (such as one
end of a socat pty pair), RTU framing, 8N1 at BAUD.

--image serves IMAGE to every unit id. --unit serves unit N its own image,
and a request to any other unit is not answered at all (pymodbus 3.0.0
drops it and sends no exception 11, on RTU and TCP alike), so the client
times out.

Without --sparse a register not in the image reads 0, so reads merged
across gaps work as on an Eastron meter. With --sparse it is an illegal
data address (exception 2), and so is every read that touches one.

pymodbus 3.0.0 notes, for whoever changes this:
  - ModbusSlaveContext adds 1 to the address of every request before it
    reaches the data block (Modbus's "register 1 is address 0"), unless
    zero_mode=True, which we pass: wire address a is the block's address
    a (checked in pymodbus/datastore/context.py, 3.0.0);
  - ModbusServerContext gives EVERY unit the same context unless
    single=False;
  - StartAsyncSerialServer defaults to the ASCII framer: pass
    framer=ModbusRtuFramer;
  - Start*Server(defer_start=True) returns the server object instead of
    running it, which is how readiness can be reported.

metertest.StartPymodbus starts this script: it prints "ready" once the
server is serving and exits when its stdin closes (the Go test holds the
write end), so it never outlives its test.
"""

import argparse
import asyncio
import json
import logging
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer


def number(text):
    """A register address or value: an int, or a string such as "0x4366"."""
    return text if isinstance(text, int) else int(text, 0)


def block(table, sparse):
    """A data block with the registers of table, by address."""
    regs = {number(a): number(v) for a, v in table.items()}
    if sparse:
        return ModbusSparseDataBlock(regs)
    values = [0] * 65536
    for addr, value in regs.items():
        values[addr] = value
    return ModbusSequentialDataBlock(0, values)


def slave(path, sparse):
    with open(path, encoding="utf-8") as f:
        image = json.load(f)
    return ModbusSlaveContext(
        ir=block(image.get("input", {}), sparse),
        hr=block(image.get("holding", {}), sparse),
        zero_mode=True,
    )


def parse_args(argv):
    p = argparse.ArgumentParser(description="Serve register images with pymodbus.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT")
    where.add_argument("--rtu", metavar="DEVICE")
    p.add_argument("--baud", type=int)
    p.add_argument("--sparse", action="store_true")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--image")
    what.add_argument("--unit", action="append", metavar="N=IMAGE")
    args = p.parse_args(argv)
    if args.rtu is not None and args.baud is None:
        p.error("--rtu needs --baud")
    return args


def context(args):
    if args.image is not None:
        return ModbusServerContext(slaves=slave(args.image, args.sparse), single=True)
    slaves = {}
    for spec in args.unit:
        unit, _, path = spec.partition("=")
        slaves[int(unit)] = slave(path, args.sparse)
    return ModbusServerContext(slaves=slaves, single=False)


async def main(argv):
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    ctx = context(args)
    if args.tcp is not None:
        server = await StartAsyncTcpServer(
            context=ctx,
            address=("127.0.0.1", args.tcp),
            allow_reuse_address=True,
            defer_start=True,
        )
        task = asyncio.create_task(server.serve_forever())
        await server.serving
    else:
        server = await StartAsyncSerialServer(
            context=ctx,
            framer=ModbusRtuFramer,
            port=args.rtu,
            baudrate=args.baud,
            bytesize=8,
            parity="N",
            stopbits=1,
            defer_start=True,
        )
        await server.start()
        if server.transport is None:
            sys.exit(f"could not open serial port {args.rtu}")
        task = asyncio.create_task(server.serve_forever())
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    task.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
