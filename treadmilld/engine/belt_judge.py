"""The safety governor's judgement of the measured belt against what it was told: a belt that
stands while told to move (a console stop or the safety key on a deck that did not say so),
moves when nothing told it to, runs above its target, or does not follow a target in the time
the slowest deck needs.

`BeltJudge` is a part of `SafetyGovernor`, not a decision maker of its own: the governor tells
it each command (started, halted, a new target) and asks it for a verdict
(`SafetyGovernor.check_measured`); it reads the governor's limits for the treadmill's increment.
The session turns a verdict into an abort and a verified stop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from treadmilld.engine.api import AbortReason, BeltState
from treadmilld.engine.belt import (
    SLOWEST_DECELERATION_KMH_PER_S,
    SPEED_TOLERANCE_KMH,
    STANDSTILL_KMH,
    BeltObserver,
    acceleration_allowance_s,
    deceleration_allowance_s,
)
from treadmilld.engine.governor_outcomes import BeltFaultError
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.runtime.clock import Clock

_EPS = 1e-6
# Records above the allowed speed needed before overspeed is called (one record can be a
# glitch or a record from just before a write landed).
OVERSPEED_RECORDS = 2


class BeltJudge:
    def __init__(
        self,
        observer: BeltObserver,
        clock: Clock,
        limits: Callable[[], EffectiveLimits | None],
    ) -> None:
        self._observer = observer
        self._clock = clock
        self._limits = limits  # the governor's, as they are at each call
        # Until then a belt still moving after a Stop/Pause is coasting, not misbehaving.
        self._coast_until = -math.inf
        # A person started the belt at the console while no workout drove it: theirs to walk.
        self._console_started = False
        self._moved_since_start = False
        # Highest speed the belt may show now: the target, or an earlier higher target decaying
        # at the slowest deck's deceleration.
        self._ceiling_kmh = 0.0
        self._ceiling_at = -math.inf
        self._overspeed_records = 0
        # The record the overspeed count last took in: the watchdog looks again between
        # records, and one record must count once.
        self._overspeed_record_at: float | None = None
        # The belt has been measured standing since it was last told to stop or pause, and
        # nothing has told it to move since: a stop asked for now starts from the measured
        # belt, not from a target it no longer heads for.
        self.stood_since_stop = False
        # A target the belt must reach (within tolerance) by a deadline, or None.
        self._follow_kmh: float | None = None
        self._follow_by = math.inf

    # ----------------------------------------------------------------------------- commands

    def started(self, restart_kmh: float) -> None:
        """Start was answered: the belt is judged against the restart speed from now on."""
        self.stood_since_stop = False
        self._moved_since_start = False
        self._console_started = False
        self._ceiling_kmh = restart_kmh
        self._ceiling_at = self._clock.now()
        self._overspeed_records = 0
        self._stop_following()

    def halted(self, *, told_to_move: bool, from_kmh: float) -> None:
        """A Stop or Pause is on its way (or the treadmill stopped the belt itself): a belt
        still moving is coasting down from `from_kmh` for the slowest deck's deceleration
        allowance, and judged as told to stand after that."""
        if told_to_move:
            self.stood_since_stop = False
        now = self._clock.now()
        self._coast_until = max(self._coast_until, now + deceleration_allowance_s(from_kmh))
        self._console_started = False
        self._stop_following()

    def console_started(self) -> None:
        """Someone pressed Start at the console while no workout drove the belt: its motion is
        theirs, not unexpected."""
        self._console_started = True

    def coast_left_s(self) -> float:
        """How much longer a belt told to stand may still be coasting."""
        return max(self._coast_until - self._clock.now(), 0.0)

    def raise_ceiling(self, kmh: float, *, target_kmh: float | None) -> None:
        """A new target `kmh` replaces `target_kmh`: the belt may show the higher of it and
        what it could show until now."""
        now = self._clock.now()
        self._ceiling_kmh = max(kmh, self._ceiling_now(now, target_kmh))
        self._ceiling_at = now

    def expect_reach(
        self,
        target: float,
        *,
        from_kmh: float,
        extra_s: float = 0.0,
    ) -> None:
        """Start a deadline for the belt to reach `target` unless one is running already (a
        ramp keeps the earliest deadline, so a deck that ignores targets cannot hide behind a
        stream of new ones). A lower target lowers what the running deadline expects."""
        if self._follow_kmh is not None:
            self._follow_kmh = min(self._follow_kmh, target)
            return
        limits = self._limits()
        increment = limits.speed_increment_kmh if limits is not None else 0.0
        if from_kmh >= target - SPEED_TOLERANCE_KMH - increment:
            return
        self._follow_kmh = target
        self._follow_by = self._clock.now() + extra_s + acceleration_allowance_s(from_kmh, target)

    def _stop_following(self) -> None:
        self._follow_kmh = None
        self._follow_by = math.inf

    def _ceiling_now(self, now: float, target_kmh: float | None) -> float:
        """The highest speed the belt may show now: the current target, or a higher earlier
        one decaying at the slowest deck's deceleration."""
        decayed = self._ceiling_kmh - SLOWEST_DECELERATION_KMH_PER_S * max(
            now - self._ceiling_at, 0.0
        )
        return max(target_kmh or 0.0, decayed)

    # ----------------------------------------------------------------------------- verdicts

    def check(
        self,
        *,
        told_to_move: bool,
        start_in_flight: bool,
        target_kmh: float | None,
    ) -> BeltFaultError | None:
        """Judge the measured belt against what it was told; a verdict, or None."""
        observer = self._observer
        state = observer.state()
        if state is BeltState.UNKNOWN:
            return None  # the no-data watchdog decides about silence
        now = self._clock.now()
        speed = observer.speed_kmh or 0.0
        limits = self._limits()
        increment = limits.speed_increment_kmh if limits is not None else 0.1
        if not told_to_move:
            if state is BeltState.STANDING and not start_in_flight:
                self.stood_since_stop = True
            return self._check_told_to_stand(state, speed, now)
        if state is BeltState.MOVING:
            self._moved_since_start = True
        elif self._moved_since_start:
            return BeltFaultError(
                AbortReason.BELT_STOPPED,
                "the belt stopped while it was told to move: a console stop or the safety key "
                "on a deck that did not report it",
            )
        # Overspeed: above the target (or a higher earlier one, decaying as the slowest deck
        # slows down) by more than the tolerance, on consecutive records. A record is judged
        # against the ceiling of its own moment, once: between records the ceiling decays
        # while the last record stays what it was (a deck gone quiet while slowing down).
        record_at = observer.last_record_at
        allowed = self._ceiling_now(record_at if record_at is not None else now, target_kmh)
        allowed += SPEED_TOLERANCE_KMH + increment
        if speed > allowed + _EPS:
            if record_at != self._overspeed_record_at:
                self._overspeed_record_at = record_at
                self._overspeed_records += 1
            if self._overspeed_records >= OVERSPEED_RECORDS:
                return BeltFaultError(
                    AbortReason.OVERSPEED,
                    f"the belt runs at {speed:.2f} km/h, above the {allowed:.2f} km/h it may "
                    "show for its target",
                )
        else:
            self._overspeed_records = 0
        return self._check_following(speed, now, increment, target_kmh)

    def _check_told_to_stand(
        self, state: BeltState, speed: float, now: float
    ) -> BeltFaultError | None:
        if state is not BeltState.MOVING or speed <= STANDSTILL_KMH:
            return None
        if self._console_started or now <= self._coast_until:
            return None
        return BeltFaultError(
            AbortReason.UNEXPECTED_MOTION,
            f"the belt moves at {speed:.2f} km/h and nothing told it to (a deck that starts by "
            "itself, resumes on its own or does not stop)",
        )

    def _check_following(
        self,
        speed: float,
        now: float,
        increment: float,
        target_kmh: float | None,
    ) -> BeltFaultError | None:
        """Whether the belt reaches its target within what the slowest deck needs."""
        follow = self._follow_kmh
        if follow is not None:
            if speed >= follow - SPEED_TOLERANCE_KMH - increment - _EPS:
                self._stop_following()
                if target_kmh is not None and target_kmh > follow + _EPS:
                    self.expect_reach(target_kmh, from_kmh=speed)
            elif now > self._follow_by:
                if self._moved_since_start and speed <= STANDSTILL_KMH:
                    # Not a deck ignoring its target: a belt that ran and now stands (its
                    # standstill not yet confirmed by a second record) was stopped at the console
                    # or by the key, unreported. Say that, as the standstill check would a
                    # record later.
                    return BeltFaultError(
                        AbortReason.BELT_STOPPED,
                        f"the belt stopped while it was told to move ({follow:g} km/h): a "
                        "console stop or the safety key on a deck that did not report it",
                    )
                return BeltFaultError(
                    AbortReason.TARGET_NOT_FOLLOWED,
                    f"the deck was told {follow:g} km/h and the belt is at {speed:.2f} km/h; it "
                    "does not follow speed commands",
                )
        return None
