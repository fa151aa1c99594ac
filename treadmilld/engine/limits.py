"""Safety limits: the effective set one workout runs under, from the configured sets.

The configured sets (hard caps, `LimitSet`, `SafetyLimits`, `ProfileLimits`) are in
`treadmilld.engine.limit_sets` and importable from here. `effective_limits` combines global
config, clinical mode, the profile's own limits, the rider's and the treadmill's supported
ranges; the strictest value of each wins. Only the safety governor
(`treadmilld.engine.governor`) enforces them; the planner reads them to lay out a timeline that
will pass the governor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from treadmilld.engine.api import Direction, Range
from treadmilld.engine.limit_sets import (
    HARD_CAP_BACKWARD_INCLINE_PCT,
    HARD_CAP_BACKWARD_JOG_KMH,
    MAX_HR_MAX_BPM,
    MIN_HR_MAX_BPM,
    LimitSet,
    ProfileLimits,
    SafetyLimits,
)

# The configured names are re-exported: the rest of treadmilld imports them from here.
__all__ = [
    "HARD_CAP_BACKWARD_INCLINE_PCT",
    "HARD_CAP_BACKWARD_JOG_KMH",
    "MAX_HR_MAX_BPM",
    "MIN_HR_MAX_BPM",
    "EffectiveLimits",
    "LimitConflictError",
    "LimitSet",
    "ProfileLimits",
    "SafetyLimits",
    "TreadmillRanges",
    "effective_limits",
]


@dataclass(frozen=True, slots=True)
class TreadmillRanges:
    """What the treadmill itself supports (Supported Speed/Inclination Range, FTMS 4.11/4.12);
    `None` when the treadmill does not expose the characteristic."""

    speed: Range | None
    incline: Range | None


class LimitConflictError(ValueError):
    """The limits cannot all be met (e.g. the treadmill cannot go as slow as the restart cap)."""


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """The strictest of every source, for one workout on one treadmill."""

    clinical: bool
    max_forward_speed_kmh: float
    max_backward_speed_kmh: float  # walking, or jogging when unlocked
    max_forward_incline_pct: float
    max_backward_incline_pct: float
    max_turn_incline_pct: float
    ramp_rate_kmh_per_s: float
    turn_pause_s: float
    confirm_turns: bool
    restart_speed_kmh: float
    max_backward_s: float
    min_backward_segment_s: float
    steady_before_incline_s: float
    telemetry_timeout_s: float
    min_speed_kmh: float
    speed_increment_kmh: float
    min_incline_pct: float
    incline_increment_pct: float
    incline_controllable: bool
    # Heart rate: the person's HRmax when known (a rider's), the hard ceiling (pause above it)
    # and the soft one (ease the work above it), None when no source sets one; whether a
    # workout pauses without a valid heart rate for `heart_rate_missing_s`.
    hr_max_bpm: float | None = None
    heart_rate_ceiling_bpm: float | None = None
    heart_rate_soft_bpm: float | None = None
    heart_rate_required: bool = False
    heart_rate_missing_s: float = 15.0
    # Which source set each tightened value, e.g. {"max_backward_speed_kmh": "treadmill"}.
    decided_by: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def max_speed_kmh(self, facing: Direction | None) -> float:
        if facing is Direction.BACKWARD:
            return self.max_backward_speed_kmh
        return self.max_forward_speed_kmh

    def max_incline_pct(self, facing: Direction | None) -> float:
        if facing is Direction.BACKWARD:
            return self.max_backward_incline_pct
        return self.max_forward_incline_pct

    @staticmethod
    def max_speed_limit(facing: Direction | None) -> str:
        """The name of the limit `max_speed_kmh(facing)` applies, as adjustments and LimitApplied
        events report it."""
        return "max_backward_speed_kmh" if facing is Direction.BACKWARD else "max_forward_speed_kmh"

    @staticmethod
    def max_incline_limit(facing: Direction | None) -> str:
        """The name of the limit `max_incline_pct(facing)` applies."""
        if facing is Direction.BACKWARD:
            return "max_backward_incline_pct"
        return "max_forward_incline_pct"

    def quantize_speed(self, speed_kmh: float, *, toward: float | None = None) -> float:
        """Round to the treadmill's increment; with `toward`, never past the requested value
        away from `toward` (so rounding can never make a ramp step larger)."""
        return _quantize(speed_kmh, self.min_speed_kmh, self.speed_increment_kmh, toward)

    def quantize_incline(self, incline_pct: float, *, toward: float | None = None) -> float:
        return _quantize(incline_pct, self.min_incline_pct, self.incline_increment_pct, toward)


def _quantize(value: float, origin: float, increment: float, toward: float | None) -> float:
    if increment <= 0:
        return value
    steps = (value - origin) / increment
    if toward is None:
        rounded = round(steps)
    elif value >= toward:
        rounded = math.floor(steps + 1e-6)
    else:
        rounded = math.ceil(steps - 1e-6)
    return round(origin + rounded * increment, 6)


def _strictest_max(
    decided: dict[str, str], name: str, candidates: list[tuple[str, float | None]]
) -> float:
    best_source, best = "", math.inf
    for source, value in candidates:
        if value is not None and value < best:
            best_source, best = source, value
    decided[name] = best_source
    return best


def _strictest_min(
    decided: dict[str, str], name: str, candidates: list[tuple[str, float | None]]
) -> float:
    best_source, best = "", -math.inf
    for source, value in candidates:
        if value is not None and value > best:
            best_source, best = source, value
    decided[name] = best_source
    return best


def effective_limits(
    limits: SafetyLimits,
    *,
    clinical: bool,
    profile: ProfileLimits | None = None,
    treadmill: TreadmillRanges | None = None,
    rider: ProfileLimits | None = None,
) -> EffectiveLimits:
    """The strictest of global config, clinical mode, the profile, the rider's personal limits
    and the treadmill's range."""
    profile = profile or ProfileLimits()
    rider = rider or ProfileLimits()
    # Without a treadmill (planning for display) assume incline control exists.
    incline_controllable = treadmill is None or treadmill.incline is not None
    treadmill = treadmill or TreadmillRanges(speed=None, incline=None)
    sets: list[tuple[str, LimitSet]] = [("general", limits.general)]
    if clinical:
        sets.append(("clinical", limits.clinical))
    decided: dict[str, str] = {}

    def backward_speed(limit_set: LimitSet) -> float:
        if limit_set.backward_jog_unlocked:
            return limit_set.max_backward_jog_speed_kmh
        return limit_set.max_backward_speed_kmh

    speed_range, incline_range = treadmill.speed, treadmill.incline
    tm_max_speed = speed_range.maximum if speed_range else None
    tm_max_incline = incline_range.maximum if incline_range else None

    def from_sets(attr: str) -> list[tuple[str, float | None]]:
        return [(name, float(getattr(s, attr))) for name, s in sets]

    max_forward_speed = _strictest_max(
        decided,
        "max_forward_speed_kmh",
        [
            *from_sets("max_forward_speed_kmh"),
            ("profile", profile.max_forward_speed_kmh),
            ("rider", rider.max_forward_speed_kmh),
            ("treadmill", tm_max_speed),
        ],
    )
    max_backward_speed = _strictest_max(
        decided,
        "max_backward_speed_kmh",
        [
            *[(name, backward_speed(s)) for name, s in sets],
            ("profile", profile.max_backward_speed_kmh),
            ("rider", rider.max_backward_speed_kmh),
            ("treadmill", tm_max_speed),
        ],
    )
    max_forward_incline = _strictest_max(
        decided,
        "max_forward_incline_pct",
        [
            *from_sets("max_forward_incline_pct"),
            ("profile", profile.max_forward_incline_pct),
            ("rider", rider.max_forward_incline_pct),
            ("treadmill", tm_max_incline),
        ],
    )
    max_backward_incline = _strictest_max(
        decided,
        "max_backward_incline_pct",
        [
            *from_sets("max_backward_incline_pct"),
            ("profile", profile.max_backward_incline_pct),
            ("rider", rider.max_backward_incline_pct),
            ("treadmill", tm_max_incline),
        ],
    )
    max_turn_incline = _strictest_max(
        decided,
        "max_turn_incline_pct",
        [*from_sets("max_turn_incline_pct"), ("treadmill", tm_max_incline)],
    )
    ramp_rate = _strictest_max(
        decided,
        "ramp_rate_kmh_per_s",
        [
            *from_sets("ramp_rate_kmh_per_s"),
            ("profile", profile.ramp_rate_kmh_per_s),
            ("rider", rider.ramp_rate_kmh_per_s),
        ],
    )
    turn_pause = _strictest_min(
        decided,
        "turn_pause_s",
        [
            *from_sets("turn_pause_s"),
            ("profile", profile.turn_pause_s),
            ("rider", rider.turn_pause_s),
        ],
    )
    restart_speed = _strictest_max(decided, "restart_speed_kmh", from_sets("restart_speed_kmh"))
    max_backward_s = _strictest_max(
        decided,
        "max_backward_s",
        [
            *from_sets("max_backward_s"),
            ("profile", profile.max_backward_s),
            ("rider", rider.max_backward_s),
        ],
    )
    min_backward_segment = _strictest_min(
        decided, "min_backward_segment_s", from_sets("min_backward_segment_s")
    )
    steady = _strictest_min(
        decided, "steady_before_incline_s", from_sets("steady_before_incline_s")
    )
    telemetry_timeout = _strictest_max(
        decided, "telemetry_timeout_s", from_sets("telemetry_timeout_s")
    )
    confirm = (
        any(s.confirm_turns for _, s in sets)
        or bool(profile.confirm_turns)
        or bool(rider.confirm_turns)
    )

    hr_max = _strictest_max(
        decided,
        "hr_max_bpm",
        [("profile", profile.hr_max_bpm), ("rider", rider.hr_max_bpm)],
    )
    hr_max_known = math.isfinite(hr_max)
    heart_pct = _strictest_max(
        decided,
        "max_heart_rate_pct",
        [
            *from_sets("max_heart_rate_pct"),
            ("profile", profile.max_heart_rate_pct),
            ("rider", rider.max_heart_rate_pct),
        ],
    )
    ceiling_candidates: list[tuple[str, float | None]] = [
        (name, None if bpm is None else float(bpm))
        for name, bpm in [
            *[(name, s.max_heart_rate_bpm) for name, s in sets],
            ("profile", profile.max_heart_rate_bpm),
            ("rider", rider.max_heart_rate_bpm),
        ]
    ]
    if hr_max_known:
        # The % ceiling is decided by whichever source set the strictest %.
        ceiling_candidates.append((decided["max_heart_rate_pct"], hr_max * heart_pct / 100.0))
    heart_ceiling = _strictest_max(decided, "heart_rate_ceiling_bpm", ceiling_candidates)
    heart_margin = max(s.heart_rate_soft_margin_bpm for _, s in sets)
    heart_required = (
        any(s.heart_rate_required for _, s in sets)
        or bool(profile.heart_rate_required)
        or bool(rider.heart_rate_required)
    )
    heart_missing = _strictest_max(
        decided, "heart_rate_missing_s", from_sets("heart_rate_missing_s")
    )

    min_speed = speed_range.minimum if speed_range else 0.1
    if min_speed > restart_speed + 1e-9:
        raise LimitConflictError(
            f"this treadmill's minimum speed {min_speed:g} km/h is above the "
            f"{restart_speed:g} km/h restart cap, so the belt cannot restart gently after a "
            "turn; use a treadmill that goes down to 1.0 km/h"
        )
    speed_increment = speed_range.increment if speed_range and speed_range.increment > 0 else 0.1
    incline_increment = (
        incline_range.increment if incline_range and incline_range.increment > 0 else 0.5
    )
    min_incline = incline_range.minimum if incline_range else 0.0
    effective = EffectiveLimits(
        clinical=clinical,
        max_forward_speed_kmh=max_forward_speed,
        max_backward_speed_kmh=max_backward_speed,
        max_forward_incline_pct=max(max_forward_incline, 0.0),
        max_backward_incline_pct=max(max_backward_incline, 0.0),
        max_turn_incline_pct=max(max_turn_incline, 0.0),
        ramp_rate_kmh_per_s=ramp_rate,
        turn_pause_s=turn_pause,
        confirm_turns=confirm,
        restart_speed_kmh=restart_speed,
        max_backward_s=max_backward_s,
        min_backward_segment_s=min_backward_segment,
        steady_before_incline_s=steady,
        telemetry_timeout_s=telemetry_timeout,
        min_speed_kmh=min_speed,
        speed_increment_kmh=speed_increment,
        min_incline_pct=min_incline,
        incline_increment_pct=incline_increment,
        incline_controllable=incline_controllable,
        hr_max_bpm=hr_max if hr_max_known else None,
        heart_rate_ceiling_bpm=heart_ceiling if math.isfinite(heart_ceiling) else None,
        heart_rate_soft_bpm=(
            heart_ceiling - heart_margin if math.isfinite(heart_ceiling) else None
        ),
        heart_rate_required=heart_required,
        heart_rate_missing_s=heart_missing,
        decided_by=decided,
    )
    # Rounding to the treadmill's increment must never lift a cap: quantize caps downwards.
    return _with_quantized_caps(effective)


def _with_quantized_caps(limits: EffectiveLimits) -> EffectiveLimits:
    return replace(
        limits,
        max_forward_speed_kmh=limits.quantize_speed(limits.max_forward_speed_kmh, toward=0.0),
        max_backward_speed_kmh=limits.quantize_speed(limits.max_backward_speed_kmh, toward=0.0),
        restart_speed_kmh=limits.quantize_speed(limits.restart_speed_kmh, toward=0.0),
    )
