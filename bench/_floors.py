"""Floors: the paths treadmilld's figures compete against, with treadmilld taken out.

- `mqtt_hop_ms`: one publish -> receive hop between two bare aiomqtt clients through the same
  broker the daemon uses (QoS 1, like an emergency-stop command).
- `mqtt_round_trip_ms`: a request and its reply between two bare aiomqtt clients: the second
  one answers each message it receives on another topic at once (QoS 1 both ways, like an
  emergency stop and the daemon's reply to it).
- `gatt_write_ms`: one bare Control Point write from a `BleakClient` to a simulated treadmill,
  timed to the request reaching the treadmill (its control listener) and to the indication
  coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import aiomqtt
from _broker import NODELAY

_WARMUP = 20


async def mqtt_hop_ms(host: str, port: int, n: int, *, qos: int = 1) -> list[float]:
    """Milliseconds from `publish()` being called to the other client receiving the message."""
    topic = "treadmilld-bench/floor"
    samples: list[float] = []
    async with (
        aiomqtt.Client(host, port, identifier="bench-floor-rx", socket_options=NODELAY) as receiver,
        aiomqtt.Client(host, port, identifier="bench-floor-tx", socket_options=NODELAY) as sender,
    ):
        await receiver.subscribe(topic, qos=qos)
        messages = aiter(receiver.messages)
        for i in range(n + _WARMUP):
            payload = str(i).encode()
            started = time.perf_counter()
            await sender.publish(topic, payload, qos=qos)
            while True:
                message = await asyncio.wait_for(anext(messages), timeout=5)
                if message.payload == payload:
                    break
            if i >= _WARMUP:
                samples.append((time.perf_counter() - started) * 1000.0)
    return samples


async def mqtt_round_trip_ms(host: str, port: int, n: int, *, qos: int = 1) -> list[float]:
    """Milliseconds from `publish()` of a request to receiving the echo client's reply."""
    request_topic = "treadmilld-bench/floor/request"
    reply_topic = "treadmilld-bench/floor/reply"
    samples: list[float] = []
    async with (
        aiomqtt.Client(host, port, identifier="bench-floor-echo", socket_options=NODELAY) as echo,
        aiomqtt.Client(host, port, identifier="bench-floor-asker", socket_options=NODELAY) as asker,
    ):
        await echo.subscribe(request_topic, qos=qos)
        await asker.subscribe(reply_topic, qos=qos)

        async def answer() -> None:
            async for message in echo.messages:
                await echo.publish(reply_topic, message.payload, qos=qos)

        answering = asyncio.create_task(answer())
        try:
            replies = aiter(asker.messages)
            for i in range(n + _WARMUP):
                payload = str(i).encode()
                started = time.perf_counter()
                await asker.publish(request_topic, payload, qos=qos)
                while True:
                    message = await asyncio.wait_for(anext(replies), timeout=5)
                    if message.payload == payload:
                        break
                if i >= _WARMUP:
                    samples.append((time.perf_counter() - started) * 1000.0)
        finally:
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering
    return samples


@dataclass(frozen=True, slots=True)
class GattFloor:
    write_to_arrival_ms: list[float]
    write_to_indication_ms: list[float]


async def gatt_write_ms(n: int) -> GattFloor:
    """Bare Control Point writes (Request Control) from a `BleakClient` to a simulated treadmill.

    Times each write to its arrival at the treadmill (its control listener) and to the
    indication coming back, with nothing of treadmilld's client in the path.
    """
    from bleak import BleakClient, BleakScanner
    from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

    from treadmilld.ftms import CONTROL_POINT_UUID, RequestControl, encode_control_request

    arrivals: list[float] = []
    indications: asyncio.Queue[float] = asyncio.Queue()
    to_arrival: list[float] = []
    to_indication: list[float] = []
    request = encode_control_request(RequestControl())
    async with SimulatedFleet() as fleet:
        treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-FLOOR"))
        treadmill.add_control_listener(lambda _request, _at: arrivals.append(time.perf_counter()))
        device = await BleakScanner.find_device_by_address(
            treadmill.address, timeout=10, backend=fleet.scanner_backend
        )
        if device is None:
            raise RuntimeError("the simulated treadmill was not found by a scan; sim broken?")
        async with BleakClient(device, backend=fleet.client_backend) as client:
            await client.start_notify(
                CONTROL_POINT_UUID, lambda _char, _data: indications.put_nowait(time.perf_counter())
            )
            for i in range(n + _WARMUP):
                arrivals.clear()
                started = time.perf_counter()
                await client.write_gatt_char(CONTROL_POINT_UUID, request, response=True)
                indicated = await asyncio.wait_for(indications.get(), timeout=5)
                if i >= _WARMUP and arrivals:
                    to_arrival.append((arrivals[0] - started) * 1000.0)
                    to_indication.append((indicated - started) * 1000.0)
    return GattFloor(to_arrival, to_indication)
