"""`StrapSwitch`: which heart-rate strap a treadmill's workouts hear, and its link running.

A treadmill hears the strap its config names (`heart_rate_strap`), if any. A start may name
another for that one workout: the strap its rider wears (their rider record's
`heart_rate_strap`), or the start's own `heart_rate_strap` (a strap handed out at the desk).
The switch then closes the treadmill's strap link, connects the rider's, and when that workout
has ended goes back to the treadmill's own (docs/configuration.md, "A rider's strap").

Why the treadmill's strap is not a fallback while the rider's is not found: it would be
someone else's heart, or nobody's. The treadmill's own heart-rate field still is (the engine's
`HeartRateSources`), as for every workout.

The switch is told of a start only once the session accepted it (`assign`), so a start refused
(a workout already running) changes nothing. A workout's end is read from the session's events;
an end that arrives after the next workout began is that earlier workout's, and is ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

import structlog

from treadmilld.ble.config import TargetSelector
from treadmilld.ble.strap_api import HeartRateReceived, HeartRateStrap, StrapLost
from treadmilld.engine.api import (
    TERMINAL_PHASES,
    Phase,
    SessionEvent,
    SessionSnapshot,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStopped,
)
from treadmilld.history.riders import StrapChoice

_log = structlog.get_logger(__name__)

# A strap link for a target; `worn_by_rider` says whose strap it is (the treadmill's or a
# rider's), since a simulated treadmill's riders wear straps of the simulated world.
OpenStrapLink = Callable[[TargetSelector, bool], HeartRateStrap]


@runtime_checkable
class HeartRateSink(Protocol):
    """What takes a treadmill's heart rate: the engine's `WorkoutSession`."""

    def heart_rate_received(self, bpm: int | None, contact: bool | None, at: float) -> None: ...


@runtime_checkable
class WorkoutWatch(Protocol):
    """What the switch reads of the session to know when a rider's workout has ended."""

    def events(self) -> AsyncIterator[SessionEvent]: ...

    def snapshot(self) -> SessionSnapshot: ...


def strap_target(strap: StrapChoice) -> TargetSelector:
    if strap.address is not None:
        return TargetSelector(address=strap.address)
    return TargetSelector(name_contains=strap.name_match)


class StrapSwitch:
    """One treadmill's strap: the configured one, or for one workout the one a start named."""

    def __init__(
        self,
        treadmill_id: str,
        *,
        configured: TargetSelector | None,
        open_link: OpenStrapLink,
        session: object,
    ) -> None:
        """`session` takes the readings (a `HeartRateSink`) and, when it is a `WorkoutWatch`,
        says when a workout ends; without that only `assign(None)` ends a rider's strap."""
        self.treadmill_id = treadmill_id
        self._configured = configured
        self._open_link = open_link
        self._session = session
        self._for_workout: TargetSelector | None = None
        self._changed = asyncio.Event()
        self._log = _log.bind(treadmill_id=treadmill_id)

    @property
    def target(self) -> TargetSelector | None:
        """The strap the link connects to now (None: no strap)."""
        return self._for_workout or self._configured

    def assign(self, strap: StrapChoice | None) -> None:
        """The workout the session just accepted hears `strap` (None: the treadmill's own)."""
        target = None if strap is None else strap_target(strap)
        if target == self._for_workout:
            return
        self._for_workout = target
        if target is None:
            self._log.info("strap_returned", target=_describe(self._configured))
        else:
            self._log.info("strap_assigned", target=target.describe())
        self._changed.set()

    async def run(self) -> None:
        """Run the current strap's link, changing links as `assign` asks, until cancelled."""
        async with asyncio.TaskGroup() as group:
            if isinstance(self._session, WorkoutWatch):
                group.create_task(
                    self._follow_workouts(self._session), name=f"strap-{self.treadmill_id}-ends"
                )
            group.create_task(self._links(), name=f"strap-{self.treadmill_id}-links")

    async def _links(self) -> None:
        while True:
            self._changed.clear()
            target = self.target
            if target is None:
                await self._changed.wait()
                continue
            link = self._open_link(target, target is self._for_workout)
            await self._run_link(link)

    async def _run_link(self, link: HeartRateStrap) -> None:
        """`link` with its readings handed on, until the target changes (then it is closed and
        its last event, the loss, reaches the session before the next link's first reading)."""
        events = link.events()

        async def close_on_change() -> None:
            await self._changed.wait()
            await link.close()

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(link.run(), name=f"{link.strap_id}-run")
                forwarding = group.create_task(forward(link.strap_id, events, self._session))
                closer = group.create_task(close_on_change())
                await forwarding  # the events end once the link is closed
                closer.cancel()
        finally:
            await link.close()

    async def _follow_workouts(self, session: WorkoutWatch) -> None:
        async for event in session.events():
            if self._for_workout is None:
                continue
            if isinstance(event, WorkoutFinished | WorkoutStopped | WorkoutAborted) and (
                not _workout_running(session.snapshot())
            ):
                self.assign(None)


def _workout_running(snapshot: SessionSnapshot) -> bool:
    return snapshot.phase is not Phase.IDLE and snapshot.phase not in TERMINAL_PHASES


def _describe(target: TargetSelector | None) -> str:
    return "none" if target is None else target.describe()


async def forward(strap_id: str, events: AsyncIterator[object], sink: object) -> None:
    """Each reading to `sink.heart_rate_received(bpm, contact, at)`; a lost strap as
    `(None, None, at)`. A sink that raises is logged and kept: a strap never stops a belt."""
    receiver = sink if isinstance(sink, HeartRateSink) else None
    if receiver is None:
        _log.warning(
            "heart_rate_unused",
            strap_id=strap_id,
            hint="this treadmill's session takes no heart rate; readings are only logged "
            "(at debug)",
        )
    async for event in events:
        match event:
            case HeartRateReceived(bpm=bpm, contact=contact, at=at):
                reading: tuple[int | None, bool | None, float] = (bpm, contact, at)
            case StrapLost(at=at):
                reading = (None, None, at)
            case _:
                continue
        if receiver is None:
            _log.debug("heart_rate", strap_id=strap_id, bpm=reading[0], contact=reading[1])
            continue
        try:
            receiver.heart_rate_received(*reading)
        except Exception:  # noqa: BLE001 - a reading refused must not end the strap's service
            _log.exception("heart_rate_not_taken", strap_id=strap_id)
