"""Test doubles implementing OUR engine seam (`TreadmillController`, `ProfileCatalog`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence

from tests.support.snapshots import idle_snapshot
from treadmilld.engine.api import (
    AbortReason,
    CommandRejectedError,
    DeviceInfo,
    Direction,
    Phase,
    ProfileSummary,
    Range,
    SessionEvent,
    SessionSnapshot,
    StateChanged,
    StopOutcome,
    WorkoutAborted,
    WorkoutStarted,
)
from treadmilld.engine.limits import ProfileLimits

SPEED_RANGE = Range(minimum=0.5, maximum=16.0, increment=0.1)
INCLINE_RANGE = Range(minimum=0.0, maximum=12.0, increment=0.5)
DECK = DeviceInfo(
    address="C8:47:8C:10:20:01",
    name="FS-BT-T4",
    manufacturer="FitShow",
    model="T4",
    serial_number="SN-0042",
    hardware_revision="HW 1.2",
    firmware_revision="FW 3.4.5",
)


class RecordingTreadmill:
    """Accepts every command, records it in `calls` and updates its snapshot like an engine
    would. `hold_commands` makes every non-emergency command wait until released, so a
    test can queue commands behind a slow one. `stop_outcome` is what an emergency stop
    reports (the deck accepted Stop, by default). `deck_read=False` is a treadmill whose
    link has not connected yet: no device information, no ranges (`read_deck()` then)."""

    def __init__(
        self,
        treadmill_id: str,
        *,
        connection: str = "connected",
        stop_outcome: StopOutcome = StopOutcome.STOP_SENT,
        deck_read: bool = True,
    ) -> None:
        self._id = treadmill_id
        self.stop_outcome = stop_outcome
        self._snapshot = idle_snapshot(treadmill_id, connection=connection)
        self._device: DeviceInfo | None = None
        if deck_read:
            self._device = DECK
            self._snapshot = dataclasses.replace(
                self._snapshot, speed_range=SPEED_RANGE, incline_range=INCLINE_RANGE
            )
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.rider_limits: ProfileLimits | None = None  # the last start's
        self.started: list[str] = []  # non-emergency commands that began executing
        self._subscribers: list[asyncio.Queue[SessionEvent]] = []
        self.hold_commands = False
        self._release = asyncio.Event()
        self.command_began = asyncio.Event()
        self.call_recorded = asyncio.Event()

    @property
    def treadmill_id(self) -> str:
        return self._id

    def snapshot(self) -> SessionSnapshot:
        return self._snapshot

    def device_info(self) -> DeviceInfo | None:
        return self._device

    async def events(self) -> AsyncIterator[SessionEvent]:
        queue: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    # -- test controls --------------------------------------------------------------------

    def emit(self, event: SessionEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    def change(self, **fields: object) -> None:
        """Change the snapshot and announce it, as the engine does on telemetry."""
        self._snapshot = dataclasses.replace(self._snapshot, **fields)  # type: ignore[arg-type]
        self.emit(StateChanged(treadmill_id=self._id, at=0.0, snapshot=self._snapshot))

    def read_deck(
        self,
        device: DeviceInfo = DECK,
        speed_range: Range = SPEED_RANGE,
        incline_range: Range = INCLINE_RANGE,
    ) -> None:
        """The link connected and read the deck's Device Information and ranges."""
        self._device = device
        self.change(speed_range=speed_range, incline_range=incline_range)

    def backlog(self) -> int:
        """Events emitted but not yet taken by a subscriber."""
        return sum(queue.qsize() for queue in self._subscribers)

    def release(self) -> None:
        self.hold_commands = False
        self._release.set()

    async def _record(self, name: str, *args: object) -> None:
        self.started.append(name)
        self.command_began.set()
        if self.hold_commands:
            await self._release.wait()
        self.calls.append((name, args))
        self.call_recorded.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # -- TreadmillController ------------------------------------------------------------

    async def start_profile(
        self,
        profile: str,
        *,
        body_weight_kg: float | None = None,
        clinical: bool = False,
        rider_limits: ProfileLimits | None = None,
    ) -> None:
        # A double: limits are the real session's business; kept to show what was passed.
        self.rider_limits = rider_limits
        await self._record("start_profile", profile, body_weight_kg, clinical)
        self.change(phase=Phase.RUNNING, profile=profile, direction=Direction.BACKWARD)
        self.emit(
            WorkoutStarted(
                treadmill_id=self._id,
                at=0.0,
                profile=profile,
                clinical=clinical,
                body_weight_kg=body_weight_kg or 75.0,
            )
        )

    async def pause(self) -> None:
        await self._record("pause")
        self.change(phase=Phase.PAUSED)

    async def resume(self) -> None:
        await self._record("resume")
        self.change(phase=Phase.RUNNING)

    async def stop(self) -> None:
        await self._record("stop")
        self.change(phase=Phase.STOPPED, outcome="stopped")

    async def emergency_stop(self) -> StopOutcome:
        # Never held: the emergency path must not wait for anything.
        self.calls.append(("emergency_stop", ()))
        self.call_recorded.set()
        self.change(phase=Phase.ABORTED, abort_reason=AbortReason.EMERGENCY_STOP)
        self.emit(
            WorkoutAborted(
                treadmill_id=self._id,
                at=0.0,
                reason=AbortReason.EMERGENCY_STOP,
                detail="emergency stop over MQTT",
            )
        )
        return self.stop_outcome

    async def skip_segment(self) -> None:
        await self._record("skip_segment")

    async def confirm_turn(self) -> None:
        await self._record("confirm_turn")

    async def set_speed(self, speed_kmh: float) -> float:
        await self._record("set_speed", speed_kmh)
        applied = min(speed_kmh, 6.0)  # like the governor: capped for backward walking
        self.change(target_speed_kmh=applied)
        return applied

    async def set_incline(self, incline_pct: float) -> float:
        await self._record("set_incline", incline_pct)
        self.change(target_incline_pct=incline_pct)
        return incline_pct

    async def set_body_weight(self, body_weight_kg: float) -> None:
        await self._record("set_body_weight", body_weight_kg)
        self.change(body_weight_kg=body_weight_kg)


class RejectsEverything(RecordingTreadmill):
    """Refuses every command (e.g. no control permission); emergency stop still works."""

    async def _record(self, name: str, *args: object) -> None:
        raise CommandRejectedError("control_not_permitted", f"{name} refused: no FTMS control")


class StaticCatalog:
    def __init__(self, names: Sequence[str] = ("hill_30", "retro_intro")) -> None:
        self._summaries = [
            ProfileSummary(
                name=name,
                title=name.replace("_", " ").title(),
                description=f"{name} description",
                suits="everyone",
                sessions_per_week=3,
                clinical=False,
                sources=("test",),
                total_s=1800.0,
                backward_s=600.0,
            )
            for name in names
        ]

    def summaries(self) -> Sequence[ProfileSummary]:
        return self._summaries

    def retitle(self, titles: dict[str, str]) -> None:
        """Give profiles new titles, as a reloaded library would."""
        self._summaries = [
            dataclasses.replace(summary, title=titles.get(summary.name, summary.title))
            for summary in self._summaries
        ]
