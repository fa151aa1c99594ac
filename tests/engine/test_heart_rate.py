"""The heart-rate filter, the governor's heart-rate guard, the zone controller and the heart-rate
limits, as pure values: readings in, decisions out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from treadmilld.engine.heart_rate import (
    FRESH_FOR_S,
    HeartRateFilter,
    HeartRateReading,
    HeartRateSource,
    HeartRateSources,
    Rejection,
)
from treadmilld.engine.heart_rate_control import (
    MIN_INTERVAL_S,
    ZoneBounds,
    ZoneSetpoint,
    decide,
    settle,
    zone_of,
)
from treadmilld.engine.heart_rate_guard import (
    EASE_INTERVAL_S,
    RELEASE_AFTER_S,
    HeartRateGuard,
    HeartRateVerdict,
)
from treadmilld.engine.limits import (
    EffectiveLimits,
    LimitSet,
    ProfileLimits,
    SafetyLimits,
    effective_limits,
)
from treadmilld.engine.profile import ProfileError, parse_profile

# --------------------------------------------------------------------------- the filter


def fed(readings: list[tuple[int | None, bool | None, float]]) -> list[int | Rejection]:
    strap = HeartRateFilter(HeartRateSource.STRAP)
    out: list[int | Rejection] = []
    for bpm, contact, at in readings:
        result = strap.feed(bpm, contact=contact, at=at)
        out.append(result.bpm if isinstance(result, HeartRateReading) else result)
    return out


def test_a_steady_heart_rate_passes_the_filter() -> None:
    assert fed([(100, True, 0.0), (102, True, 1.0), (101, None, 2.0)]) == [100, 102, 101]


@pytest.mark.parametrize(
    ("bpm", "why"),
    [(0, Rejection.ZERO), (29, Rejection.OUT_OF_RANGE), (231, Rejection.OUT_OF_RANGE)],
)
def test_zero_and_implausible_values_are_refused(bpm: int, why: Rejection) -> None:
    assert fed([(bpm, True, 0.0)]) == [why]


def test_no_contact_means_no_reading_whatever_the_value() -> None:
    strap = HeartRateFilter(HeartRateSource.STRAP)
    strap.feed(120, contact=True, at=0.0)
    assert strap.feed(120, contact=False, at=1.0) is Rejection.NO_CONTACT
    # The last good reading no longer counts either.
    assert strap.fresh(1.0) is None


def test_a_single_sample_spike_is_rejected_and_the_rate_goes_on_unchanged() -> None:
    assert fed([(100, True, 0.0), (160, True, 1.0), (101, True, 2.0)]) == [
        100,
        Rejection.SPIKE,
        101,
    ]


def test_a_jump_the_next_reading_confirms_is_accepted_one_reading_late() -> None:
    assert fed([(100, True, 0.0), (160, True, 1.0), (161, True, 2.0)]) == [
        100,
        Rejection.SPIKE,
        161,
    ]


def test_a_rise_within_physiology_is_never_held_back() -> None:
    # 20 bpm in a second is fast, but under the 25 bpm/s limit.
    assert fed([(100, True, 0.0), (120, True, 1.0), (140, True, 2.0)]) == [100, 120, 140]


def test_the_strap_counts_while_fresh_and_the_treadmill_field_after() -> None:
    sources = HeartRateSources()
    sources.treadmill.feed(90, contact=None, at=0.0)
    sources.strap.feed(110, contact=True, at=0.0)
    current = sources.current(1.0)
    assert current is not None
    assert (current.bpm, current.source) == (110, HeartRateSource.STRAP)
    sources.treadmill.feed(92, contact=None, at=FRESH_FOR_S + 1.0)
    current = sources.current(FRESH_FOR_S + 1.0)
    assert current is not None
    assert (current.bpm, current.source) == (92, HeartRateSource.TREADMILL)
    assert sources.current(3 * FRESH_FOR_S) is None


# --------------------------------------------------------------------------- the limits


def test_the_strictest_heart_rate_ceiling_wins_and_says_who_set_it() -> None:
    limits = SafetyLimits(general=LimitSet(max_heart_rate_bpm=170))
    rider = ProfileLimits(hr_max_bpm=180, max_heart_rate_pct=85)
    profile = ProfileLimits(max_heart_rate_pct=80)
    effective = effective_limits(limits, clinical=False, profile=profile, rider=rider)
    assert effective.heart_rate_ceiling_bpm == pytest.approx(144.0)  # 80 % of 180
    assert effective.decided_by["heart_rate_ceiling_bpm"] == "profile"
    assert effective.heart_rate_soft_bpm == pytest.approx(134.0)
    clinical = effective_limits(limits, clinical=True, rider=rider)
    assert clinical.heart_rate_ceiling_bpm == pytest.approx(180 * 0.76)
    assert clinical.decided_by["heart_rate_ceiling_bpm"] == "clinical"
    # Without an HRmax only a ceiling in bpm applies.
    plain = effective_limits(limits, clinical=False)
    assert plain.heart_rate_ceiling_bpm == 170.0
    assert effective_limits(SafetyLimits(), clinical=False).heart_rate_ceiling_bpm is None


def test_a_ceiling_above_near_maximal_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="max_heart_rate_pct"):
        LimitSet(max_heart_rate_pct=99)


def test_heart_rate_required_from_any_source() -> None:
    required = effective_limits(
        SafetyLimits(), clinical=False, profile=ProfileLimits(heart_rate_required=True)
    )
    assert required.heart_rate_required


# --------------------------------------------------------------------------- the guard


def guard_limits(**changes: object) -> EffectiveLimits:
    base = effective_limits(
        SafetyLimits(), clinical=False, rider=ProfileLimits(hr_max_bpm=200, max_heart_rate_pct=70)
    )
    # ceiling 140 bpm, soft 130 bpm
    return replace(base, **changes)  # type: ignore[arg-type]


def reading(bpm: int, at: float) -> HeartRateReading:
    return HeartRateReading(bpm, at, HeartRateSource.STRAP)


def test_above_the_soft_ceiling_the_incline_comes_down_first_then_the_speed() -> None:
    limits = guard_limits()
    guard = HeartRateGuard()
    guard.new_workout(0.0)
    speed, incline = 4.0, 2.0
    caps: list[tuple[float | None, float | None]] = []
    t = 0.0
    for _ in range(4):
        check = guard.check(
            limits, reading(135, t), t, walking=True, speed_kmh=speed, incline_pct=incline
        )
        assert check.eased
        assert check.verdict is None
        caps.append((guard.speed_cap_kmh, guard.incline_cap_pct))
        speed, incline = guard.cap_speed(speed), guard.cap_incline(incline)
        # Not again before the interval.
        t += EASE_INTERVAL_S / 2
        assert not guard.check(
            limits, reading(135, t), t, walking=True, speed_kmh=speed, incline_pct=incline
        ).eased
        t += EASE_INTERVAL_S / 2
    assert caps == [(None, 1.0), (None, 0.0), (3.7, 0.0), (pytest.approx(3.4), 0.0)]


def test_the_caps_never_raise_anything() -> None:
    guard = HeartRateGuard()
    guard.new_workout(0.0)
    guard.check(guard_limits(), reading(135, 0.0), 0.0, walking=True, speed_kmh=4, incline_pct=3)
    assert guard.cap_speed(2.0) == 2.0
    assert guard.cap_incline(1.0) == 1.0
    assert guard.cap_incline(5.0) == 2.0


def test_the_caps_are_lifted_only_after_a_calm_minute() -> None:
    guard = HeartRateGuard()
    guard.new_workout(0.0)
    limits = guard_limits()
    guard.check(limits, reading(135, 0.0), 0.0, walking=True, speed_kmh=4, incline_pct=3)
    assert guard.capped
    calm_from = 1
    for t in range(calm_from, calm_from + int(RELEASE_AFTER_S)):
        check = guard.check(
            limits, reading(120, t), float(t), walking=True, speed_kmh=4, incline_pct=2
        )
        assert not check.released
        assert guard.capped
    t = calm_from + int(RELEASE_AFTER_S)
    check = guard.check(limits, reading(120, t), float(t), walking=True, speed_kmh=4, incline_pct=2)
    assert check.released
    assert not guard.capped


def test_above_the_hard_ceiling_the_verdict_is_a_pause() -> None:
    guard = HeartRateGuard()
    guard.new_workout(0.0)
    check = guard.check(
        guard_limits(), reading(141, 5.0), 5.0, walking=True, speed_kmh=3, incline_pct=0
    )
    assert check.verdict is HeartRateVerdict.CEILING


def test_no_verdict_while_not_walking() -> None:
    guard = HeartRateGuard()
    guard.new_workout(0.0)
    check = guard.check(
        guard_limits(heart_rate_required=True),
        None,
        100.0,
        walking=False,
        speed_kmh=None,
        incline_pct=None,
    )
    assert check.verdict is None


def test_a_missing_heart_rate_counts_from_the_last_valid_reading_or_the_start() -> None:
    limits = guard_limits(heart_rate_required=True, heart_rate_missing_s=15.0)
    guard = HeartRateGuard()
    guard.new_workout(0.0)
    guard.walking_again(10.0)

    def verdict(at: float, bpm: int | None = None) -> HeartRateVerdict | None:
        r = reading(bpm, at) if bpm is not None else None
        return guard.check(limits, r, at, walking=True, speed_kmh=3, incline_pct=0).verdict

    assert verdict(24.0) is None
    assert verdict(25.0) is HeartRateVerdict.MISSING
    guard.walking_again(30.0)
    assert verdict(31.0, 100) is None
    assert verdict(45.9) is None
    assert verdict(46.0) is HeartRateVerdict.MISSING


# --------------------------------------------------------------------------- the controller

BOUNDS = ZoneBounds(
    low_bpm=120,
    high_bpm=135,
    min_speed_kmh=2.0,
    max_speed_kmh=3.0,
    min_incline_pct=0,
    max_incline_pct=2,
)


def test_the_zone_is_a_dead_band() -> None:
    held = ZoneSetpoint(2.5, 1.0)
    for bpm in (120, 128, 135):
        assert decide(BOUNDS, held, reading(bpm, 0.0), 0.0, speed_may_change=True) == held


def test_below_the_zone_incline_rises_first_then_speed_never_faster_than_the_interval() -> None:
    held = ZoneSetpoint(2.5, 0.0)
    seen = []
    t = 0.0
    for _ in range(6):
        new = decide(BOUNDS, held, reading(100, t), t, speed_may_change=True)
        assert decide(BOUNDS, new, reading(100, t + 1), t + 1, speed_may_change=True) == new
        seen.append((round(new.speed_kmh, 2), new.incline_pct))
        held = new
        t += MIN_INTERVAL_S
    assert seen == [(2.5, 1.0), (2.5, 2.0), (2.7, 2.0), (2.9, 2.0), (3.0, 2.0), (3.0, 2.0)]


def test_above_the_zone_incline_comes_down_first_then_speed() -> None:
    held = ZoneSetpoint(2.2, 1.0)
    first = decide(BOUNDS, held, reading(150, 0.0), 0.0, speed_may_change=True)
    assert (first.speed_kmh, first.incline_pct) == (2.2, 0.0)
    second = decide(BOUNDS, first, reading(150, 40.0), 40.0, speed_may_change=True)
    assert (second.speed_kmh, second.incline_pct) == (2.0, 0.0)
    assert decide(BOUNDS, second, reading(150, 80.0), 80.0, speed_may_change=True) == second


def test_the_speed_never_changes_when_it_may_not() -> None:
    held = ZoneSetpoint(2.5, 2.0)  # incline at its top: speed would be next
    assert decide(BOUNDS, held, reading(100, 0.0), 0.0, speed_may_change=False) == held


def test_no_heart_rate_holds_the_setpoints() -> None:
    held = ZoneSetpoint(2.5, 1.0, changed_at=None)
    assert decide(BOUNDS, held, None, 100.0, speed_may_change=True) == held


def test_the_controller_goes_on_from_where_the_governor_let_it_settle() -> None:
    held = ZoneSetpoint(3.0, 2.0, changed_at=5.0)
    assert settle(held, speed_kmh=2.5, incline_pct=1.5) == ZoneSetpoint(2.5, 1.5, 5.0)
    assert settle(held, speed_kmh=3.5, incline_pct=3.0) == held


def test_zone_of() -> None:
    assert [zone_of(b, 120, 135) for b in (None, 119, 120, 135, 136)] == [
        None,
        "below",
        "in",
        "in",
        "above",
    ]


# --------------------------------------------------------------------------- the profile

ZONE = """
name = "zone"
title = "zone"
description = "test"
suits = "tests"
sources = ["test"]
[[segments]]
direction = "forward"
duration_s = 600
speed_kmh = 3.0
{extra}
"""


def test_a_zone_segment_is_checked_like_any_other() -> None:
    profile = parse_profile(
        ZONE.format(extra="heart_rate_zone = [60, 70]\nmax_incline_pct = 8\nmax_speed_kmh = 4"),
        file="zone.toml",
    )
    segment = profile.flat_segments()[0].segment
    assert segment.heart_rate_zone == (60.0, 70.0)
    assert segment.zone_speed_bounds() == (3.0, 4.0)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("heart_rate_zone = [70, 60]", "low < high"),
        ("heart_rate_zone = [20, 60]", "low < high"),
        ("max_incline_pct = 5", "add heart_rate_zone"),
        ("heart_rate_zone = [60, 70]\nmin_speed_kmh = 3.5", "between min_speed_kmh"),
        ("heart_rate_zone = [60, 70]\nramp = { to_speed_kmh = 4.0 }", "remove its ramp"),
    ],
)
def test_a_wrong_zone_segment_is_refused_with_a_hint(extra: str, says: str) -> None:
    with pytest.raises(ProfileError, match=says):
        parse_profile(ZONE.format(extra=extra), file="zone.toml")


def test_a_profile_cannot_claim_a_riders_maximum_heart_rate() -> None:
    text = ZONE.format(extra="").replace(
        'sources = ["test"]', 'sources = ["test"]\n[limits]\nhr_max_bpm = 190'
    )
    with pytest.raises(ProfileError, match="hr_max_bpm is a rider's own"):
        parse_profile(text, file="zone.toml")
