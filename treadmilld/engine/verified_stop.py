"""The verified stop: the belt is told to stop until the deck's own data shows it standing.

One at a time per session, in the background: the stop ladder (Stop, then Pause, control asked
for again on refusal) retried every `STOP_RETRY_S`; `stop_confirmed` once the belt is measured
standing, `stop_unconfirmed` once if it is not by the slowest deck's stopping time. When the
link is down, Stop waits to be the first thing the deck hears after the reconnect
(`stop_on_reconnect`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from treadmilld.ble.api import LinkError, NotConnectedError
from treadmilld.engine.api import BeltState, SessionEvent, StopConfirmed, StopUnconfirmed
from treadmilld.engine.belt import BeltObserver, deceleration_allowance_s
from treadmilld.engine.governor import EMERGENCY_STOP_TIMEOUT_S, SafetyGovernor
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

# How often a stop the deck has not carried out is sent again.
STOP_RETRY_S = 2.0
# A stop allows at least the time the slowest deck takes from this speed, even when the last
# measured speed was lower (a record can be a second old).
MIN_STOP_ALLOWANCE_KMH = 1.0

# Runs one stop's work as one of the session's tasks (guarded: a crash aborts and stops).
StopSpawner = Callable[[Callable[[], Coroutine[Any, Any, None]]], asyncio.Task[None]]


class BeltStopper:
    def __init__(
        self,
        *,
        treadmill_id: str,
        governor: SafetyGovernor,
        observer: BeltObserver,
        clock: Clock,
        emit: Callable[[SessionEvent], None],
        spawn: StopSpawner,
    ) -> None:
        self._treadmill_id = treadmill_id
        self._log = _log.bind(treadmill_id=treadmill_id)
        self._governor = governor
        self._observer = observer
        self._clock = clock
        self._emit = emit
        self._spawn = spawn
        self._task: asyncio.Task[None] | None = None
        # Counts accepted workouts: a verified stop stops sending once a new one began.
        self._generation = 0
        # (asked at, alarm due) of the verified stop running last: an emergency stop that
        # replaces one not yet confirmed keeps its alarm time (see `hand_over`).
        self._stop_clock: tuple[float, float] | None = None
        # The link is down and the belt may run on by itself: Stop goes first when it is back.
        self.stop_on_reconnect = False

    @property
    def pending(self) -> bool:
        """A verified stop is running (the belt is not measured standing yet)."""
        return self._task is not None and not self._task.done()

    def new_workout(self) -> None:
        """A workout was accepted: a stop from before goes on watching the belt
        (`stop_confirmed` or its alarm) but sends nothing more; its retries would lock the new
        workout out, which moves the belt only once it is measured standing anyway."""
        self._generation += 1

    def request(
        self,
        *,
        restart: bool = False,
        stop_accepted: bool = False,
        asked_at: float | None = None,
        alarm_by: float | None = None,
    ) -> None:
        """Stop the belt until the deck's data shows it standing (in the background; one at a
        time). `restart` replaces a running one (after a reconnect its link is gone)."""
        running = self._task
        if running is not None and not running.done():
            if not restart:
                return
            running.cancel()
        self._task = self._spawn(
            lambda: self._stop_until_standing(
                stop_accepted=stop_accepted, asked_at=asked_at, alarm_by=alarm_by
            )
        )

    def cancel(self) -> None:
        """The session's loops end: nothing is left to verify the stop with."""
        if self._task is not None:
            self._task.cancel()

    def withdraw(self) -> asyncio.Task[None] | None:
        """Cancel the running stop and hand its task over, to be awaited once the belt has
        been told to stop some other way (shutdown)."""
        task = self._task
        self._task = None
        if task is not None:
            task.cancel()
        return task

    def hand_over(self) -> tuple[float, float] | None:
        """Cancel the running stop for one that takes over (an emergency stop); (asked at,
        alarm due) of the one cancelled if it was not confirmed yet, which the new one keeps."""
        running = self._task
        self._task = None
        if running is None:
            return None
        earlier = self._stop_clock if not running.done() else None
        running.cancel()
        return earlier

    async def _stop_until_standing(
        self,
        *,
        stop_accepted: bool = False,
        asked_at: float | None = None,
        alarm_by: float | None = None,
    ) -> None:
        """The stop ladder until the belt is measured standing: Stop, then Pause (control is
        asked for again on refusal), retried every `STOP_RETRY_S`. If the belt is not standing
        after the slowest deck's deceleration time (or by `alarm_by`, an earlier stop's alarm
        time, if sooner), `stop_unconfirmed` is raised once; if the link drops, Stop is sent
        first thing after the reconnect."""
        # The clock starts when the stop was asked for (an emergency stop's own Stop may have
        # waited for the deck's answer, or for a write in flight, before this runs).
        started = self._clock.now() if asked_at is None else asked_at
        speed = self._governor.stop_from_kmh
        deadline = started + deceleration_allowance_s(max(speed, MIN_STOP_ALLOWANCE_KMH))
        if alarm_by is not None:
            deadline = min(deadline, alarm_by)
        self._stop_clock = (started, deadline)
        # The alarm keeps its own time: a Stop retry the deck is slow to answer must not
        # hold it back.
        alarm = asyncio.ensure_future(self._alarm_if_still_moving(started, deadline))
        try:
            await self._stop_ladder(started, deadline, stop_accepted=stop_accepted)
            if self._observer.state() is not BeltState.STANDING:
                # The link went down mid-stop: the alarm still comes in time (a reconnect
                # starts a new stop, with its own alarm, and cancels this one).
                await alarm
        finally:
            alarm.cancel()

    async def _alarm_if_still_moving(self, started: float, deadline: float) -> None:
        await self._clock.sleep(deadline - self._clock.now())
        observer = self._observer
        if observer.state() is BeltState.STANDING:
            return
        now = self._clock.now()
        detail = (
            "the deck's data does not show the belt standing after the slowest deck's stopping time"
            if observer.fresh()
            else "no data from the deck, so the stop cannot be confirmed"
        )
        self._log.error(
            "stop_unconfirmed",
            after_s=round(now - started, 1),
            speed_kmh=observer.speed_kmh,
            detail=detail,
            hint="pull the safety key; treadmilld keeps sending Stop",
        )
        self._emit(
            StopUnconfirmed(
                treadmill_id=self._treadmill_id,
                at=now,
                after_s=now - started,
                speed_kmh=observer.speed_kmh,
                detail=detail,
            )
        )

    async def _stop_ladder(self, started: float, deadline: float, *, stop_accepted: bool) -> None:
        observer = self._observer
        generation = self._generation
        # A Stop the deck accepted just before (the emergency stop's own) is not sent again
        # until the deck has had its stopping time.
        accepted = stop_accepted
        next_attempt = started
        while True:
            if observer.state() is BeltState.STANDING:
                after = self._clock.now() - started
                self._log.info("stop_confirmed", after_s=round(after, 2))
                self._emit(
                    StopConfirmed(
                        treadmill_id=self._treadmill_id, at=self._clock.now(), after_s=after
                    )
                )
                return
            now = self._clock.now()
            sending = generation == self._generation
            if sending and now >= next_attempt and (not accepted or now >= deadline):
                try:
                    async with asyncio.timeout(EMERGENCY_STOP_TIMEOUT_S):
                        accepted = await self._governor.stop_attempt()
                except NotConnectedError:
                    self.stop_on_reconnect = True
                    self._log.warning(
                        "stop_waits_for_reconnect",
                        hint="Stop is sent first thing when the treadmill is back; pull the "
                        "safety key if someone is on the belt",
                    )
                    return
                except (LinkError, TimeoutError) as error:
                    accepted = False
                    self._log.warning("stop_attempt_failed", error=str(error))
                next_attempt = self._clock.now() + STOP_RETRY_S
            now = self._clock.now()
            wait = next_attempt - now
            if now < deadline:
                wait = min(wait, deadline - now) if not accepted else deadline - now
            await observer.wait_standing(max(wait, 0.05))
