"""The whole daemon in the test's process (`run_daemon`), on simulated treadmills and a real
broker, with the treadmills' Control Point traffic recorded and an operator MQTT client.

In-process (rather than a subprocess) so a test can watch each simulated treadmill's Control
Point and belt directly; the signal tests use a real subprocess instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from treadmilld_broker import EmbeddedBroker
from treadmilld_sim import SimulatedTreadmill

from treadmilld.app.assembly import Assembly
from treadmilld.app.run import run_daemon
from treadmilld.app.settings import Settings, TreadmillSettings
from treadmilld.app.supervisor import Supervisor
from treadmilld.engine.api import SessionSnapshot
from treadmilld.ftms import ControlRequest
from treadmilld.mqtt.config import MqttSettings

BASE = "treadmilld"
INSTANCE = "reliability"  # bridge topics: <BASE>/bridge/reliability/...
WAIT_S = 20.0


class NothingArrivedError(AssertionError):
    """No matching MQTT message arrived in time (a test failure unless polled for)."""


@dataclass
class Recorded:
    """Control Point requests one simulated treadmill received, with wall-clock times."""

    requests: list[tuple[float, ControlRequest]] = field(default_factory=list)

    def since(self, moment: float) -> list[ControlRequest]:
        return [request for at, request in self.requests if at >= moment]


@dataclass
class RunningDaemon:
    assembly: Assembly
    supervisor: Supervisor
    recorded: dict[str, Recorded]

    def treadmill(self, treadmill_id: str) -> SimulatedTreadmill:
        simulated = self.assembly.simulated(treadmill_id)
        assert simulated is not None, f"{treadmill_id} is not simulated"
        return simulated

    def snapshot(self, treadmill_id: str) -> SessionSnapshot:
        for unit in self.assembly.units:
            if unit.treadmill_id == treadmill_id:
                return unit.session.snapshot()
        raise KeyError(treadmill_id)

    async def until(self, what: str, check: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        """Poll `check` (state of the in-process parts) until true; fail naming `what`."""
        try:
            async with asyncio.timeout(timeout_s):
                # Polled: the parts under test expose no event for every state a test awaits.
                while not check():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for: {what}") from None


def _recorder(record: Recorded) -> Callable[[ControlRequest, float], None]:
    def on_request(request: ControlRequest, _at: float) -> None:
        record.requests.append((time.monotonic(), request))

    return on_request


@contextlib.asynccontextmanager
async def running_daemon(
    broker: EmbeddedBroker, treadmill_ids: tuple[str, ...] = ("tm01",), **mqtt: Any
) -> AsyncIterator[RunningDaemon]:
    settings = Settings(
        treadmills=[
            TreadmillSettings(id=tid, simulated={"name": f"SIM-{tid.upper()}"})
            for tid in treadmill_ids
        ],
        mqtt=MqttSettings(
            host=broker.host, port=broker.port, base_topic=BASE, **{"instance": INSTANCE, **mqtt}
        ),
    )
    assembled: asyncio.Future[RunningDaemon] = asyncio.get_running_loop().create_future()

    def on_assembled(assembly: Assembly, supervisor: Supervisor) -> None:
        recorded: dict[str, Recorded] = {}
        for tid in treadmill_ids:
            record = recorded[tid] = Recorded()
            simulated = assembly.simulated(tid)
            assert simulated is not None
            simulated.add_control_listener(_recorder(record))
        assembled.set_result(RunningDaemon(assembly, supervisor, recorded))

    task = asyncio.create_task(run_daemon(settings, on_assembled=on_assembled))
    try:
        async with asyncio.timeout(WAIT_S):
            daemon = await asyncio.shield(assembled)
        yield daemon
        daemon.supervisor.request_stop("test finished")
        async with asyncio.timeout(WAIT_S):
            await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def operator(broker: EmbeddedBroker, name: str = "operator") -> AsyncIterator[Operator]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"test-{name}") as client:
        yield Operator(client)


class Operator:
    """A person's MQTT client: sends commands, reads replies, events and state."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self._messages = aiter(client.messages)

    async def subscribe(self, *topics: str) -> None:
        for topic in topics:
            await self.client.subscribe(topic, qos=1)

    async def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos=1, retain=retain)

    async def next_on(
        self,
        topic_suffix: str,
        timeout_s: float = WAIT_S,
        where: Callable[[Any], bool] | None = None,
    ) -> Any:
        """The next message whose topic ends with `topic_suffix`, JSON-decoded when it can
        be, for which `where(value)` holds."""
        _topic, value = await self.next_of((topic_suffix,), timeout_s, where)
        return value

    async def poll(self, topic_suffix: str, within_s: float) -> Any | None:
        """The next message on `topic_suffix` within `within_s`, or None if none came."""
        try:
            return await self.next_on(topic_suffix, timeout_s=within_s)
        except NothingArrivedError:
            return None

    async def next_of(
        self,
        topic_suffixes: tuple[str, ...],
        timeout_s: float = WAIT_S,
        where: Callable[[Any], bool] | None = None,
    ) -> tuple[str, Any]:
        """(topic, value) of the next message on any of `topic_suffixes` passing `where`."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await anext(self._messages)
                    topic = str(message.topic)
                    if not topic.endswith(topic_suffixes):
                        continue
                    payload = message.payload
                    raw = payload if isinstance(payload, bytes) else str(payload).encode()
                    try:
                        value: Any = json.loads(raw)
                    except ValueError:
                        value = raw.decode(errors="replace")
                    if where is None or where(value):
                        return topic, value
        except TimeoutError:
            raise NothingArrivedError(f"nothing arrived on ...{topic_suffixes}") from None

    async def request(
        self, treadmill_id: str, action: str, payload: bytes | str = b"{}"
    ) -> dict[str, Any]:
        """Send `request/<action>` and return the reply on `response/<action>`."""
        await self.publish(f"{BASE}/{treadmill_id}/request/{action}", payload)
        reply = await self.next_on(f"{treadmill_id}/response/{action}")
        assert isinstance(reply, dict), f"reply is not an object: {reply!r}"
        return reply

    async def start_profile(self, daemon: RunningDaemon, treadmill_id: str, profile: str) -> None:
        """Start `profile` over MQTT once the treadmill is connected (the session may refuse
        with `not_connected` for a moment after the link comes up: ask again then)."""
        await daemon.until(
            "treadmill connected", lambda: daemon.snapshot(treadmill_id).connection == "connected"
        )
        await self.subscribe(f"{BASE}/{treadmill_id}/response/start")
        for _attempt in range(50):
            reply = await self.request(treadmill_id, "start", json.dumps({"profile": profile}))
            if reply["status"] == "ok":
                return
            assert reply.get("code") == "not_connected", reply
            await asyncio.sleep(0.2)
        raise AssertionError(f"{profile} never started on {treadmill_id}")
