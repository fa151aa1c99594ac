"""The calorie model against the Compendium and worked examples for a 70 kg adult."""

from __future__ import annotations

import io

import pytest

from treadmilld.app.profile_commands import show_profile
from treadmilld.engine.api import Direction
from treadmilld.engine.calories import (
    CalorieInputError,
    WorkoutTotals,
    estimate_kcal,
    kcal_per_min,
    mets,
)
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits

COMPENDIUM_SPEED_KMH = 5.6  # 3.5 mph


def test_backward_walking_level_matches_compendium_17320() -> None:
    assert mets(COMPENDIUM_SPEED_KMH, 0.0, Direction.BACKWARD) == pytest.approx(6.0, rel=0.05)


def test_backward_walking_uphill_matches_compendium_17325() -> None:
    assert mets(COMPENDIUM_SPEED_KMH, 5.0, Direction.BACKWARD) == pytest.approx(8.0, rel=0.05)


@pytest.mark.parametrize(
    ("speed", "grade", "direction", "expected_mets", "expected_kcal_min"),
    [
        (2.0, 0.0, Direction.BACKWARD, 2.7, 3.3),
        (3.0, 0.0, Direction.BACKWARD, 3.6, 4.4),
        (4.0, 0.0, Direction.BACKWARD, 4.4, 5.4),
        (4.0, 5.0, Direction.BACKWARD, 6.1, 7.5),
        (4.0, 10.0, Direction.BACKWARD, 7.9, 9.6),
        (6.0, 0.0, Direction.BACKWARD, 8.7, 10.7),  # backward jog: running equation +35 %
    ],
)
def test_the_reference_examples_for_70_kg(
    speed: float,
    grade: float,
    direction: Direction,
    expected_mets: float,
    expected_kcal_min: float,
) -> None:
    value = mets(speed, grade, direction)
    assert value == pytest.approx(expected_mets, abs=0.06)
    assert kcal_per_min(value, 70.0) == pytest.approx(expected_kcal_min, abs=0.06)


def test_forward_walking_is_cheaper_than_backward() -> None:
    assert mets(4.0, 0.0, Direction.FORWARD) < mets(4.0, 0.0, Direction.BACKWARD)


def test_slow_walking_has_a_two_met_floor() -> None:
    assert mets(0.5, 0.0, Direction.BACKWARD) == 2.0
    assert mets(0.5, -10.0, Direction.FORWARD) == 2.0


def test_a_stopped_belt_burns_resting_energy_only() -> None:
    assert mets(0.0, 0.0, Direction.BACKWARD) == 1.0


def test_totals_integrate_measured_samples_and_split_by_direction() -> None:
    totals = WorkoutTotals(body_weight_kg=70.0)
    totals.add_sample(0.0, 3.6, 0.0, Direction.FORWARD)
    totals.add_sample(60.0, 3.6, 0.0, Direction.FORWARD)  # 60 s at 1 m/s
    totals.add_sample(120.0, 0.0, 0.0, Direction.BACKWARD)  # 60 s at 1 m/s, facing backward
    assert totals.distance_forward_m == pytest.approx(60.0)
    assert totals.distance_backward_m == pytest.approx(60.0)
    expected = kcal_per_min(mets(3.6, 0, Direction.FORWARD), 70) + kcal_per_min(
        mets(3.6, 0, Direction.BACKWARD), 70
    )
    assert totals.calories_kcal == pytest.approx(expected)


def test_a_gap_in_samples_is_not_bridged() -> None:
    totals = WorkoutTotals(body_weight_kg=70.0)
    totals.add_sample(0.0, 3.6, 0.0, Direction.FORWARD)
    totals.gap()
    totals.add_sample(600.0, 3.6, 0.0, Direction.FORWARD)
    assert totals.distance_m == 0.0


def test_body_weight_scales_energy() -> None:
    light, heavy = WorkoutTotals(body_weight_kg=50.0), WorkoutTotals(body_weight_kg=100.0)
    for totals in (light, heavy):
        totals.add_sample(0.0, 3.0, 0.0, Direction.BACKWARD)
        totals.add_sample(600.0, 3.0, 0.0, Direction.BACKWARD)
    assert heavy.calories_kcal == pytest.approx(2 * light.calories_kcal)


@pytest.mark.parametrize("weight", [-5.0, 0.0, 19.9, 300.1, float("nan"), float("inf")])
def test_a_body_weight_the_model_cannot_use_is_refused_never_negative_energy(
    weight: float,
) -> None:
    with pytest.raises(CalorieInputError, match="body weight must be 20-300 kg"):
        WorkoutTotals(body_weight_kg=weight)
    with pytest.raises(CalorieInputError):
        kcal_per_min(3.0, weight)
    with pytest.raises(CalorieInputError):
        estimate_kcal([(60.0, 3.0, 0.0, Direction.BACKWARD)], weight)


def test_show_refuses_a_weight_rather_than_printing_negative_energy() -> None:
    out = io.StringIO()
    with pytest.raises(CalorieInputError):
        show_profile(out, ProfileLibrary(), "p3-knee-oa", -5.0, SafetyLimits())
    assert out.getvalue() == ""


@pytest.mark.parametrize("grade", [-30.0, -100.0, 0.0, 15.0])
@pytest.mark.parametrize("direction", [Direction.FORWARD, Direction.BACKWARD])
def test_energy_only_adds_up_whatever_the_grade(grade: float, direction: Direction) -> None:
    totals = WorkoutTotals(body_weight_kg=20.0)
    for second in range(61):
        totals.add_sample(float(second), 4.0, grade, direction)
    assert totals.calories_kcal > 0
    assert mets(4.0, grade, direction) >= 1.0


def test_a_speed_or_grade_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(CalorieInputError):
        mets(float("nan"), 0.0, Direction.FORWARD)
