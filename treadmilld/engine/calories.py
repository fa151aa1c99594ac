"""The calorie model: a design choice built on the ACSM equations and the 2011 Compendium.

Walking, ACSM (Bushman 2020): VO2 = 3.5 + 0.1*S + 1.8*S*G   (ml/kg/min; S in m/min, G a fraction)
Running, ACSM:                VO2 = 3.5 + 0.2*S + 0.9*S*G
Backward walking multiplies only the horizontal term by k_h = 1.8 (lifting the body costs about
the same either way); backward jogging adds 35 % to the running cost above rest (Rasica 2020).
METs = VO2 / 3.5, floored at 2.0 (the equation under-predicts below 3 km/h);
kcal/min = METs * 3.5 * kg / 200.

Uncertainty is about +-25-30 % for an individual; the figures are estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from treadmilld.engine.api import MAX_BODY_WEIGHT_KG, MIN_BODY_WEIGHT_KG, Direction
from treadmilld.engine.planner import SegmentKind, WorkoutPlan

REST_VO2 = 3.5  # ml/kg/min, one MET
BACKWARD_HORIZONTAL_FACTOR = 1.8  # k_h: our fit to Compendium 17320/17325 (Ainsworth et al. 2011)
BACKWARD_JOG_FACTOR = 1.35  # Rasica et al. 2020: backward running costs +35 %
MET_FLOOR = 2.0
# Speeds at which the running equation takes over. Forward: ACSM's running equation applies
# from 134 m/min (8.0 km/h). Backward: the preferred walk-run transition, 1.63 m/s = 5.9 km/h
# (Hreljac et al. 2005).
FORWARD_RUN_FROM_KMH = 8.0
BACKWARD_JOG_FROM_KMH = 5.9


class CalorieInputError(ValueError):
    """A value the calorie model cannot turn into energy; the message says what it takes."""


def check_body_weight(body_weight_kg: float) -> float:
    """`body_weight_kg` if the model can use it; else `CalorieInputError`. A weight of 0 or
    below would give no or negative energy, and one outside adult ranges nonsense."""
    if not (
        math.isfinite(body_weight_kg) and MIN_BODY_WEIGHT_KG <= body_weight_kg <= MAX_BODY_WEIGHT_KG
    ):
        raise CalorieInputError(
            f"body weight must be {MIN_BODY_WEIGHT_KG:g}-{MAX_BODY_WEIGHT_KG:g} kg, got "
            f"{body_weight_kg:g}; give the person's weight in kilograms"
        )
    return body_weight_kg


def _m_per_min(speed_kmh: float) -> float:
    return speed_kmh * 1000.0 / 60.0


def mets(speed_kmh: float, grade_pct: float, direction: Direction) -> float:
    """METs for walking/jogging at `speed_kmh` and `grade_pct` facing `direction`.

    A paused belt (speed 0 or direction REST) is standing still: 1 MET. Never below 1 MET,
    whatever the grade: energy only ever adds up.
    """
    if not (math.isfinite(speed_kmh) and math.isfinite(grade_pct)):
        raise CalorieInputError(
            f"speed and grade must be numbers, got {speed_kmh} km/h and {grade_pct} %"
        )
    if speed_kmh <= 0 or direction is Direction.REST:
        return 1.0
    s = _m_per_min(speed_kmh)
    g = grade_pct / 100.0
    if direction is Direction.BACKWARD:
        if speed_kmh >= BACKWARD_JOG_FROM_KMH:
            vo2 = REST_VO2 + BACKWARD_JOG_FACTOR * (0.2 * s + 0.9 * s * g)
        else:
            vo2 = REST_VO2 + BACKWARD_HORIZONTAL_FACTOR * 0.1 * s + 1.8 * s * g
    elif speed_kmh >= FORWARD_RUN_FROM_KMH:
        vo2 = REST_VO2 + 0.2 * s + 0.9 * s * g
    else:
        vo2 = REST_VO2 + 0.1 * s + 1.8 * s * g
    return max(vo2 / REST_VO2, MET_FLOOR)


def kcal_per_min(mets_value: float, body_weight_kg: float) -> float:
    check_body_weight(body_weight_kg)
    return max(mets_value, 0.0) * 3.5 * body_weight_kg / 200.0


@dataclass(slots=True)
class WorkoutTotals:
    """Distance and energy integrated from MEASURED speed and incline, never from targets."""

    body_weight_kg: float
    distance_forward_m: float = 0.0
    distance_backward_m: float = 0.0
    calories_kcal: float = 0.0
    _last_at: float | None = None
    _last_speed_kmh: float = 0.0
    _last_grade_pct: float = 0.0

    def __post_init__(self) -> None:
        check_body_weight(self.body_weight_kg)

    @property
    def distance_m(self) -> float:
        return self.distance_forward_m + self.distance_backward_m

    def add_sample(
        self, at: float, speed_kmh: float | None, grade_pct: float | None, facing: Direction
    ) -> None:
        """Account for the time since the last sample at the last sample's measured values
        (a zero-order hold: the treadmill reports what the belt did until now)."""
        if self._last_at is not None:
            dt = max(at - self._last_at, 0.0)
            self._integrate(dt, facing)
        self._last_at = at
        if speed_kmh is not None:
            self._last_speed_kmh = max(speed_kmh, 0.0)
        if grade_pct is not None:
            self._last_grade_pct = grade_pct

    def gap(self) -> None:
        """Samples stopped (link lost): do not bridge the gap with the last speed."""
        self._last_at = None

    def _integrate(self, dt: float, facing: Direction) -> None:
        speed = self._last_speed_kmh
        if speed <= 0 or dt <= 0:
            return
        metres = speed / 3.6 * dt
        if facing is Direction.BACKWARD:
            self.distance_backward_m += metres
        else:
            self.distance_forward_m += metres
        walking = Direction.BACKWARD if facing is Direction.BACKWARD else Direction.FORWARD
        self.calories_kcal += (
            kcal_per_min(mets(speed, self._last_grade_pct, walking), self.body_weight_kg)
            * dt
            / 60.0
        )


def estimate_kcal(
    steps: list[tuple[float, float, float, Direction]], body_weight_kg: float
) -> float:
    """Energy for planned (duration_s, speed_kmh, grade_pct, direction) pieces, for `show`."""
    total = 0.0
    for duration_s, speed_kmh, grade_pct, direction in steps:
        if speed_kmh <= 0:
            continue
        total += kcal_per_min(mets(speed_kmh, grade_pct, direction), body_weight_kg) * (
            duration_s / 60.0
        )
    return total


def plan_kcal(plan: WorkoutPlan, body_weight_kg: float) -> float:
    """Estimated energy of a plan: every step sliced into 1 s pieces at its planned values."""
    pieces: list[tuple[float, float, float, Direction]] = []
    for segment in plan.segments:
        if segment.kind is not SegmentKind.WALK:
            continue
        for step in segment.steps:
            remaining = step.duration_s
            elapsed = 0.0
            while remaining > 1e-9:
                piece = min(1.0, remaining)
                middle = (elapsed + piece / 2) / step.duration_s
                speed = step.from_speed_kmh + (step.speed_kmh - step.from_speed_kmh) * middle
                incline = (
                    step.from_incline_pct + (step.incline_pct - step.from_incline_pct) * middle
                )
                pieces.append((piece, speed, incline, step.direction))
                elapsed += piece
                remaining -= piece
    return estimate_kcal(pieces, body_weight_kg)
