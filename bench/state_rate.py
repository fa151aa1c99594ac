"""State rate: how many `<id>/state` publications each treadmill costs a broker (and Home
Assistant's recorder) per minute, while idle and while walking.

The whole daemon runs in this process in real time (`run_daemon`: the real client on the
simulator's Bumble backend, the engine, the MQTT bridge) against a throwaway mosquitto, with
several simulated treadmills sending Treadmill Data at the simulator's 1 Hz. A bare client
subscribed to `<base>/+/state` counts what reaches it in one window: half the treadmills
connected and idle, the other half walking the built-in `forward-walk` profile (the window
opens once every one of their belts runs). The retained copy a subscription gets first is not
counted. For comparison, the note gives how often the engine announced a state
change (`StateChanged`) in the same window: what a bridge publishing on every announcement
would have sent.

    uv run python bench/state_rate.py [--seconds S] [--treadmills N] [--quick] [--json]

N treadmills per group; both groups share the window, so the run takes one window (plus
connecting and starting), not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
from _broker import NODELAY, BrokerUnavailableError, mosquitto
from _mqtt_contract import BASE_TOPIC, start_command
from _stats import Figure, Summary, argument_parser, emit, not_available, quiet_logs

if TYPE_CHECKING:
    from treadmilld.engine.api import TreadmillController

REQUIRED = ("treadmilld_sim", "treadmilld.ble.client", "treadmilld.engine.session")
INSTANCE = "bench-state-rate"
PROFILE = "forward-walk"  # built in; 45 minutes of forward walking, longer than any window
# Once the walkers' belts run, a little more before the window opens: the first seconds of a
# workout (the ramp up) change the state more than walking does.
SETTLE_S = 3.0


class Counts:
    """State publications (received by the bare client) and engine announcements, per
    treadmill, each with its arrival time."""

    def __init__(self) -> None:
        self.published: dict[str, list[float]] = {}
        self.announced: dict[str, list[float]] = {}

    def in_window(self, kind: dict[str, list[float]], start: float, end: float) -> Counter[str]:
        return Counter(
            {tid: sum(1 for at in times if start <= at < end) for tid, times in kind.items()}
        )


async def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - snapshots offer nothing to await
            await asyncio.sleep(0.1)


async def _count(client: aiomqtt.Client, counts: Counts, replies: asyncio.Queue[Any]) -> None:
    async for message in client.messages:
        levels = str(message.topic).split("/")
        if levels[2] == "state":
            # The retained copy a new subscription gets is old news.
            if not message.retain and levels[1] in counts.published:
                counts.published[levels[1]].append(time.monotonic())
        elif isinstance(message.payload, bytes):
            replies.put_nowait(json.loads(message.payload))


async def _window(
    client: aiomqtt.Client,
    sessions: dict[str, TreadmillController],
    replies: asyncio.Queue[Any],
    *,
    idle_ids: list[str],
    walking_ids: list[str],
    seconds: float,
) -> tuple[float, float]:
    """Start the walkers, wait until their belts run, then hold the window open; returns
    its (start, end)."""
    from treadmilld.engine.api import BeltState, Phase

    everyone = list(sessions.values())
    await _until(lambda: all(s.snapshot().belt is BeltState.STANDING for s in everyone))
    for tid in walking_ids:
        topic, body = start_command(tid, PROFILE)
        await client.publish(topic, body, qos=1)
        async with asyncio.timeout(10):
            reply = await replies.get()
        if reply.get("status") != "ok":
            raise RuntimeError(f"{tid} refused the start: {reply}")
    walkers = [sessions[tid] for tid in walking_ids]
    await _until(
        lambda: all(
            s.snapshot().phase is Phase.RUNNING and s.snapshot().belt is BeltState.MOVING
            for s in walkers
        )
    )
    await asyncio.sleep(SETTLE_S)
    start = time.monotonic()
    await asyncio.sleep(seconds)
    end = time.monotonic()
    if any(s.snapshot().phase is not Phase.RUNNING for s in walkers):
        raise RuntimeError("a treadmill stopped walking inside the window")
    if any(sessions[tid].snapshot().phase is not Phase.IDLE for tid in idle_ids):
        raise RuntimeError("an idle treadmill did not stay idle")
    return start, end


async def measure(
    host: str, port: int, treadmills: int, seconds: float
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per treadmill, per minute: (idle published, idle announced, walking published,
    walking announced)."""
    from treadmilld.app.assembly import Assembly
    from treadmilld.app.run import run_daemon
    from treadmilld.app.settings import Settings, TreadmillSettings
    from treadmilld.app.supervisor import Supervisor
    from treadmilld.engine.api import StateChanged
    from treadmilld.mqtt.config import MqttSettings

    ids = [f"rate{i:02d}" for i in range(1, 2 * treadmills + 1)]
    idle_ids, walking_ids = ids[:treadmills], ids[treadmills:]
    counts = Counts()
    for tid in ids:
        counts.published[tid] = []
        counts.announced[tid] = []
    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-state-rate-") as tmp:
        settings = Settings(
            treadmills=[
                TreadmillSettings(id=tid, simulated={"name": f"SIM-RATE-{tid[-2:]}"}) for tid in ids
            ],
            mqtt=MqttSettings(
                host=host,
                port=port,
                instance=INSTANCE,
                client_id=f"treadmilld-{INSTANCE}",
                ha_discovery=False,
            ),
            profiles_dir=Path(tmp),
        )
        assembled: asyncio.Future[tuple[Assembly, Supervisor]] = (
            asyncio.get_running_loop().create_future()
        )

        def on_assembled(assembly: Assembly, supervisor: Supervisor) -> None:
            assembled.set_result((assembly, supervisor))

        daemon = asyncio.create_task(run_daemon(settings, on_assembled=on_assembled))
        watchers: list[asyncio.Task[None]] = []
        try:
            assembly, supervisor = await asyncio.wait_for(asyncio.shield(assembled), timeout=30)
            sessions: dict[str, TreadmillController] = {
                unit.treadmill_id: unit.session for unit in assembly.units
            }

            async def announcements(tid: str) -> None:
                async for event in sessions[tid].events():
                    if isinstance(event, StateChanged):
                        counts.announced[tid].append(time.monotonic())

            watchers = [asyncio.create_task(announcements(tid)) for tid in ids]
            async with aiomqtt.Client(
                host, port, identifier=f"{INSTANCE}-counter", socket_options=NODELAY
            ) as client:
                await client.subscribe(f"{BASE_TOPIC}/+/state", qos=0)
                await client.subscribe(f"{BASE_TOPIC}/+/response/start", qos=1)
                replies: asyncio.Queue[Any] = asyncio.Queue()
                counter = asyncio.create_task(_count(client, counts, replies))
                try:
                    start, end = await _window(
                        client,
                        sessions,
                        replies,
                        idle_ids=idle_ids,
                        walking_ids=walking_ids,
                        seconds=seconds,
                    )
                finally:
                    counter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await counter
            supervisor.request_stop("benchmark done")
            await asyncio.wait_for(daemon, timeout=30)
        finally:
            for watcher in watchers:
                watcher.cancel()
            if not daemon.done():
                daemon.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await daemon

    def per_minute(kind: dict[str, list[float]], group: list[str]) -> list[float]:
        window = counts.in_window(kind, start, end)
        return [window[tid] * 60.0 / (end - start) for tid in group]

    return (
        per_minute(counts.published, idle_ids),
        per_minute(counts.announced, idle_ids),
        per_minute(counts.published, walking_ids),
        per_minute(counts.announced, walking_ids),
    )


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each window")
    parser.add_argument(
        "--treadmills", type=int, default=4, help="simulated treadmills per group (idle, walking)"
    )
    args = parser.parse_args()
    quiet_logs()
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            return not_available(f"{module} is not importable yet")
    seconds = 20.0 if args.quick else args.seconds
    try:
        with mosquitto() as broker:
            idle, idle_announced, walking, walking_announced = asyncio.run(
                measure(broker.host, broker.port, args.treadmills, seconds)
            )
    except BrokerUnavailableError as exc:
        return not_available(str(exc))

    def note(announced: list[float], what: str) -> str:
        mean = sum(announced) / len(announced)
        return (
            f"{args.treadmills} treadmills, data at 1 Hz, one {seconds:.0f} s window, real time; "
            f"{what}; the engine announced {mean:.0f} changes/min per treadmill"
        )

    figures = [
        Figure(
            "state_rate",
            "`<id>/state` publications per treadmill per minute, idle",
            "/min",
            Summary.of(idle),
            note=note(idle_announced, "connected, belt standing, no workout"),
        ),
        Figure(
            "state_rate",
            "`<id>/state` publications per treadmill per minute, walking",
            "/min",
            Summary.of(walking),
            note=note(walking_announced, f"`{PROFILE}` at a steady pace"),
        ),
    ]
    emit(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
