"""The governor's heart-rate limits, pure: the soft ceiling eases the work (incline first, then
speed, as caps that only ever come down), the hard ceiling and a heart rate missing too long in
a workout that requires one are verdicts the session answers with the turn-safe pause.

`HeartRateGuard` is a part of `SafetyGovernor`: it decides from filtered readings only
(`engine/heart_rate.py`), and the governor applies its caps to every write (so the caps, like
every limit, hold within the other limits and ramp rates: a cap only lowers a target, the
governor's ramp brings the belt down to it). docs/safety.md ("Heart rate") gives the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from treadmilld.engine.heart_rate import HeartRateReading
from treadmilld.engine.limits import EffectiveLimits

# [D] One easing step at a time, and the next only after the heart has had time to answer the
# last: heart rate settles to a new load over tens of seconds, so 15 s between steps lets a
# step show before another is taken, and three steps fit in under a minute.
EASE_INTERVAL_S = 15.0
# [D] One step: 1 % of incline (the smallest change the built-in profiles make), or 0.3 km/h
# (under a second of the general ramp rate, about 10 % of a typical backward speed).
EASE_INCLINE_STEP_PCT = 1.0
EASE_SPEED_STEP_KMH = 0.3
# [D] The caps are lifted once the heart rate has stayed this far under the soft ceiling for
# `RELEASE_AFTER_S`; the plan then comes back at the ramp rate.
RELEASE_BELOW_BPM = 5.0
RELEASE_AFTER_S = 60.0
_EPS = 1e-6


class HeartRateVerdict(StrEnum):
    """Why the governor wants the workout paused (the event and MQTT event type)."""

    CEILING = "heart_rate_ceiling"
    MISSING = "heart_rate_missing"


@dataclass(frozen=True, slots=True)
class HeartRateCheck:
    verdict: HeartRateVerdict | None = None
    eased: bool = False  # the caps changed: the setpoints must be looked at again now
    released: bool = False


class HeartRateGuard:
    def __init__(self) -> None:
        self.speed_cap_kmh: float | None = None
        self.incline_cap_pct: float | None = None
        self._last_valid_at: float | None = None
        self._last_ease_at: float | None = None
        self._calm_since: float | None = None
        self._counting_from = 0.0

    def new_workout(self, now: float) -> None:
        self.speed_cap_kmh = None
        self.incline_cap_pct = None
        self._last_ease_at = None
        self._calm_since = None
        self._counting_from = now

    def walking_again(self, now: float) -> None:
        """The belt was started (or restarted after a pause): a missing heart rate is counted
        from here, so a rider who resumes has `heart_rate_missing_s` to get a reading in."""
        self._counting_from = now

    def check(
        self,
        limits: EffectiveLimits | None,
        reading: HeartRateReading | None,
        now: float,
        *,
        walking: bool,
        speed_kmh: float | None,
        incline_pct: float | None,
    ) -> HeartRateCheck:
        """Judge the current filtered heart rate (None: no valid one) while `walking` (the
        workout drives the moving belt) at `speed_kmh` / `incline_pct` (the targets)."""
        if reading is not None:
            self._last_valid_at = max(self._last_valid_at or reading.at, reading.at)
        if limits is None or not walking:
            return HeartRateCheck()
        if limits.heart_rate_required:
            since = max(self._last_valid_at or -float("inf"), self._counting_from)
            if now - since >= limits.heart_rate_missing_s - _EPS:
                return HeartRateCheck(verdict=HeartRateVerdict.MISSING)
        if reading is None:
            return HeartRateCheck()
        ceiling = limits.heart_rate_ceiling_bpm
        if ceiling is not None and reading.bpm > ceiling + _EPS:
            return HeartRateCheck(verdict=HeartRateVerdict.CEILING)
        return self._soft(limits, reading.bpm, now, speed_kmh, incline_pct)

    def _soft(
        self,
        limits: EffectiveLimits,
        bpm: int,
        now: float,
        speed_kmh: float | None,
        incline_pct: float | None,
    ) -> HeartRateCheck:
        soft = limits.heart_rate_soft_bpm
        if soft is None:
            return HeartRateCheck()
        if bpm > soft + _EPS:
            self._calm_since = None
            return HeartRateCheck(eased=self._ease(limits, now, speed_kmh, incline_pct))
        if bpm > soft - RELEASE_BELOW_BPM or not self.capped:
            self._calm_since = None
            return HeartRateCheck()
        if self._calm_since is None:
            self._calm_since = now
        if now - self._calm_since < RELEASE_AFTER_S - _EPS:
            return HeartRateCheck()
        self.speed_cap_kmh = self.incline_cap_pct = None
        self._calm_since = None
        return HeartRateCheck(released=True)

    @property
    def capped(self) -> bool:
        return self.speed_cap_kmh is not None or self.incline_cap_pct is not None

    def _ease(
        self,
        limits: EffectiveLimits,
        now: float,
        speed_kmh: float | None,
        incline_pct: float | None,
    ) -> bool:
        if self._last_ease_at is not None and now - self._last_ease_at < EASE_INTERVAL_S - _EPS:
            return False
        floor_incline = max(limits.min_incline_pct, 0.0)
        incline = incline_pct if incline_pct is not None else floor_incline
        if self.incline_cap_pct is not None:
            incline = min(incline, self.incline_cap_pct)
        if limits.incline_controllable and incline > floor_incline + _EPS:
            self.incline_cap_pct = max(incline - EASE_INCLINE_STEP_PCT, floor_incline)
            self._last_ease_at = now
            return True
        if speed_kmh is None:
            return False
        speed = speed_kmh if self.speed_cap_kmh is None else min(speed_kmh, self.speed_cap_kmh)
        floor_speed = limits.restart_speed_kmh
        if speed <= floor_speed + _EPS:
            return False  # nothing left to ease: the hard ceiling decides from here
        self.speed_cap_kmh = max(speed - EASE_SPEED_STEP_KMH, floor_speed)
        if self.incline_cap_pct is None and limits.incline_controllable:
            self.incline_cap_pct = floor_incline
        self._last_ease_at = now
        return True

    def cap_speed(self, speed_kmh: float) -> float:
        return speed_kmh if self.speed_cap_kmh is None else min(speed_kmh, self.speed_cap_kmh)

    def cap_incline(self, incline_pct: float) -> float:
        cap = self.incline_cap_pct
        return incline_pct if cap is None else min(incline_pct, cap)
