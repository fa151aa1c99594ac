"""Starting the belt, for the safety governor: Start is written only while the belt is measured
standing, with the incline brought down (measured) to the restart maximum first and the restart
speed written first, so a deck that resumes at its last target restarts slowly; a deck that
takes no target while its belt stands gets Start first (after a Reset if it may hold a higher
target) and the restart speed at once.

`BeltStarter` is a part of `SafetyGovernor`: the governor checks the lock-out, the turn and the
backward budget with the limits it holds, then hands those limits to it for the writes.
"""

from __future__ import annotations

import asyncio

import structlog

from treadmilld.ble.api import ControlRejectedError, TreadmillLink
from treadmilld.engine.api import AbortReason, BeltState, Direction
from treadmilld.engine.belt import (
    INCLINE_TOLERANCE_PCT,
    START_DELAY_S,
    BeltObserver,
    deceleration_allowance_s,
    incline_allowance_s,
)
from treadmilld.engine.control_state import ControlState
from treadmilld.engine.governor_outcomes import BeltFaultError
from treadmilld.engine.limit_clamps import incline_cap, lowest_moving_kmh
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

_EPS = 1e-6


class BeltStarter:
    def __init__(
        self,
        link: TreadmillLink,
        clock: Clock,
        observer: BeltObserver,
        lock: asyncio.Lock,
        state: ControlState,
    ) -> None:
        self._link = link
        # Every line about this treadmill carries its id (docs/configuration.md).
        self._log = _log.bind(treadmill_id=link.treadmill_id)
        self._clock = clock
        self._observer = observer
        # The governor's lock: the writes made here queue with its others.
        self._lock = lock
        self._belt = state.belt
        self._turns = state.turns
        self._judge = state.judge
        self._speed = state.speed
        self._incline = state.incline
        self._answers = state.answers

    def goes_first(self) -> bool:
        """The deck takes no speed while its belt stands (its quirks say so, or it refused
        one): Start has to go ahead of the restart speed."""
        caps = self._link.capabilities
        needs_running_belt = caps is not None and caps.speed_needs_running_belt
        return needs_running_belt or self._speed.refused_while_standing

    async def prepare(self, facing: Direction, limits: EffectiveLimits) -> None:
        """Wait (bounded by what the slowest deck needs) for the belt to be measured standing
        and for the measured incline to come down to the restart maximum; raises
        `BeltFaultError` if the deck does not get there."""
        await self._wait_standing()
        await self.lower_incline(facing, limits)

    async def get_ready(self, facing: Direction, limits: EffectiveLimits) -> None:
        """Get the standing belt ready for a Start to come (`lower_incline_for_start`)."""
        if self.goes_first():
            async with self._lock:
                if not self._belt.moving and self._observer.state() is BeltState.STANDING:
                    await self._reset_held_target(limits.restart_speed_kmh)
        await self.lower_incline(facing, limits)

    async def start(self, facing: Direction, limits: EffectiveLimits) -> float:
        """Write the restart speed and Start (in the order the deck needs), under the
        governor's lock and after its checks; returns the restart speed written, which the belt
        must reach in the time the slowest deck needs from the Start."""
        restart = limits.restart_speed_kmh
        # The restart speed goes first: decks that resume at their last target would
        # otherwise jump back to it before a later write lands (user reports; docs/safety.md).
        primed = False
        if not self.goes_first():
            try:
                written = await self._speed.write(self._link, restart)
                primed = True
            except ControlRejectedError as error:
                # Decks that take no target while standing (3G Cardio, qdomyos-zwift#3382):
                # Start first, then the restart speed at once, and watch the measured speed.
                self._speed.refused_while_standing = True
                self._log.info("restart_speed_refused_while_standing", error=str(error))
        reset = not primed and await self._reset_held_target(restart)
        if (primed or reset) and self._observer.state() is not BeltState.STANDING:
            # The restart-speed write took long enough for the picture to change (data
            # went stale, or the belt moved): Start is written only on a fresh standstill.
            state = self._observer.state()
            raise BeltFaultError(
                AbortReason.NO_DATA
                if state is BeltState.UNKNOWN
                else AbortReason.UNEXPECTED_MOTION,
                f"the belt is {state.value} after the {'restart speed' if primed else 'Reset'} "
                "was written; not sending Start",
            )
        self._turns.start_sent(facing)
        self._belt.start_in_flight = True
        try:
            await self._link.start_belt()
        finally:
            self._belt.start_in_flight = False
        self._mark_started(facing, restart)
        if not primed:
            # Start went first: until the restart speed is answered (one answer time, seconds
            # on a slow deck) the belt runs at the deck's own start speed, its minimum, which
            # `effective_limits` keeps at or below the restart speed. The restart speed is
            # the target from the Start on, so the overspeed ceiling holds at it (or at the
            # lowest speed the deck moves at) instead of decaying from the Start as a
            # superseded target would (soak seed 501: a deck at its 0.8 km/h minimum, its
            # restart speed answered 2.56 s late, was called overspeed). A target left from
            # before the stop no longer counts either, so a deck that resumes at it is
            # caught against the restart speed while the write is still on its way.
            self._speed.kmh = max(restart, lowest_moving_kmh(limits))
            written = await self._speed.write(self._link, restart)
        self._speed.set(written, self._clock.now())
        self._judge.expect_reach(written, from_kmh=0.0, extra_s=START_DELAY_S)
        self._log.info("belt_started", facing=facing.value, restart_kmh=written, primed=primed)
        return written

    def _mark_started(self, facing: Direction, restart_kmh: float) -> None:
        """Start was answered: the belt is told to move, the person faces `facing`, and the
        measured belt is judged against the restart speed from now on."""
        self._belt.started(self._clock.now())
        self._turns.started(facing)
        self._judge.started(restart_kmh)

    async def _reset_held_target(self, restart_kmh: float) -> bool:
        """Before a Start that has to go ahead of the restart speed (the deck takes no speed
        while its belt stands): a deck that may still hold a target above the restart speed
        (after a stop from speed, or not known since connecting) gets Reset (FTMS §4.16.2.2),
        which sets its targets to zero, so it cannot resume there when Start lands. True if
        the deck was reset. A deck that refuses Reset is started as before: the first seconds
        after Start are judged against the restart speed and the workout aborts if the belt
        runs above it."""
        held = self._speed.held_kmh
        if held is not None and held <= restart_kmh + _EPS:
            return False
        asked_at = self._clock.now()
        try:
            await self._link.reset_targets()
        except ControlRejectedError as error:
            self._log.warning(
                "reset_refused",
                result=error.result,
                error=str(error),
                may_hold_kmh=held,
                hint="this treadmill takes no speed while its belt stands and may resume at "
                "an old target after Start; stand clear of the belt until it has reached the "
                "restart speed",
            )
            return False
        self._answers.took(self._clock.now() - asked_at)
        self._speed.held_kmh = 0.0
        self._incline.zeroed()  # its incline target went to zero as well
        self._log.info("targets_reset_before_start", may_have_held_kmh=held)
        return True

    async def _wait_standing(self) -> None:
        observer = self._observer
        if observer.state() is BeltState.STANDING:
            return
        speed = max(observer.speed_kmh or 0.0, self._speed.kmh or 0.0)
        wait_s = self._judge.coast_left_s() + deceleration_allowance_s(speed)
        if not await observer.wait_standing(wait_s):
            state = observer.state()
            raise BeltFaultError(
                AbortReason.UNEXPECTED_MOTION if state is BeltState.MOVING else AbortReason.NO_DATA,
                f"the belt was not measured standing within {wait_s:.0f} s "
                f"({state.value}, {observer.speed_kmh} km/h); not starting it",
            )

    async def lower_incline(self, facing: Direction, limits: EffectiveLimits) -> None:
        """Bring the *measured* incline down to the restart maximum before the belt moves (a
        deck may be left inclined by the previous user; its incline motor is slow)."""
        if not limits.incline_controllable:
            return
        cap = incline_cap(limits, facing, restarting=True)
        measured = self._observer.incline_pct
        # A write cut short may have left the deck heading for a higher target than it holds
        # (soak seed 800: the 6 % write an emergency stop cancelled; nothing lowered it again).
        target = self._incline.may_hold_pct
        goal: float | None = None
        if target is not None and target > cap + _EPS:
            goal = cap
        elif target is None and measured is None:
            # Neither the deck's target nor its incline is known (after a connect, on a deck
            # that reports no incline): set it flat, never higher than the cap.
            goal = min(max(0.0, limits.min_incline_pct), cap)
        elif target is None and measured is not None and measured > cap + INCLINE_TOLERANCE_PCT:
            goal = cap  # left inclined by the previous user
        if goal is not None:
            async with self._lock:
                await self._incline.write(
                    self._link,
                    limits.quantize_incline(
                        max(goal, limits.min_incline_pct), toward=limits.min_incline_pct
                    ),
                )
            # The allowance runs from the incline measured once the deck has answered: while
            # it was answering, the incline may have kept climbing towards its old target.
            measured = self._observer.incline_pct
        if measured is None or measured <= cap + INCLINE_TOLERANCE_PCT:
            return
        wait_s = incline_allowance_s(measured, cap)
        self._log.info("waiting_for_incline", measured_pct=measured, cap_pct=cap, within_s=wait_s)

        def lowered() -> bool:
            incline = self._observer.incline_pct
            return incline is not None and incline <= cap + INCLINE_TOLERANCE_PCT

        if not await self._observer.wait_until(lowered, wait_s):
            raise BeltFaultError(
                AbortReason.TARGET_NOT_FOLLOWED,
                f"the incline is still {self._observer.incline_pct} % after {wait_s:.0f} s; it "
                f"must be at most {cap:g} % before the belt starts",
            )
