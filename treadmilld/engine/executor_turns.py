"""The turn protocol: the belt is measured standing, the person is told to turn, the standing
time is counted from measured standstill, then 3-2-1 (or a therapist's confirm) before the belt
moves the other way. One layer of `WorkoutExecutor` (see `engine/executor_core.py`)."""

from __future__ import annotations

import math

from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    Direction,
    Phase,
    TurnConfirmationNeeded,
    TurnCountdown,
    TurnNow,
)
from treadmilld.engine.belt import deceleration_allowance_s
from treadmilld.engine.executor_core import EPS, ExecutorCore, StopWorkout
from treadmilld.engine.governor import BeltFaultError
from treadmilld.engine.planner import COUNTDOWN_S, PlanSegment


class TurnSteps(ExecutorCore):
    async def _turn(self, segment: PlanSegment) -> None:
        to_direction = segment.direction
        await self._ramp_down_and_pause()
        self._set_phase(Phase.TURNING)
        turn_incline = segment.steps[0].incline_pct
        if (self._governor.target_incline_pct or 0.0) > turn_incline + EPS:
            await self._governor.set_incline(turn_incline)
        limits = self._governor.limits
        hold_s = segment.steps[0].duration_s
        if limits is not None:
            hold_s = max(hold_s, limits.turn_pause_s)
        await self._stand_and_turn(to_direction, hold_s, confirm=segment.awaits_confirmation)

    async def _turn_before_start(self, to_direction: Direction) -> None:
        """The person last walked the other way (an earlier workout, or before an abort): the
        same turn protocol as inside a plan before the belt moves this way."""
        limits = self._governor.limits
        if limits is None:
            return
        resume_phase = self.phase
        started = self._clock.now()
        deadline = self._segment_deadline
        self._held_at = started
        self._set_phase(Phase.TURNING)
        self._log.info("turn_before_start", to_direction=to_direction.value)
        try:
            await self._stand_and_turn(
                to_direction, limits.turn_pause_s, confirm=limits.confirm_turns
            )
        finally:
            self._held_at = None
        if deadline is not None:
            # The plan has not moved on: the segment still has all it had when the turn began
            # (pauses inside the turn included, counted once).
            self._segment_deadline = deadline + self._clock.now() - started
        self._set_phase(resume_phase)

    async def _stand_and_turn(
        self, to_direction: Direction, hold_s: float, *, confirm: bool
    ) -> None:
        """Wait for the belt to be *measured* standing, tell the person to turn, keep it
        standing for `hold_s` counted from measured standstill, then count down 3-2-1. A pause
        anywhere in here runs the whole countdown again after the resume."""
        await self._wait_for_standstill()
        self._governor.turn_announced(to_direction)
        self._event(TurnNow, to_direction=to_direction)
        if confirm:
            await self._hold_standing(hold_s)
            self._confirmed = False
            self._set_phase(Phase.AWAITING_CONFIRMATION)
            self._event(TurnConfirmationNeeded, to_direction=to_direction)
            while True:
                await self._checkpoint(skippable=False)
                if self._confirmed:
                    break
                await self._sleep_until(math.inf)
            self._set_phase(Phase.TURNING)
            self._segment_deadline = self._clock.now() + COUNTDOWN_S
        else:
            await self._hold_standing(hold_s - COUNTDOWN_S)
        # The incline comes down to the restart maximum (measured) before the countdown: the
        # belt must move right after "1", not when a slow incline motor gets there.
        await self._governor.lower_incline_for_start(to_direction)
        while True:
            interrupted = False
            for seconds_left in range(COUNTDOWN_S, 0, -1):
                self.turn_countdown_s = seconds_left
                self._event(TurnCountdown, seconds_left=seconds_left, to_direction=to_direction)
                self._on_change()
                if await self._hold(1.0, skippable=False) > 0:
                    interrupted = True
                    break
            if not interrupted and self._governor.standing_for_s() + EPS >= hold_s:
                break
            # Paused and resumed mid-countdown (or the belt did not stand long enough): the
            # person hears the whole countdown again before the belt moves.
            self.turn_countdown_s = None
            await self._hold_standing(hold_s - COUNTDOWN_S)
        self.turn_countdown_s = None
        self._governor.turn_counted_down(to_direction)

    async def _wait_for_standstill(self) -> None:
        """Until the deck's data shows the belt standing; bounded by what the slowest deck
        needs to stop from the last measured speed."""
        governor = self._governor
        observer = governor.observer
        speed = max(observer.speed_kmh or 0.0, governor.target_speed_kmh or 0.0, 1.0)
        deadline = self._clock.now() + deceleration_allowance_s(speed)
        # Standing only counts once the deck has answered the Stop or Pause it was sent.
        while observer.state() is not BeltState.STANDING or governor.halt_pending:
            if self._stop_requested:
                raise StopWorkout
            left = deadline - self._clock.now()
            if left <= 0:
                state = observer.state()
                # A deck that went silent is not a belt that kept moving: say which it was.
                reason = (
                    AbortReason.UNEXPECTED_MOTION
                    if state is BeltState.MOVING
                    else AbortReason.NO_DATA
                )
                raise BeltFaultError(
                    reason,
                    f"the belt was told to stop and is not measured standing after "
                    f"{deceleration_allowance_s(speed):.0f} s ({state.value}, "
                    f"{observer.speed_kmh} km/h)",
                )
            if observer.state() is BeltState.STANDING:
                # Standing, but the Stop or Pause is still unanswered: look again shortly.
                await self._clock.sleep(min(left, 0.25))
            else:
                await observer.wait_standing(min(left, 1.0))

    async def _hold_standing(self, seconds: float) -> None:
        """Until the belt has been measured standing for `seconds` (pauses allowed)."""
        while True:
            await self._checkpoint(skippable=False)
            left = seconds - self._governor.standing_for_s()
            if left <= EPS:
                return
            # Re-check at least once a second: standing time restarts if the belt moves.
            await self._sleep_until(self._clock.now() + min(left, 1.0))
