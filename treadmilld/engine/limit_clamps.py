"""Where a requested speed or incline lands under the effective limits, pure: the caps for the
way the user faces, the lowest speed a moving belt is told, the ramp allowance of one write,
the treadmill's increment. The safety governor applies them (and reports what they changed);
nothing else writes a target."""

from __future__ import annotations

import math

from treadmilld.engine.api import Direction
from treadmilld.engine.belt import STANDSTILL_KMH
from treadmilld.engine.limits import EffectiveLimits

# The ramp allowance never accumulates beyond one second of ramping (see `ramp_window_s`).
RAMP_WINDOW_S = 1.0
_EPS = 1e-6


def ramp_window_s(limits: EffectiveLimits) -> float:
    """The most clock time one speed write may count towards its ramp allowance: 1 s, or the
    time one treadmill increment takes at the ramp rate if that is longer (otherwise a coarse
    deck could never move at all)."""
    return max(RAMP_WINDOW_S, limits.speed_increment_kmh / limits.ramp_rate_kmh_per_s)


def lowest_moving_kmh(limits: EffectiveLimits) -> float:
    """The lowest target the belt is told while it should move: the deck's minimum, but never
    at or below the standstill speed (a belt following such a target would look stopped),
    rounded up to the deck's grid."""
    lowest = limits.min_speed_kmh
    if lowest > STANDSTILL_KMH + _EPS:
        return lowest
    steps = math.floor((STANDSTILL_KMH - lowest) / limits.speed_increment_kmh + _EPS) + 1
    return lowest + steps * limits.speed_increment_kmh


def ramped_speed(
    limits: EffectiveLimits, *, previous: float, wanted: float, elapsed_s: float, cap: float
) -> float:
    """The target one write may set on the way from `previous` to `wanted`: at most the ramp
    rate times the time since the last write (at most `ramp_window_s`) away, on the treadmill's
    increment rounded towards `previous`, between the lowest moving speed and `cap`."""
    allowance = limits.ramp_rate_kmh_per_s * min(max(elapsed_s, 0.0), ramp_window_s(limits))
    ramped = min(max(wanted, previous - allowance), previous + allowance)
    quantized = limits.quantize_speed(ramped, toward=previous)
    return min(max(quantized, lowest_moving_kmh(limits)), cap)


def speed_target_for(
    limits: EffectiveLimits | None, facing: Direction | None, speed_kmh: float
) -> tuple[float, str | None]:
    """Where a requested speed would settle under the caps (ramping aside), and which limit
    changed it; the request itself while no limits are armed."""
    if limits is None:
        return speed_kmh, None
    cap = limits.max_speed_kmh(facing)
    if speed_kmh > cap:
        return cap, limits.max_speed_limit(facing)
    lowest = lowest_moving_kmh(limits)
    if speed_kmh < lowest:
        return lowest, "min_speed_kmh"
    return limits.quantize_speed(speed_kmh, toward=0.0), None


def incline_target_for(
    limits: EffectiveLimits | None, facing: Direction | None, incline_pct: float
) -> tuple[float, str | None]:
    """Where a requested incline would settle under the caps, and which limit changed it."""
    if limits is None:
        return incline_pct, None
    if not limits.incline_controllable:
        return 0.0, "incline_not_controllable"
    cap = limits.max_incline_pct(facing)
    if incline_pct > cap:
        return cap, limits.max_incline_limit(facing)
    if incline_pct < limits.min_incline_pct:
        return limits.min_incline_pct, "min_incline_pct"
    return limits.quantize_incline(incline_pct, toward=limits.min_incline_pct), None


def incline_cap(limits: EffectiveLimits, facing: Direction | None, *, restarting: bool) -> float:
    """The highest incline for the way the user faces; at most the turn incline while the belt
    stands, as it restarts with at most that (design choice)."""
    cap = limits.max_incline_pct(facing)
    if restarting:
        cap = min(cap, limits.max_turn_incline_pct)
    return cap
