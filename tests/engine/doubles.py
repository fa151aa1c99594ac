"""In-process treadmills implementing our `TreadmillLink` seam, named by behaviour.

`ObedientTreadmill` does what it is told: its belt accelerates towards the target while running
and coasts to a stop when paused, on the injected clock; it reports telemetry once a second and
records every write with its clock time, so tests can check what reached the "belt".
The subclasses add one misbehaviour each.

`DeckBehaviour` makes any of them behave like real decks as users report them (slow
deceleration, late Control Point answers, no Machine Status for console buttons or the safety
key, resuming at the last target, left inclined with a slow incline motor); its defaults are
the obedient deck. `belt_trace` records the belt itself (speed and incline) at every tick and at
every write that reaches the deck, for invariants stated on the measured belt.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from treadmilld.ble.api import (
    SET_TARGET_SPEED_REQUEST,
    ConnectionState,
    ControlRejectedError,
    DeviceInformation,
    LinkConnected,
    LinkEvent,
    LinkLost,
    LinkLostCause,
    MachineStatusReceived,
    NotConnectedError,
    Telemetry,
    TelemetryReceived,
    TreadmillCapabilities,
)
from treadmilld.ftms import (
    FitnessMachineFeature,
    InclinationRange,
    MachineFeatures,
    MachineStatus,
    ResultCode,
    SpeedRange,
    StartedOrResumedByUser,
    StopKind,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetSettingFeatures,
    TargetSpeedChanged,
    TreadmillData,
)
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.fanout import FanOut

WriteKind = Literal["start", "speed", "incline", "pause", "stop", "refused", "reset"]


@dataclass(frozen=True, slots=True)
class Write:
    at: float  # clock time the deck acted on it
    kind: WriteKind
    value: float | None = None
    # Clock time the engine sent it, when that differs from `at` (a deck that answers late).
    sent_at: float | None = None
    # The deck's incline when the write reached it, before it acted: several writes can land
    # in one instant of the virtual clock, and a sample taken at that instant may already show
    # a later one's effect.
    incline_before_pct: float | None = field(default=None, repr=False, compare=False)

    @property
    def sent(self) -> float:
        return self.at if self.sent_at is None else self.sent_at


class BeltSample(NamedTuple):
    """The belt at one moment, as the deck has it (unrounded: the record it sends carries the
    speed rounded to 0.01 km/h and the incline to 0.1 %)."""

    at: float
    speed_kmh: float
    incline_pct: float
    # True when this is a Treadmill Data record the engine received; False for the deck's own
    # state at a write, or at a tick while the link is down or the deck is silent.
    reported: bool


@dataclass(frozen=True, slots=True)
class DeckBehaviour:
    """How a deck departs from the obedient one (see docs/simulator.md). The defaults are the
    obedient deck exactly, so existing tests see no change."""

    # Belt deceleration; None: as fast as it accelerates. Real decks: 1.0 down to 0.25 km/h/s.
    deceleration_kmh_per_s: float | None = None
    # Every Control Point write waits this long on the clock before the deck acts on it and
    # answers (one procedure at a time, as on the real link; a write whose caller gives up
    # still reaches the deck, as under BlueZ). 0: at once.
    answer_delay_s: float = 0.0
    # False: console stop/pause and the safety key send no Machine Status; they show only in
    # the data (the belt slows to 0).
    reports_console_status: bool = True
    # True: the target survives Stop/Pause, so Start resumes at it unless a new target was
    # written while stopped (the obedient deck always did). False: Stop/Pause forget it and
    # Start runs at the deck's minimum speed unless a target was written since.
    resumes_at_last_target: bool = True
    # Left inclined by the previous user.
    initial_incline_pct: float = 0.0
    # Incline motor speed; None: the incline is at its target at once.
    incline_rate_pct_per_s: float | None = None
    # Set Target Speed refused (Operation Failed) while the belt stands; the capabilities say
    # so, as the link reports a belt-first deck (3G Cardio: qdomyos-zwift#3382).
    refuses_speed_while_standing: bool = False
    # The deck stops its belt by itself after this long running, like a console stop (Horizon:
    # 30 minutes, qdomyos-zwift#1128); Machine Status only if reports_console_status.
    stops_itself_after_s: float | None = None
    # Incline set by table index: the incline set is the highest entry at or below the asked
    # one, as the link reports it for such decks (Kettler/iConcept pattern, docs/decks.md).
    incline_table: tuple[float, ...] | None = None
    # Reset (FTMS §4.16.2.2) answered Not Supported, and nothing changes.
    refuses_reset: bool = False


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
        behaviour: DeckBehaviour | None = None,
    ) -> None:
        self.clock = clock
        self.behaviour = behaviour or DeckBehaviour()
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
        # The belt at every tick (reported or not) and at every write the deck acts on; between
        # two samples it moves one way only, so the samples bound it.
        self.belt_trace: list[BeltSample] = []
        # (clock time, connected) at every connect and every drop.
        self.link_log: list[tuple[float, bool]] = []
        self.running = False
        # Clock time the belt was last started (for stops_itself_after_s).
        self._running_since: float | None = None
        self.target_speed = 0.0
        self.target_incline = self.behaviour.initial_incline_pct
        self.belt_speed = 0.0
        self.incline = self.behaviour.initial_incline_pct
        self._control_lock = asyncio.Lock()
        self._physics_at: float | None = None
        self._state = ConnectionState.DISCONNECTED
        self._capabilities: TreadmillCapabilities | None = None
        self._telemetry = Telemetry(TreadmillData(), None)
        # A test treadmill never drops an event: its tests read everything it publishes.
        self._events: FanOut[LinkEvent] = FanOut(f"test {treadmill_id}", maxsize=sys.maxsize)
        # Procedures the engine stopped waiting for still finish, as on a real deck.
        self._background = Background()
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
        return self._events.subscribe()

    def publish(self, event: LinkEvent) -> None:
        self._events.publish(event)

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
            speed_needs_running_belt=self.behaviour.refuses_speed_while_standing,
        )
        self._telemetry = Telemetry(TreadmillData(), None)
        self.link_log.append((self.clock.now(), True))
        self.publish(LinkConnected(self._capabilities, self.clock.now()))

    def drop_link(self, reason: str, cause: LinkLostCause = LinkLostCause.DROPPED) -> None:
        """The link goes down (the belt does whatever the deck does on its own)."""
        now = self.clock.now()
        self._state = ConnectionState.DISCONNECTED
        self.link_log.append((now, False))
        self.publish(LinkLost(reason, now, cause))

    async def run(self) -> None:
        self.connect()
        while not self._closed.is_set():
            await self.clock.sleep(self.telemetry_interval_s)
            now = self.clock.now()
            self._advance(now)
            self._stop_by_itself(now)
            self.on_tick(now)
            reported = self._state is ConnectionState.CONNECTED and self.sends_data
            sample = BeltSample(now, self.belt_speed, self.incline, reported=reported)
            self.belt_trace.append(sample)
            if reported:
                self._report(now)

    def on_tick(self, now: float) -> None:
        """Behaviour hook for subclasses, called once per tick before telemetry."""

    def _stop_by_itself(self, now: float) -> None:
        """The deck's own timer ends the run, as its console Stop would."""
        limit = self.behaviour.stops_itself_after_s
        if limit is None or not self.running or self._running_since is None:
            return
        if now - self._running_since >= limit:
            self._halt()
            if self.behaviour.reports_console_status:
                self.status(StoppedOrPausedByUser(StopKind.STOP))

    async def close(self) -> None:
        self._closed.set()
        self._state = ConnectionState.DISCONNECTED
        self._events.end_subscriptions()

    # ------------------------------------------------------------------ physics

    def _advance(self, now: float) -> None:
        if self._physics_at is None:
            self._physics_at = now
            return
        dt = max(now - self._physics_at, 0.0)
        self._physics_at = now
        goal = self.target_speed if self.running else 0.0
        if self.belt_speed < goal:
            self.belt_speed = min(goal, self.belt_speed + self.acceleration * dt)
        else:
            deceleration = self.behaviour.deceleration_kmh_per_s
            rate = self.acceleration if deceleration is None else deceleration
            self.belt_speed = max(goal, self.belt_speed - rate * dt)
        incline_rate = self.behaviour.incline_rate_pct_per_s
        if incline_rate is None:
            self.incline = self.target_incline
        elif self.incline < self.target_incline:
            self.incline = min(self.target_incline, self.incline + incline_rate * dt)
        else:
            self.incline = max(self.target_incline, self.incline - incline_rate * dt)

    def _report(self, now: float) -> None:
        record = TreadmillData(
            instantaneous_speed_kmh=round(self.belt_speed, 2),
            inclination_pct=round(self.incline, 1),
        )
        self._telemetry = Telemetry(record, now)
        self.speed_trace.append((now, self.belt_speed))
        self.publish(TelemetryReceived(record, self._telemetry, now))

    def status(self, status: MachineStatus) -> None:
        self.publish(MachineStatusReceived(status, self.clock.now()))

    # ------------------------------------------------------------------ commands

    def _record(
        self, kind: WriteKind, value: float | None = None, sent_at: float | None = None
    ) -> None:
        if self._state is not ConnectionState.CONNECTED:
            raise NotConnectedError("the test treadmill is disconnected")
        now = self.clock.now()
        self._advance(now)
        self.writes.append(Write(now, kind, value, sent_at, incline_before_pct=self.incline))
        self.belt_trace.append(BeltSample(now, self.belt_speed, self.incline, reported=False))

    async def _procedure(
        self, kind: WriteKind, value: float | None, act: Callable[[], None]
    ) -> None:
        """One Control Point procedure: at once, or after the deck's answer delay."""
        delay = self.behaviour.answer_delay_s
        if delay <= 0:
            self._record(kind, value)
            act()
            return
        if self._state is not ConnectionState.CONNECTED:
            raise NotConnectedError("the test treadmill is disconnected")
        sent_at = self.clock.now()

        async def late() -> None:
            async with self._control_lock:
                await self.clock.sleep(delay)
                self._record(kind, value, sent_at)
                act()

        await self._background.shielded(late())

    def _start(self) -> None:
        if not self.running:
            self._running_since = self.clock.now()
        self.running = True
        if self.target_speed <= 0:
            # No target (a deck that forgets it on Stop, or after Reset): its minimum speed.
            self.target_speed = self.speed_range.minimum_kmh

    def _halt(self) -> None:
        self.running = False
        self._running_since = None
        if not self.behaviour.resumes_at_last_target:
            self.target_speed = 0.0

    def _set_speed(self, value: float) -> None:
        self.target_speed = value

    def _set_incline(self, value: float) -> None:
        self.target_incline = value

    async def start_belt(self) -> None:
        await self._procedure("start", None, self._start)

    async def set_target_speed(self, speed_kmh: float) -> float:
        rng = self.speed_range
        value = round(min(max(speed_kmh, rng.minimum_kmh), rng.maximum_kmh), 2)
        if self.behaviour.refuses_speed_while_standing and not self.running:
            await self._procedure("refused", value, lambda: None)
            raise ControlRejectedError(
                "Set Target Speed refused: the belt is not running",
                request=SET_TARGET_SPEED_REQUEST,
                result=ResultCode.OPERATION_FAILED,
            )
        await self._procedure("speed", value, lambda: self._set_speed(value))
        return value

    async def set_target_inclination(self, inclination_pct: float) -> float:
        rng = self.inclination_range
        value = round(min(max(inclination_pct, rng.minimum_pct), rng.maximum_pct), 1)
        table = self.behaviour.incline_table
        if table is not None:
            value = max((entry for entry in table if entry <= value + 1e-9), default=table[0])
        await self._procedure("incline", value, lambda: self._set_incline(value))
        return value

    async def pause_belt(self) -> None:
        await self._procedure("pause", None, self._halt)

    async def stop_belt(self) -> None:
        await self._procedure("stop", None, self._halt)

    async def reset_targets(self) -> None:
        """FTMS Reset: targets to zero (the incline motor heads for 0 %)."""
        if self.behaviour.refuses_reset:
            await self._procedure("refused", None, lambda: None)
            raise ControlRejectedError(
                "Reset refused: not supported", request="Reset", result=ResultCode.NOT_SUPPORTED
            )
        await self._procedure("reset", None, self._reset)

    def _reset(self) -> None:
        self.target_speed = 0.0
        self.target_incline = 0.0


class SafetyKeyPulledMidRun(ObedientTreadmill):
    """At `pull_at` the safety key comes out: the belt stops dead and Status 0x03 is sent
    (unless the deck reports no console status: then only the data shows it)."""

    def __init__(self, clock: Clock, *, pull_at: float, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.pull_at = pull_at
        self.pulled = False

    def on_tick(self, now: float) -> None:
        if not self.pulled and now >= self.pull_at:
            self.pulled = True
            self._halt()
            self.belt_speed = 0.0
            if self.behaviour.reports_console_status:
                self.status(StoppedBySafetyKey())


class PausedAtConsoleMidRun(ObedientTreadmill):
    """At `press_at` someone presses pause (or stop) on the console: Status 0x02 (unless the
    deck reports no console status: then only the data shows the belt slowing to 0)."""

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
            self._halt()
            if self.behaviour.reports_console_status:
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
            self.drop_link("peer disconnected")
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
