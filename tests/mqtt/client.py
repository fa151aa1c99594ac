"""A real MQTT client for tests: a dashboard/HA stand-in that records what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from treadmilld_broker import EmbeddedBroker

from treadmilld.engine.api import ProfileCatalog, TreadmillController
from treadmilld.mqtt.bridge import MqttBridge
from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.dispatch import StrapAssignment
from treadmilld.mqtt.rider_requests import WorkoutRecorderSeam
from treadmilld.riders.api import RiderDesk
from treadmilld.runtime.clock import Clock

from .doubles import StaticCatalog

WAIT_S = 10.0
# The instance name of the test bridges: their bridge topics are `<base>/bridge/test/...`.
INSTANCE = "test"


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    correlation_data: bytes | None

    @property
    def text(self) -> str:
        return self.payload.decode()

    def json(self) -> Any:
        return json.loads(self.payload)


class Observer:
    """Subscribes, records every message, and publishes like a dashboard would."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        *,
        v5: bool = False,
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
        tls_context: ssl.SSLContext | None = None,
        identifier: str | None = None,
        operation_timeout_s: float = WAIT_S,
    ) -> None:
        self._client = aiomqtt.Client(
            broker.host,
            port or broker.port,
            username=username,
            password=password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            tls_context=tls_context,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=operation_timeout_s,
        )
        self.received: list[Received] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self._client.messages:
                props = message.properties
                payload = message.payload
                self.received.append(
                    Received(
                        topic=message.topic.value,
                        payload=payload if isinstance(payload, bytes) else str(payload).encode(),
                        retain=bool(message.retain),
                        correlation_data=getattr(props, "CorrelationData", None)
                        if props is not None
                        else None,
                    )
                )
                async with self._arrived:
                    self._arrived.notify_all()

    async def subscribe(self, *topics: str) -> None:
        await self._client.subscribe([(topic, 1) for topic in topics])

    async def publish(
        self,
        topic: str,
        payload: str | bytes | Mapping[str, Any] = "",
        *,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        body = json.dumps(payload) if isinstance(payload, Mapping) else payload
        properties = None
        if response_topic is not None or correlation_data is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if response_topic is not None:
                properties.ResponseTopic = response_topic
            if correlation_data is not None:
                properties.CorrelationData = correlation_data
        await self._client.publish(topic, body, qos=1, retain=retain, properties=properties)

    def matching(
        self, topic: str, where: Callable[[Received], bool] | None = None, *, after: int = 0
    ) -> list[Received]:
        return [
            message
            for message in self.received[after:]
            if aiomqtt.Topic(message.topic).matches(topic) and (where is None or where(message))
        ]

    async def wait_for(
        self,
        topic: str,
        where: Callable[[Received], bool] | None = None,
        *,
        after: int = 0,
        within_s: float = WAIT_S,
    ) -> Received:
        """The first message on `topic` (a filter) satisfying `where`, received at index
        `after` or later; waits for it (bounded)."""
        async with asyncio.timeout(within_s), self._arrived:
            while True:
                found = self.matching(topic, where, after=after)
                if found:
                    return found[0]
                await self._arrived.wait()

    def mark(self) -> int:
        return len(self.received)

    async def request(
        self, topic: str, payload: Mapping[str, Any] | None = None, *, transaction: str = "t1"
    ) -> dict[str, Any]:
        """Publish to `.../request/<action>` and return the matching response."""
        response_topic = topic.replace("/request/", "/response/")
        after = self.mark()
        await self.publish(topic, {**(payload or {}), "transaction": transaction})
        reply = await self.wait_for(
            response_topic, lambda m: m.json().get("transaction") == transaction, after=after
        )
        body: dict[str, Any] = reply.json()
        return body


async def eventually(condition: Callable[[], bool], *, within_s: float = WAIT_S) -> None:
    """Wait (bounded) until `condition()` holds, for state that offers nothing to await."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - polling state that has no event
            await asyncio.sleep(0.005)


class ManualClock:
    """A `Clock` the test moves by hand; `deadlines` lists what sleepers wait for. Each sleeper
    waits on a future of its own, which `advance` resolves once its deadline has come."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    @property
    def deadlines(self) -> list[float]:
        return [deadline for deadline, _ in self._sleepers]

    def now(self) -> float:
        return self._now

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + seconds
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        entry = (deadline, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        self._notify()
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)
            self._notify()

    async def sleeper_until(self, deadline: float) -> None:
        """Return once some task sleeps until `deadline`."""
        while deadline not in self.deadlines:
            await self._changed.wait()

    async def advance(self, seconds: float) -> None:
        self._now += seconds
        for deadline, waiter in list(self._sleepers):
            if deadline <= self._now and not waiter.done():
                waiter.set_result(None)
        await asyncio.sleep(0)  # the woken sleepers run before the test goes on


@contextlib.asynccontextmanager
async def running_bridge_unready(
    broker: EmbeddedBroker,
    controllers: Mapping[str, TreadmillController] | None = None,
    **settings: Any,
) -> AsyncIterator[MqttBridge]:
    """A bridge that is started but not waited for (e.g. its login is refused)."""
    settings.setdefault("instance", INSTANCE)
    bridge = MqttBridge(
        MqttSettings.from_url(broker.url, client_id="treadmilld-test", **settings),
        controllers or {},
        StaticCatalog(),
        version="9.9.9",
    )
    task = asyncio.create_task(bridge.run(), name="mqtt-bridge")
    try:
        yield bridge
    finally:
        async with asyncio.timeout(WAIT_S):
            await bridge.close()
            await task


@contextlib.asynccontextmanager
async def running_bridge(
    broker: EmbeddedBroker,
    controllers: Mapping[str, TreadmillController],
    *,
    catalog: ProfileCatalog | None = None,
    clock: Clock | None = None,
    wall_time: Callable[[], float] | None = None,
    names: Mapping[str, str] | None = None,
    riders: RiderDesk | None = None,
    recorders: Mapping[str, WorkoutRecorderSeam] | None = None,
    straps: Mapping[str, StrapAssignment] | None = None,
    **settings: Any,
) -> AsyncIterator[MqttBridge]:
    """A bridge connected, announced and subscribed. State is not rate-limited unless the
    test asks (`state_min_interval_s=...`), so tests need not wait out the interval."""
    settings.setdefault("state_min_interval_s", 0.0)
    settings.setdefault("instance", INSTANCE)
    mqtt_settings = MqttSettings.from_url(broker.url, client_id="treadmilld-test", **settings)
    extra: dict[str, Any] = {}
    if wall_time is not None:
        extra["wall_time"] = wall_time
    bridge = MqttBridge(
        mqtt_settings,
        controllers,
        catalog or StaticCatalog(),
        version="9.9.9",
        clock=clock,
        names=names,
        riders=riders,
        recorders=recorders,
        straps=straps,
        **extra,
    )
    task = asyncio.create_task(bridge.run(), name="mqtt-bridge")
    try:
        async with asyncio.timeout(WAIT_S):
            await bridge.wait_ready()
        yield bridge
    finally:
        async with asyncio.timeout(WAIT_S):
            await bridge.close()
            await task


__all__ = [
    "INSTANCE",
    "ManualClock",
    "Observer",
    "Received",
    "eventually",
    "running_bridge",
    "running_bridge_unready",
]
