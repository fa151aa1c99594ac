"""Emergency-stop latency: MQTT publish -> Stop request at the treadmill's Control Point.

The floors are measured first, in the same run and through the same broker and simulator, so
the ratio says how much treadmilld adds on top of what the transport costs anyway.

    uv run python bench/estop.py [--stops N] [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import sys
import time
from collections.abc import AsyncIterator

import aiomqtt
from _broker import NODELAY, BrokerUnavailableError, mosquitto
from _floors import gatt_write_ms, mqtt_hop_ms
from _mqtt_contract import BASE_TOPIC, emergency_stop_command, start_command
from _stats import (
    Figure,
    PartMissingError,
    Summary,
    argument_parser,
    emit,
    not_available,
    quiet_logs,
)


async def measure(stops: int, floor_n: int) -> tuple[list[Figure], str | None]:
    figures: list[Figure] = []
    with mosquitto() as broker:
        hop = Summary.of(await mqtt_hop_ms(broker.host, broker.port, floor_n))
        figures.append(
            Figure("estop", "floor: bare MQTT publish -> receive (QoS 1, mosquitto)", "ms", hop)
        )
        try:
            gatt = await _gatt_floor(floor_n)
        except PartMissingError as exc:
            return figures, str(exc)
        figures.extend(gatt)
        try:
            stop_figure = await _estop(broker.host, broker.port, stops, figures)
        except PartMissingError as exc:
            return figures, str(exc)
        figures.append(stop_figure)
    return figures, None


async def _gatt_floor(n: int) -> list[Figure]:
    if importlib.util.find_spec("treadmilld_sim") is None:
        raise PartMissingError("treadmilld_sim is not importable: no GATT floor")
    floor = await gatt_write_ms(n)
    return [
        Figure(
            "estop",
            "floor: bare GATT Control Point write -> arrival at the simulator",
            "ms",
            Summary.of(floor.write_to_arrival_ms),
        ),
        Figure(
            "estop",
            "floor: bare GATT Control Point write -> indication back",
            "ms",
            Summary.of(floor.write_to_indication_ms),
        ),
    ]


ESTOP_TREADMILL = "bench01"
# No turns and a steady first segment: the belt is moving at a set speed when the stop comes.
ESTOP_PROFILE = "forward-walk"


async def _estop(host: str, port: int, stops: int, floors: list[Figure]) -> Figure:
    """The whole daemon in this process (run_daemon), one simulated treadmill, a bare client."""
    for module in ("treadmilld.app.run", "treadmilld.engine.session", "treadmilld.mqtt.bridge"):
        if importlib.util.find_spec(module) is None:
            raise PartMissingError(f"{module} is not importable: no emergency-stop figure")
    from treadmilld.app.assembly import Assembly
    from treadmilld.app.run import run_daemon
    from treadmilld.app.settings import Settings, TreadmillSettings
    from treadmilld.app.supervisor import Supervisor
    from treadmilld.ftms import SetTargetSpeed, StopOrPause
    from treadmilld.mqtt.config import MqttSettings

    settings = Settings(
        treadmills=[TreadmillSettings(id=ESTOP_TREADMILL, simulated={"name": "SIM-ESTOP"})],
        mqtt=MqttSettings(
            host=host, port=port, client_id="treadmilld-bench-estop", ha_discovery=False
        ),
    )
    assembled: asyncio.Future[tuple[Assembly, Supervisor]] = (
        asyncio.get_running_loop().create_future()
    )

    def on_assembled(assembly: Assembly, supervisor: Supervisor) -> None:
        assembled.set_result((assembly, supervisor))

    daemon = asyncio.create_task(run_daemon(settings, on_assembled=on_assembled))
    try:
        assembly, supervisor = await asyncio.wait_for(asyncio.shield(assembled), timeout=30)
        treadmill = assembly.simulated(ESTOP_TREADMILL)
        if treadmill is None:
            raise RuntimeError("the daemon did not build the simulated treadmill")
        stop_arrived: asyncio.Queue[float] = asyncio.Queue()
        speed_arrived: asyncio.Queue[float] = asyncio.Queue()

        def on_request(request: object, _at: float) -> None:
            now = time.perf_counter()
            if isinstance(request, StopOrPause):
                stop_arrived.put_nowait(now)
            elif isinstance(request, SetTargetSpeed):
                speed_arrived.put_nowait(now)

        treadmill.add_control_listener(on_request)
        samples = await _stop_repeatedly(host, port, stops, stop_arrived, speed_arrived)
        supervisor.request_stop("benchmark done")
        await asyncio.wait_for(daemon, timeout=15)
    finally:
        if not daemon.done():
            daemon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await daemon
    hop = next(f for f in floors if "MQTT" in f.name)
    arrival = next(f for f in floors if "arrival" in f.name)
    floor = hop.summary.median + arrival.summary.median
    return Figure(
        "estop",
        "MQTT emergency stop -> Stop at the treadmill's Control Point",
        "ms",
        Summary.of(samples),
        floor_name="MQTT hop + GATT write->arrival",
        floor_median=floor,
        note=(
            "whole daemon in-process, mosquitto, simulator; workout restarted between stops;"
            " each stop sent 20 ms after the workout's first speed setpoint reached the deck"
        ),
    )


async def _stop_repeatedly(
    host: str,
    port: int,
    stops: int,
    stop_arrived: asyncio.Queue[float],
    speed_arrived: asyncio.Queue[float],
) -> list[float]:
    samples: list[float] = []
    async with aiomqtt.Client(
        host, port, identifier="bench-estop-operator", socket_options=NODELAY
    ) as operator:
        await operator.subscribe(f"{BASE_TOPIC}/bridge/state")
        await operator.subscribe(f"{BASE_TOPIC}/{ESTOP_TREADMILL}/response/#")
        messages = aiter(operator.messages)
        # The bridge's retained `online` means its command subscriptions are in place.
        async with asyncio.timeout(30):
            while True:
                message = await anext(messages)
                if str(message.topic).endswith("bridge/state") and _text(message) == "online":
                    break
        for i in range(stops):
            _drain(speed_arrived)
            topic, body = start_command(ESTOP_TREADMILL, ESTOP_PROFILE)
            # Retried: right after connect the session may still refuse ("not connected").
            async with asyncio.timeout(30):
                await operator.publish(topic, body, qos=1)
                while not await _succeeded(messages, "start"):
                    await asyncio.sleep(0.2)
                    await operator.publish(topic, body, qos=1)
                # Walking: the first segment's speed has reached the treadmill.
                await speed_arrived.get()
            # Let that procedure's indication come back so the stop meets an idle channel.
            await asyncio.sleep(0.02)
            _drain(stop_arrived)
            topic, body = emergency_stop_command(ESTOP_TREADMILL, i)
            started = time.perf_counter()
            await operator.publish(topic, body, qos=1)
            arrived = await asyncio.wait_for(stop_arrived.get(), timeout=10)
            samples.append((arrived - started) * 1000.0)
            await _succeeded(messages, "emergency_stop", timeout_s=10)
    return samples


def _text(message: aiomqtt.Message) -> str:
    payload = message.payload
    return payload.decode() if isinstance(payload, bytes | bytearray) else str(payload)


async def _succeeded(
    messages: AsyncIterator[aiomqtt.Message], action: str, timeout_s: float = 2.0
) -> bool:
    """True when the next response to `action` says ok; False on an error or no answer."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await anext(messages)
                if str(message.topic).endswith(f"/response/{action}"):
                    reply = json.loads(_text(message))
                    return isinstance(reply, dict) and reply.get("status") == "ok"
    except TimeoutError:
        return False


def _drain(queue: asyncio.Queue[float]) -> None:
    while not queue.empty():
        queue.get_nowait()


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--stops", type=int, default=500, help="emergency stops to time")
    args = parser.parse_args()
    quiet_logs()
    stops = 50 if args.quick else args.stops
    floor_n = 100 if args.quick else 500
    try:
        figures, missing = asyncio.run(measure(stops, floor_n))
    except BrokerUnavailableError as exc:
        return not_available(str(exc))
    emit(figures, as_json=args.json)
    if missing is not None:
        return not_available(missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
