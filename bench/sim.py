"""The simulator's own costs: what every test and the demo pay for the in-process BLE stack.

Through the real `BleakScanner`/`BleakClient` on the simulator's Bumble backend:

- scan: `find_device_by_address` until the treadmill's advertisement is heard;
- connect: `BleakClient.connect()` (LE connection, MTU exchange, full service discovery);
- write -> indication: one Control Point write with response until its indication arrives;
- reconnect cycle: disconnect, connect again, enable Control Point indications, Request
  Control answered: what a client does after every link drop.

LocalLink delivers PDUs on the next loop iteration, with no connection interval or radio loss:
these are software costs only and say nothing about real BLE latency.

    uv run python bench/sim.py [--quick] [--json] [--connects N] [--writes N] [--cycles N]
"""

from __future__ import annotations

import asyncio
import logging
import time

import structlog
from _stats import Figure, Summary, argument_parser, emit
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    RequestControl,
    ResultCode,
    decode_control_response,
    encode_control_request,
)

_WARMUP = 5
_BOUND_S = 10.0  # any single step taking this long is a hang, not a measurement


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


async def measure(scans: int, connects: int, writes: int, cycles: int) -> list[Figure]:
    scan_ms: list[float] = []
    connect_ms: list[float] = []
    round_trip_ms: list[float] = []
    cycle_ms: list[float] = []
    request_control = encode_control_request(RequestControl())
    async with SimulatedFleet() as fleet:
        treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-BENCH"))
        controllers_at_start = fleet.radio.controller_count

        device: BLEDevice | None = None
        for _ in range(max(scans, 1)):
            started = time.perf_counter()
            device = await BleakScanner.find_device_by_address(
                treadmill.address, timeout=_BOUND_S, backend=fleet.scanner_backend
            )
            scan_ms.append(_ms(started))
        if device is None:
            raise RuntimeError("the simulated treadmill was not heard; the simulator is broken")

        for index in range(connects + _WARMUP):
            client = BleakClient(device, backend=fleet.client_backend)
            started = time.perf_counter()
            async with asyncio.timeout(_BOUND_S):
                await client.connect()
            if index >= _WARMUP:
                connect_ms.append(_ms(started))
            await client.disconnect()
            await asyncio.sleep(0)

        answers: asyncio.Queue[ResultCode] = asyncio.Queue()
        client = BleakClient(device, backend=fleet.client_backend)
        await client.connect()
        await client.start_notify(
            CONTROL_POINT_UUID,
            lambda _char, data: answers.put_nowait(decode_control_response(bytes(data)).result),
        )
        for index in range(writes + _WARMUP):
            started = time.perf_counter()
            async with asyncio.timeout(_BOUND_S):
                await client.write_gatt_char(CONTROL_POINT_UUID, request_control, response=True)
                result = await answers.get()
            if index >= _WARMUP:
                round_trip_ms.append(_ms(started))
            if result is not ResultCode.SUCCESS:
                raise RuntimeError(f"Request Control answered {result.name}, expected SUCCESS")

        for index in range(cycles + _WARMUP):
            started = time.perf_counter()
            async with asyncio.timeout(_BOUND_S):
                await client.disconnect()
                await client.connect()
                await client.start_notify(
                    CONTROL_POINT_UUID,
                    lambda _char, data: answers.put_nowait(
                        decode_control_response(bytes(data)).result
                    ),
                )
                await client.write_gatt_char(CONTROL_POINT_UUID, request_control, response=True)
                result = await answers.get()
            if index >= _WARMUP:
                cycle_ms.append(_ms(started))
            if result is not ResultCode.SUCCESS:
                raise RuntimeError(f"Request Control answered {result.name} after a reconnect")
        await client.disconnect()
        await asyncio.sleep(0)
        leaked = fleet.radio.controller_count - controllers_at_start

    note = "in-process LocalLink: software cost only, not radio latency"
    return [
        Figure("sim", "scan: find_device_by_address", "ms", Summary.of(scan_ms), note=note),
        Figure("sim", "connect (MTU 247 + discovery)", "ms", Summary.of(connect_ms), note=note),
        Figure("sim", "Control Point write -> indication", "ms", Summary.of(round_trip_ms)),
        Figure(
            "sim",
            "reconnect cycle (disconnect, connect, subscribe, Request Control)",
            "ms",
            Summary.of(cycle_ms),
            note=f"controllers leaked: {leaked}",
        ),
    ]


def main() -> int:
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else "simulator costs")
    parser.add_argument("--scans", type=int, default=50)
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()
    # Keep stdout for the figures (bench/run parses --json output).
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.quick:
        args.scans, args.connects, args.writes, args.cycles = 5, 20, 50, 20
    figures = asyncio.run(measure(args.scans, args.connects, args.writes, args.cycles))
    emit(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
