"""The calorie model against the Compendium and worked examples for a 70 kg adult."""

from __future__ import annotations

import pytest

from treadmilld.engine.api import Direction
from treadmilld.engine.calories import WorkoutTotals, kcal_per_min, mets

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
