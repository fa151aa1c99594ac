"""The heart-rate zone controller, pure: a segment's zone, its bounds, the setpoints it holds and
the filtered heart rate in; the setpoints to hold next out.

Below the zone it raises the incline first and then the speed, above it it lowers the incline
first and then the speed (backward walking caps speed low, so incline is the first lever), one
step at a time, never more often than `MIN_INTERVAL_S`, and not at all while the heart rate is
inside the zone (the zone is the dead band) or unknown. It never changes the speed while
`speed_may_change` is false (the executor passes false outside a segment's steady walk, so
never in a turn). Its setpoints are requests: the executor writes them through the safety
governor, which holds every limit and ramp rate, and reads back where the governor let them
settle (`settle`), so a setpoint never climbs above what the governor allows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from treadmilld.engine.heart_rate import HeartRateReading
from treadmilld.engine.snapshot import ZonePosition

# [D] Heart rate answers a change of load over tens of seconds (a step's effect shows after
# about half a minute at walking intensities), so the controller waits 30 s after each change
# before it judges the heart rate again: one step shows before the next is taken, and the
# rider is not chased round the zone.
MIN_INTERVAL_S = 30.0
# [D] One step: 1 % of incline, or 0.2 km/h (under half a second of the general ramp rate).
INCLINE_STEP_PCT = 1.0
SPEED_STEP_KMH = 0.2
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class ZoneBounds:
    """A zone in bpm and what the controller may do to hold it."""

    low_bpm: float
    high_bpm: float
    min_speed_kmh: float
    max_speed_kmh: float
    min_incline_pct: float
    max_incline_pct: float


@dataclass(frozen=True, slots=True)
class ZoneSetpoint:
    speed_kmh: float
    incline_pct: float
    changed_at: float | None = None  # clock time of the controller's last change


def zone_of(bpm: int | None, low_bpm: float, high_bpm: float) -> ZonePosition | None:
    """Where a heart rate lies against a zone (None: no heart rate)."""
    if bpm is None:
        return None
    if bpm < low_bpm:
        return ZonePosition.BELOW
    if bpm > high_bpm:
        return ZonePosition.ABOVE
    return ZonePosition.IN


def decide(
    bounds: ZoneBounds,
    held: ZoneSetpoint,
    reading: HeartRateReading | None,
    now: float,
    *,
    speed_may_change: bool,
) -> ZoneSetpoint:
    """The setpoints to hold from `now`."""
    if reading is None:
        return held
    if held.changed_at is not None and now - held.changed_at < MIN_INTERVAL_S - _EPS:
        return held
    where = zone_of(reading.bpm, bounds.low_bpm, bounds.high_bpm)
    if where is ZonePosition.BELOW:
        return _more_work(bounds, held, now, speed_may_change=speed_may_change)
    if where is ZonePosition.ABOVE:
        return _less_work(bounds, held, now, speed_may_change=speed_may_change)
    return held


def _more_work(
    bounds: ZoneBounds, held: ZoneSetpoint, now: float, *, speed_may_change: bool
) -> ZoneSetpoint:
    if held.incline_pct < bounds.max_incline_pct - _EPS:
        incline = min(held.incline_pct + INCLINE_STEP_PCT, bounds.max_incline_pct)
        return replace(held, incline_pct=incline, changed_at=now)
    if speed_may_change and held.speed_kmh < bounds.max_speed_kmh - _EPS:
        speed = min(held.speed_kmh + SPEED_STEP_KMH, bounds.max_speed_kmh)
        return replace(held, speed_kmh=speed, changed_at=now)
    return held


def _less_work(
    bounds: ZoneBounds, held: ZoneSetpoint, now: float, *, speed_may_change: bool
) -> ZoneSetpoint:
    if held.incline_pct > bounds.min_incline_pct + _EPS:
        incline = max(held.incline_pct - INCLINE_STEP_PCT, bounds.min_incline_pct)
        return replace(held, incline_pct=incline, changed_at=now)
    if speed_may_change and held.speed_kmh > bounds.min_speed_kmh + _EPS:
        speed = max(held.speed_kmh - SPEED_STEP_KMH, bounds.min_speed_kmh)
        return replace(held, speed_kmh=speed, changed_at=now)
    return held


def settle(held: ZoneSetpoint, *, speed_kmh: float, incline_pct: float) -> ZoneSetpoint:
    """The setpoints where the governor lets them settle (its caps, the heart-rate caps, the
    deck's increment): the controller goes on from there, so it never asks beyond a limit."""
    return replace(
        held,
        speed_kmh=min(held.speed_kmh, speed_kmh),
        incline_pct=min(held.incline_pct, incline_pct),
    )
