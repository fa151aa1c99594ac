"""How the effective limits are combined: the strictest source wins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from treadmilld.engine.api import Direction, Range
from treadmilld.engine.limits import (
    LimitSet,
    ProfileLimits,
    SafetyLimits,
    TreadmillRanges,
    effective_limits,
)


def test_the_defaults_are_the_reference_values() -> None:
    general, clinical = SafetyLimits().general, SafetyLimits().clinical
    assert general.max_backward_speed_kmh == 5.0
    assert general.max_backward_jog_speed_kmh == 7.0
    assert not general.backward_jog_unlocked
    assert general.max_backward_incline_pct == 10.0
    assert general.ramp_rate_kmh_per_s == 0.5
    assert general.turn_pause_s == 10.0
    assert general.restart_speed_kmh == 1.0
    assert general.max_backward_s == 1800.0
    assert general.min_backward_segment_s == 10.0
    assert (clinical.max_backward_speed_kmh, clinical.max_backward_incline_pct) == (2.5, 5.0)
    assert (clinical.ramp_rate_kmh_per_s, clinical.turn_pause_s) == (0.2, 20.0)
    assert clinical.confirm_turns
    assert clinical.min_backward_segment_s == 30.0


@pytest.mark.parametrize(
    "field",
    [
        {"max_backward_speed_kmh": 6.5},
        {"max_backward_jog_speed_kmh": 8.5},
        {"max_backward_incline_pct": 16},
        {"ramp_rate_kmh_per_s": 0.6},
        {"turn_pause_s": 5},
        {"restart_speed_kmh": 1.5},
        {"max_backward_s": 3600},
        {"unknown_limit": 1},
    ],
)
def test_config_cannot_loosen_a_hard_cap(field: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        LimitSet.model_validate(field)


def test_clinical_jogging_is_refused() -> None:
    with pytest.raises(ValidationError, match="clinical"):
        SafetyLimits(clinical=LimitSet(backward_jog_unlocked=True))


def test_the_strictest_source_wins() -> None:
    limits = SafetyLimits(general=LimitSet(max_backward_speed_kmh=4.0, turn_pause_s=12))
    effective = effective_limits(
        limits,
        clinical=False,
        profile=ProfileLimits(max_backward_speed_kmh=4.5, turn_pause_s=15, ramp_rate_kmh_per_s=0.3),
        treadmill=TreadmillRanges(speed=Range(0.5, 3.5, 0.1), incline=Range(0, 8, 0.5)),
    )
    assert effective.max_speed_kmh(Direction.BACKWARD) == 3.5
    assert effective.decided_by["max_backward_speed_kmh"] == "treadmill"
    assert effective.turn_pause_s == 15
    assert effective.decided_by["turn_pause_s"] == "profile"
    assert effective.ramp_rate_kmh_per_s == 0.3
    assert effective.max_incline_pct(Direction.BACKWARD) == 8.0


def test_clinical_mode_takes_the_stricter_of_general_and_clinical() -> None:
    limits = SafetyLimits(
        general=LimitSet(max_backward_speed_kmh=2.0),
        clinical=LimitSet(max_backward_speed_kmh=3.0, turn_pause_s=20, confirm_turns=True),
    )
    effective = effective_limits(limits, clinical=True)
    assert effective.max_backward_speed_kmh == 2.0
    assert effective.turn_pause_s == 20
    assert effective.confirm_turns


def test_a_profile_cannot_loosen_global_limits() -> None:
    effective = effective_limits(
        SafetyLimits(),
        clinical=False,
        profile=ProfileLimits(max_backward_speed_kmh=6.0, turn_pause_s=3.0, ramp_rate_kmh_per_s=2),
    )
    assert effective.max_backward_speed_kmh == 5.0
    assert effective.turn_pause_s == 10.0
    assert effective.ramp_rate_kmh_per_s == 0.5


def test_a_riders_personal_limits_tighten_and_never_loosen() -> None:
    rider = ProfileLimits(
        max_backward_speed_kmh=2.0,
        max_forward_speed_kmh=12.0,  # looser than the configured 8: ignored
        max_forward_incline_pct=0.0,  # a clinical program's first sessions: no incline
        max_backward_incline_pct=0.0,
        turn_pause_s=20.0,
    )
    effective = effective_limits(
        SafetyLimits(),
        clinical=False,
        profile=ProfileLimits(max_backward_speed_kmh=3.0),
        rider=rider,
    )
    assert effective.max_backward_speed_kmh == 2.0
    assert effective.decided_by["max_backward_speed_kmh"] == "rider"
    assert effective.max_forward_speed_kmh == 8.0
    assert effective.max_incline_pct(Direction.FORWARD) == 0.0
    assert effective.max_incline_pct(Direction.BACKWARD) == 0.0
    assert effective.turn_pause_s == 20.0


def test_jog_unlock_raises_the_backward_cap_to_the_jog_limit() -> None:
    unlocked = SafetyLimits(general=LimitSet(backward_jog_unlocked=True))
    assert effective_limits(unlocked, clinical=False).max_backward_speed_kmh == 7.0
    assert effective_limits(unlocked, clinical=True).max_backward_speed_kmh == 2.5


def test_caps_round_down_to_the_treadmill_increment() -> None:
    effective = effective_limits(
        SafetyLimits(general=LimitSet(max_backward_speed_kmh=2.55)),
        clinical=False,
        treadmill=TreadmillRanges(speed=Range(0.5, 12.0, 0.2), incline=None),
    )
    assert effective.max_backward_speed_kmh == 2.5
    assert not effective.incline_controllable
