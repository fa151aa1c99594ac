"""Pure helpers of the control channel: target rounding and result-code errors.

Kept apart from the connection logic so each rule has a plain unit test.

Rounding rule (every target, both directions of unit conversion): a target is clamped to the
treadmill's supported range and then rounded **toward zero** onto what the treadmill can be
sent: the range's grid (`minimum + k * increment`, FTMS v1.0.1 §4.11-4.12) and the Control
Point's resolution in the unit the deck reads (0.01 km/h or 0.01 mph, Table 4.15). A speed is
never written faster than asked, after converting what is encoded back to km/h; the engine's
caps therefore hold on mph decks too (5.0 km/h goes out as 3.10 mph = 4.989 km/h, never as
3.11 mph = 5.005 km/h). The one exception is the range's own floor: a target below the slowest
speed the deck accepts is raised to that speed (a deck cannot walk slower than its minimum),
and on a deck whose range and commands use different units that slowest writable speed can lie
up to one wire step (0.01 mph, 0.016 km/h) above the range minimum.
"""

from __future__ import annotations

import math

from treadmilld.ble.api import ControlNotPermittedError, ControlRejectedError, LinkError
from treadmilld.ble.quirks import SpeedUnit, speed_from_deck, speed_to_deck
from treadmilld.ftms import ResultCode, SpeedRange

# Control Point parameter resolutions (FTMS v1.0.1 Table 4.15): speed 0.01 km/h, incline 0.1 %.
SPEED_DECIMALS = 2
INCLINATION_DECIMALS = 1

# Asked values may carry float noise (4.1 computed as 4.0999999999999996): a grid point at most
# this far above the asked value still counts as "not above it". Far below any wire step.
_TOLERANCE = 1e-9
# Slack for the first floor/ceil guess in grid steps; the guess is then corrected exactly.
_SLACK = 1e-6


def _scale(decimals: int) -> int:
    """Resolution steps per unit for a wire value with `decimals` decimal places."""
    return int(10**decimals)


def _ticks(value: float, decimals: int) -> int:
    """A range value (decoded from the wire, so a whole number of resolution steps) in steps."""
    return round(value * _scale(decimals))


def clamp_to_range(
    value: float, minimum: float, maximum: float, increment: float, *, decimals: int, what: str
) -> float:
    """`value` clamped to [minimum, maximum] and rounded toward zero onto the grid
    `minimum + k * increment` (the values the treadmill accepts), never leaving the range.

    Toward zero: a positive value is rounded down (never above what was asked), a negative one
    up (a decline never steeper than asked). `decimals` is the wire resolution of the values.
    """
    if not math.isfinite(value):
        raise LinkError(f"{what} {value!r} is not a finite number; send a number in range")
    scale = _scale(decimals)
    low = _ticks(minimum, decimals)
    step = max(_ticks(increment, decimals), 1)  # an increment of 0 means "any wire value"
    last = max((_ticks(maximum, decimals) - low) // step, 0)  # index of the top grid point

    def point(index: int) -> float:
        return (low + index * step) / scale

    if value <= point(0):
        return point(0)
    if value >= point(last):
        return point(last)
    exact = (value * scale - low) / step
    if value >= 0:
        index = math.floor(exact + _SLACK)
        while index > 0 and point(index) > value + _TOLERANCE:
            index -= 1
    else:
        index = math.ceil(exact - _SLACK)
        while index < last and point(index) < value - _TOLERANCE:
            index += 1
    return point(min(max(index, 0), last))


def _largest_tick_at_most(limit_kmh: float, unit: SpeedUnit) -> int:
    """The largest wire value (in 0.01 of `unit`) whose km/h is not above `limit_kmh`."""
    tick = max(math.floor(speed_to_deck(limit_kmh, unit) * _scale(SPEED_DECIMALS) + _SLACK), 0)
    while tick > 0 and _tick_kmh(tick, unit) > limit_kmh + _TOLERANCE:
        tick -= 1
    while _tick_kmh(tick + 1, unit) <= limit_kmh + _TOLERANCE:
        tick += 1
    return tick


def _tick_kmh(tick: int, unit: SpeedUnit) -> float:
    return speed_from_deck(tick / _scale(SPEED_DECIMALS), unit)


def speed_to_write(
    speed_kmh: float,
    deck_range: SpeedRange,
    *,
    range_unit: SpeedUnit,
    target_unit: SpeedUnit,
) -> tuple[float, float]:
    """The number to encode in Set Target Speed for `speed_kmh`, and exactly what it means in
    km/h (the value the deck will run at, by its own reading of the number).

    `deck_range` is in `range_unit`, the command is read in `target_unit` (quirks.py). The
    target is clamped to the range and rounded toward zero twice: onto the range's grid, then
    onto the command's 0.01 resolution in `target_unit`. Both roundings compare in km/h, so
    the result is never above `speed_kmh` and never outside the range (see the module
    docstring for the range's floor).
    """
    if not math.isfinite(speed_kmh):
        raise LinkError(
            f"target speed {speed_kmh!r} is not a finite number; send a number in range"
        )
    low = _ticks(deck_range.minimum_kmh, SPEED_DECIMALS)
    step = max(_ticks(deck_range.increment_kmh, SPEED_DECIMALS), 1)
    last = max((_ticks(deck_range.maximum_kmh, SPEED_DECIMALS) - low) // step, 0)

    def grid_kmh(index: int) -> float:
        return _tick_kmh(low + index * step, range_unit)

    # 1. The largest point of the deck's grid not above the target (the lowest one if the
    #    target is below the range).
    exact = (speed_to_deck(speed_kmh, range_unit) * _scale(SPEED_DECIMALS) - low) / step
    index = min(max(math.floor(exact + _SLACK), 0), last)
    while index > 0 and grid_kmh(index) > speed_kmh + _TOLERANCE:
        index -= 1
    while index < last and grid_kmh(index + 1) <= speed_kmh + _TOLERANCE:
        index += 1
    # 2. That point in the unit the deck reads commands in, rounded down to the wire's 0.01.
    #    Same unit: the grid point itself. Mixed units: never above the grid point or the target.
    tick = _largest_tick_at_most(min(grid_kmh(index), speed_kmh), target_unit)
    # 3. Mixed units only: rounding down may fall below the range; take the slowest wire value
    #    inside it instead (the deck cannot go slower, and would refuse it as out of range).
    #    A range narrower than one wire step may hold none: then the one below it stays.
    raised = tick
    while _tick_kmh(raised, target_unit) < grid_kmh(0) - _TOLERANCE:
        raised += 1
    if _tick_kmh(raised, target_unit) <= grid_kmh(last) + _TOLERANCE:
        tick = raised
    value = tick / _scale(SPEED_DECIMALS)
    return value, speed_from_deck(value, target_unit)


_ADVICE: dict[ResultCode, str] = {
    ResultCode.NOT_SUPPORTED: (
        "the treadmill does not support {what}; this model cannot be driven that way"
    ),
    ResultCode.INVALID_PARAMETER: (
        "the treadmill rejected the value of {what} as invalid or out of its range; "
        "check its supported range"
    ),
    ResultCode.OPERATION_FAILED: (
        "the treadmill could not carry out {what} in its current state (for example Start "
        "while running, Stop while stopped, or the safety key is out); check the console"
    ),
    ResultCode.CONTROL_NOT_PERMITTED: (
        "the treadmill refused {what}: control is not permitted. Another app or the console "
        "may hold control; close other apps connected to it and retry"
    ),
}


def rejection_error(treadmill_id: str, what: str, result: ResultCode) -> ControlRejectedError:
    """The typed error for a Control Point response other than Success."""
    # Only Success lacks advice, and it is never a rejection; the text covers a caller's slip.
    template = _ADVICE.get(result, "the treadmill answered {what} with an unknown result")
    message = f"{treadmill_id}: " + template.format(what=what)
    if result is ResultCode.CONTROL_NOT_PERMITTED:
        return ControlNotPermittedError(message, request=what, result=result)
    return ControlRejectedError(message, request=what, result=result)
