"""In-process treadmills implementing our `TreadmillLink` seam, named by behaviour.

`ObedientTreadmill` does what it is told: its belt accelerates towards the target while running
and coasts to a stop when paused, on the injected clock; it reports telemetry once a second and
records every write with its clock time, so tests can check what reached the "belt".
The subclasses add one misbehaviour each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from treadmilld.ble.api import (
    ConnectionState,
    DeviceInformation,
    LinkConnected,
    LinkEvent,
    LinkLost,
    MachineStatusReceived,
    NotConnectedError,
    Telemetry,
    TelemetryReceived,
    TreadmillCapabilities,
)
from treadmilld.clock import Clock
from treadmilld.ftms import (
    FitnessMachineFeature,
    InclinationRange,
    MachineFeatures,
    MachineStatus,
    SpeedRange,
    StartedOrResumedByUser,
    StopKind,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetSettingFeatures,
    TargetSpeedChanged,
    TreadmillData,
)

WriteKind = Literal["start", "speed", "incline", "pause", "stop"]


@dataclass(frozen=True, slots=True)
class Write:
    at: float
    kind: WriteKind
    value: float | None = None


class _Subscription:
    def __init__(self, owner: set[_Subscription]) -> None:
        self.queue: asyncio.Queue[LinkEvent | None] = asyncio.Queue()
        self._owner = owner
        owner.add(self)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> LinkEvent:
        event = await self.queue.get()
        if event is None:
            self._owner.discard(self)
            raise StopAsyncIteration
        return event


class ObedientTreadmill:
    """A treadmill that obeys every command and reports its belt once a second."""

    def __init__(
        self,
        clock: Clock,
        *,
        treadmill_id: str = "tm-1",
        speed_range: SpeedRange | None = None,
        inclination_range: InclinationRange | None = None,
        acceleration_kmh_per_s: float = 2.0,
        telemetry_interval_s: float = 1.0,
    ) -> None:
        self.clock = clock
        self._treadmill_id = treadmill_id
        self.speed_range = speed_range or SpeedRange(0.5, 12.0, 0.1)
        self.inclination_range = (
            inclination_range if inclination_range is not None else InclinationRange(0.0, 15.0, 0.5)
        )
        self.acceleration = acceleration_kmh_per_s
        self.telemetry_interval_s = telemetry_interval_s
        self.writes: list[Write] = []
        # Measured belt: (clock time, speed) every telemetry tick.
        self.speed_trace: list[tuple[float, float]] = []
        self.running = False
        self.target_speed = 0.0
        self.target_incline = 0.0
        self.belt_speed = 0.0
        self.incline = 0.0
        self._physics_at: float | None = None
        self._state = ConnectionState.DISCONNECTED
        self._capabilities: TreadmillCapabilities | None = None
        self._telemetry = Telemetry(TreadmillData(), None)
        self._subscribers: set[_Subscription] = set()
        self._closed = asyncio.Event()
        self.sends_data = True

    # ------------------------------------------------------------------ seam properties

    @property
    def treadmill_id(self) -> str:
        return self._treadmill_id

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def capabilities(self) -> TreadmillCapabilities | None:
        return self._capabilities

    @property
    def telemetry(self) -> Telemetry:
        return self._telemetry

    def events(self) -> AsyncIterator[LinkEvent]:
        return _Subscription(self._subscribers)

    def publish(self, event: LinkEvent) -> None:
        for subscriber in list(self._subscribers):
            subscriber.queue.put_nowait(event)

    # ------------------------------------------------------------------ life

    def connect(self) -> None:
        self._state = ConnectionState.CONNECTED
        self._capabilities = TreadmillCapabilities(
            address="00:00:00:00:00:01",
            name="Obedient",
            device_information=DeviceInformation(manufacturer="tests"),
            features=FitnessMachineFeature(
                MachineFeatures(0),
                TargetSettingFeatures.SPEED | TargetSettingFeatures.INCLINATION,
            ),
            speed_range=self.speed_range,
            inclination_range=self.inclination_range,
        )
        self._telemetry = Telemetry(TreadmillData(), None)
        self.publish(LinkConnected(self._capabilities, self.clock.now()))

    async def run(self) -> None:
        self.connect()
        while not self._closed.is_set():
            await self.clock.sleep(self.telemetry_interval_s)
            now = self.clock.now()
            self._advance(now)
            self.on_tick(now)
            if self._state is ConnectionState.CONNECTED and self.sends_data:
                self._report(now)

    def on_tick(self, now: float) -> None:
        """Behaviour hook for subclasses, called once per tick before telemetry."""

    async def close(self) -> None:
        self._closed.set()
        self._state = ConnectionState.DISCONNECTED
        for subscriber in list(self._subscribers):
            subscriber.queue.put_nowait(None)

    # ------------------------------------------------------------------ physics

    def _advance(self, now: float) -> None:
        if self._physics_at is None:
            self._physics_at = now
            return
        dt = max(now - self._physics_at, 0.0)
        self._physics_at = now
        goal = self.target_speed if self.running else 0.0
        step = self.acceleration * dt
        if self.belt_speed < goal:
            self.belt_speed = min(goal, self.belt_speed + step)
        else:
            self.belt_speed = max(goal, self.belt_speed - step)
        self.incline = self.target_incline

    def _report(self, now: float) -> None:
        record = TreadmillData(
            instantaneous_speed_kmh=round(self.belt_speed, 2), inclination_pct=self.incline
        )
        self._telemetry = Telemetry(record, now)
        self.speed_trace.append((now, self.belt_speed))
        self.publish(TelemetryReceived(record, self._telemetry, now))

    def status(self, status: MachineStatus) -> None:
        self.publish(MachineStatusReceived(status, self.clock.now()))

    # ------------------------------------------------------------------ commands

    def _record(self, kind: WriteKind, value: float | None = None) -> None:
        if self._state is not ConnectionState.CONNECTED:
            raise NotConnectedError("the test treadmill is disconnected")
        now = self.clock.now()
        self._advance(now)
        self.writes.append(Write(now, kind, value))

    async def start_belt(self) -> None:
        self._record("start")
        self.running = True

    async def set_target_speed(self, speed_kmh: float) -> float:
        rng = self.speed_range
        value = round(min(max(speed_kmh, rng.minimum_kmh), rng.maximum_kmh), 2)
        self._record("speed", value)
        self.target_speed = value
        return value

    async def set_target_inclination(self, inclination_pct: float) -> float:
        rng = self.inclination_range
        value = round(min(max(inclination_pct, rng.minimum_pct), rng.maximum_pct), 1)
        self._record("incline", value)
        self.target_incline = value
        return value

    async def pause_belt(self) -> None:
        self._record("pause")
        self.running = False

    async def stop_belt(self) -> None:
        self._record("stop")
        self.running = False


class SafetyKeyPulledMidRun(ObedientTreadmill):
    """At `pull_at` the safety key comes out: the belt stops dead and Status 0x03 is sent."""

    def __init__(self, clock: Clock, *, pull_at: float, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.pull_at = pull_at
        self.pulled = False

    def on_tick(self, now: float) -> None:
        if not self.pulled and now >= self.pull_at:
            self.pulled = True
            self.running = False
            self.belt_speed = 0.0
            self.status(StoppedBySafetyKey())


class PausedAtConsoleMidRun(ObedientTreadmill):
    """At `press_at` someone presses pause (or stop) on the console: Status 0x02."""

    def __init__(
        self, clock: Clock, *, press_at: float, kind: StopKind = StopKind.PAUSE, **kwargs: Any
    ) -> None:
        super().__init__(clock, **kwargs)
        self.press_at = press_at
        self.kind = kind
        self.pressed = False

    def on_tick(self, now: float) -> None:
        if not self.pressed and now >= self.press_at:
            self.pressed = True
            self.running = False
            self.status(StoppedOrPausedByUser(self.kind))


class StartedAtConsoleMidRun(ObedientTreadmill):
    """At `press_at` someone presses start on the console: Status 0x04, the belt runs."""

    def __init__(self, clock: Clock, *, press_at: float, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.press_at = press_at
        self.pressed = False

    def on_tick(self, now: float) -> None:
        if not self.pressed and now >= self.press_at:
            self.pressed = True
            self.running = True
            self.status(StartedOrResumedByUser())


class DropsLinkMidRun(ObedientTreadmill):
    """At `drop_at` the link goes down while the belt keeps running at its last target (as
    some decks do); it comes back `back_after` seconds later."""

    def __init__(
        self, clock: Clock, *, drop_at: float, back_after: float = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(clock, **kwargs)
        self.drop_at = drop_at
        self.back_after = back_after
        self.dropped = False
        self.back = False

    def on_tick(self, now: float) -> None:
        if not self.dropped and now >= self.drop_at:
            self.dropped = True
            self._state = ConnectionState.DISCONNECTED
            self.publish(LinkLost("peer disconnected", now))
        elif self.dropped and not self.back and now >= self.drop_at + self.back_after:
            self.back = True
            self.connect()


class GoesSilentMidRun(ObedientTreadmill):
    """At `silent_at` telemetry stops while the link still looks connected."""

    def __init__(self, clock: Clock, *, silent_at: float, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.silent_at = silent_at

    def on_tick(self, now: float) -> None:
        if now >= self.silent_at:
            self.sends_data = False


class SpeedRaisedAtConsoleMidRun(ObedientTreadmill):
    """At `press_at` someone raises the target speed on the console to `speed_kmh`
    (Status 0x05), e.g. while the user walks backward."""

    def __init__(self, clock: Clock, *, press_at: float, speed_kmh: float, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.press_at = press_at
        self.console_speed = speed_kmh
        self.pressed = False

    def on_tick(self, now: float) -> None:
        if not self.pressed and now >= self.press_at and self.running:
            self.pressed = True
            self.target_speed = self.console_speed
            self.status(TargetSpeedChanged(self.console_speed))
