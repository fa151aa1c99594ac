"""The state payload as a display needs it: every value rounded to what a person can read.

The engine keeps its measured values at full precision (the governor and the calorie model
work on them); only what is published is rounded. Rounding is also what makes "publish on
change" economical: a belt at 3.0 km/h reports 2.98, 3.01, 3.00..., which is one value on a
dashboard and must be one publication, not one per Treadmill Data record.
"""

from __future__ import annotations

import math
from typing import Any

from treadmilld.engine.api import SessionSnapshot

# Decimal places per field: km/h and % as consoles show them (0.1), calories to 0.1 kcal,
# progress to 0.1 %, body weight to 0.1 kg.
_DECIMALS = {
    "speed_kmh": 1,
    "target_speed_kmh": 1,
    "incline_pct": 1,
    "target_incline_pct": 1,
    "calories_kcal": 1,
    "progress_pct": 1,
    "body_weight_kg": 1,
}
# Whole beats per minute (the ceiling and a zone's bounds are a share of a maximum).
_BPM = ("heart_rate_ceiling_bpm", "heart_rate_zone_low_bpm", "heart_rate_zone_high_bpm")
# Whole metres.
_METRES = ("distance_m", "distance_forward_m", "distance_backward_m")
# Whole seconds. Time done is floored and time left is ceiled, as a stopwatch and a countdown
# show them: "0 s left" only once nothing is left.
_SECONDS_DONE = ("elapsed_s", "backward_s")
_SECONDS_LEFT = ("remaining_s", "segment_remaining_s")
# Clock arithmetic leaves 599.9999999 where 600 s passed: not a second short.
_SECONDS_SLACK = 1e-6


def _decimal(value: float, places: int) -> float:
    # `+ 0.0` turns the -0.0 that rounding -0.04 gives into 0.0 (JSON would show "-0.0").
    return round(value, places) + 0.0


def display_state(snapshot: SessionSnapshot) -> dict[str, Any]:
    """The snapshot as published on `<base>/<id>/state` (without `selected_profile`/`ts`)."""
    state = snapshot.to_json_dict()
    for name, places in _DECIMALS.items():
        value = state.get(name)
        if value is not None:
            state[name] = _decimal(value, places)
    for name in _METRES:
        state[name] = round(state[name])
    for name in _BPM:
        value = state.get(name)
        if value is not None:
            state[name] = round(value)
    for name in _SECONDS_DONE:
        value = state.get(name)
        if value is not None:
            state[name] = math.floor(value + _SECONDS_SLACK)
    for name in _SECONDS_LEFT:
        value = state.get(name)
        if value is not None:
            state[name] = max(math.ceil(value - _SECONDS_SLACK), 0)
    return state
