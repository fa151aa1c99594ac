"""Pure helpers of the control channel: target rounding and result-code errors.

Kept apart from the connection logic so each rule has a plain unit test.
"""

from __future__ import annotations

import math

from treadmilld.ble.api import ControlNotPermittedError, ControlRejectedError, LinkError
from treadmilld.ble.quirks import SpeedUnit, speed_from_deck, speed_to_deck
from treadmilld.ftms import ResultCode, SpeedRange

# Control Point parameter resolutions (FTMS v1.0.1 §4.16.2.4-5): speed 0.01 km/h, incline 0.1 %.
SPEED_DECIMALS = 2
INCLINATION_DECIMALS = 1


def clamp_to_range(
    value: float, minimum: float, maximum: float, increment: float, *, decimals: int, what: str
) -> float:
    """`value` clamped to [minimum, maximum] and rounded to the nearest step of `increment`
    above `minimum` (the grid the treadmill accepts), never leaving the range."""
    if not math.isfinite(value):
        raise LinkError(f"{what} {value!r} is not a finite number; send a number in range")
    clamped = min(max(value, minimum), maximum)
    if increment > 0:
        steps = round((clamped - minimum) / increment)
        clamped = minimum + steps * increment
        if clamped > maximum:
            clamped -= increment
        clamped = max(clamped, minimum)
    return round(clamped, decimals)


# One step of the Control Point's speed encoding (0.01 of the deck's unit).
_SPEED_STEP = 0.01
# Tolerance for comparing converted speeds with the range limits.
_SPEED_EPSILON = 1e-9


def speed_to_write(
    speed_kmh: float,
    deck_range: SpeedRange,
    *,
    range_unit: SpeedUnit,
    target_unit: SpeedUnit,
) -> tuple[float, float]:
    """The number to encode in Set Target Speed for `speed_kmh`, and what it means in km/h.

    The target is clamped and rounded on the deck's own grid (`deck_range`, in `range_unit`),
    then expressed in the unit the deck reads commands in (`target_unit`) at the wire's 0.01
    resolution, nudged so that rounding never leaves the range.
    """
    on_grid = clamp_to_range(
        speed_to_deck(speed_kmh, range_unit),
        deck_range.minimum_kmh,
        deck_range.maximum_kmh,
        deck_range.increment_kmh,
        decimals=SPEED_DECIMALS,
        what="target speed",
    )
    lowest_kmh = speed_from_deck(deck_range.minimum_kmh, range_unit)
    highest_kmh = speed_from_deck(deck_range.maximum_kmh, range_unit)
    value = round(speed_to_deck(speed_from_deck(on_grid, range_unit), target_unit), SPEED_DECIMALS)
    while speed_from_deck(value, target_unit) > highest_kmh + _SPEED_EPSILON:
        value = round(value - _SPEED_STEP, SPEED_DECIMALS)
    while speed_from_deck(value, target_unit) < lowest_kmh - _SPEED_EPSILON:
        value = round(value + _SPEED_STEP, SPEED_DECIMALS)
    return value, round(speed_from_deck(value, target_unit), 4)


_ADVICE: dict[ResultCode, tuple[str, str]] = {
    ResultCode.NOT_SUPPORTED: (
        "not_supported",
        "the treadmill does not support {what}; this model cannot be driven that way",
    ),
    ResultCode.INVALID_PARAMETER: (
        "invalid_parameter",
        "the treadmill rejected the value of {what} as invalid or out of its range; "
        "check its supported range",
    ),
    ResultCode.OPERATION_FAILED: (
        "operation_failed",
        "the treadmill could not carry out {what} in its current state (for example Start "
        "while running, Stop while stopped, or the safety key is out); check the console",
    ),
    ResultCode.CONTROL_NOT_PERMITTED: (
        "control_not_permitted",
        "the treadmill refused {what}: control is not permitted. Another app or the console "
        "may hold control; close other apps connected to it and retry",
    ),
}


def rejection_error(treadmill_id: str, what: str, result: ResultCode) -> ControlRejectedError:
    """The typed error for a Control Point response other than Success."""
    code, template = _ADVICE.get(
        result, (f"result_{int(result)}", "the treadmill answered {what} with an unknown result")
    )
    message = f"{treadmill_id}: " + template.format(what=what)
    if result is ResultCode.CONTROL_NOT_PERMITTED:
        return ControlNotPermittedError(message, request=what, result=code)
    return ControlRejectedError(message, request=what, result=code)
