"""The pure planner: golden plans for the built-in library, and the rules it follows."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from treadmilld.engine.api import Direction, Range
from treadmilld.engine.limits import (
    LimitConflictError,
    LimitSet,
    SafetyLimits,
    TreadmillRanges,
    effective_limits,
)
from treadmilld.engine.planner import SegmentKind, StepKind, WorkoutPlan, plan_workout
from treadmilld.engine.profile import (
    Profile,
    ProfileTooLongError,
    RepeatBlock,
    Segment,
    parse_profile,
)

from .golden_plans import CASES, golden_path, planned

HEADER = """
name = "t"
title = "T"
description = "d"
suits = "s"
sources = ["x"]
"""


def segment(direction: str, duration: float, speed: float = 0.0, incline: float = 0.0) -> str:
    speed_line = f"speed_kmh = {speed}\n" if direction != "rest" else ""
    return (
        f'[[segments]]\ndirection = "{direction}"\nduration_s = {duration}\n{speed_line}'
        f"incline_pct = {incline}\n"
    )


def plan(
    *segments: str,
    limits: SafetyLimits | None = None,
    clinical: bool = False,
    treadmill: TreadmillRanges | None = None,
) -> WorkoutPlan:
    profile = parse_profile(HEADER + "".join(segments), file="t.toml")
    return plan_workout(
        profile,
        effective_limits(limits or SafetyLimits(), clinical=clinical, treadmill=treadmill),
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_plan(case: str) -> None:
    expected = json.loads(golden_path(case).read_text())
    assert planned(case) == expected, (
        f"the plan for {case} changed; if deliberate, run "
        "`uv run --frozen python -m tests.engine.golden_plans` and review the diff"
    )


def test_golden_totals_match_the_reference_tables() -> None:
    # P1 stage A: 4 min forward, 8 x 60 s cycles, 2 min cool-down = 14 min; 8 x 10 s backward.
    p1 = planned("p1-starter-a")
    assert (p1["total_s"], p1["backward_s"], p1["turns"]) == (840.0, 80.0, 16)
    # P2: 180 + 3 x (10 + 180 + 10) + 2 x 60 + 120 = 1020 s, 9 min backward.
    p2 = planned("p2-retro-core")
    assert (p2["total_s"], p2["backward_s"]) == (1020.0, 540.0)
    # P4 is clinical: 20 s turns that wait for a confirm, then a 3 s countdown.
    p4 = planned("p4-neuro-gait")
    turns = [s for s in p4["segments"] if s["kind"] == "turn"]
    assert all(t["awaits_confirmation"] and t["duration_s"] == 23.0 for t in turns)
    # P6 jogs at 6.0 km/h only with the jog unlocked; otherwise it is held at 5.0.
    assert max(s["speed_kmh"] for s in planned("p6-backward-jog")["segments"]) == 5.0
    assert max(s["speed_kmh"] for s in planned("p6-backward-jog.jog-unlocked")["segments"]) == 6.0


def test_a_direction_change_inserts_a_turn_with_the_belt_ramped_down_first() -> None:
    result = plan(segment("forward", 60, 4.0), segment("backward", 60, 3.0))
    kinds = [s.kind for s in result.segments]
    assert kinds == [SegmentKind.WALK, SegmentKind.TURN, SegmentKind.WALK]
    forward, turn, backward = result.segments
    assert forward.steps[-1].kind is StepKind.RAMP
    assert forward.steps[-1].speed_kmh == 1.0
    assert turn.duration_s == 10.0
    assert turn.direction is Direction.BACKWARD
    assert backward.steps[0].starts_belt
    assert backward.steps[0].from_speed_kmh == 1.0
    # 1.0 -> 3.0 km/h at 0.5 km/h per s takes 4 s, inside the segment's 60 s.
    assert backward.steps[0].duration_s == 4.0
    assert result.total_s == 130.0


def test_same_direction_segments_ramp_between_speeds_without_pausing() -> None:
    result = plan(segment("forward", 60, 3.0), segment("forward", 60, 5.0))
    assert [s.kind for s in result.segments] == [SegmentKind.WALK, SegmentKind.WALK]
    second = result.segments[1]
    assert not second.steps[0].starts_belt
    assert (second.steps[0].from_speed_kmh, second.steps[0].speed_kmh) == (3.0, 5.0)


def test_a_rest_pauses_without_a_turn_and_a_turn_follows_it_when_direction_changes() -> None:
    same = plan(segment("backward", 60, 2.0), segment("rest", 30), segment("backward", 60, 2.0))
    assert [s.kind for s in same.segments] == [SegmentKind.WALK, SegmentKind.REST, SegmentKind.WALK]
    other = plan(segment("backward", 60, 2.0), segment("rest", 30), segment("forward", 60, 2.0))
    assert [s.kind for s in other.segments] == [
        SegmentKind.WALK,
        SegmentKind.REST,
        SegmentKind.TURN,
        SegmentKind.WALK,
    ]


def test_clinical_mode_uses_the_stricter_limits() -> None:
    result = plan(segment("forward", 60, 3.0), segment("backward", 60, 4.0), clinical=True)
    turn, backward = result.segments[1], result.segments[2]
    assert turn.awaits_confirmation
    assert turn.duration_s == 20.0 + 3.0
    assert backward.speed_kmh == 2.5  # clinical backward cap
    # 1.0 -> 2.5 at the clinical 0.2 km/h per s.
    assert backward.steps[0].duration_s == pytest.approx(7.5)
    assert [a.limit for a in result.adjustments] == ["max_backward_speed_kmh"]


def test_a_short_backward_bout_is_lengthened_to_the_minimum() -> None:
    result = plan(segment("forward", 60, 3.0), segment("backward", 10, 2.0), clinical=True)
    assert result.backward_s == 30.0
    assert "min_backward_segment_s" in [a.limit for a in result.adjustments]


def test_the_backward_budget_cuts_and_drops_backward_walking() -> None:
    limits = SafetyLimits(general=LimitSet(max_backward_s=100.0))
    result = plan(
        segment("backward", 80, 2.0),
        segment("forward", 30, 3.0),
        segment("backward", 80, 2.0),
        segment("forward", 30, 3.0),
        segment("backward", 80, 2.0),
        limits=limits,
    )
    assert result.backward_s <= 100.0
    backward = [
        s
        for s in result.segments
        if s.direction is Direction.BACKWARD and s.kind is SegmentKind.WALK
    ]
    assert [s.duration_s for s in backward] == [80.0, 20.0]


def test_speeds_respect_the_treadmill_range_and_increment() -> None:
    treadmill = TreadmillRanges(speed=Range(0.8, 4.0, 0.2), incline=Range(0.0, 6.0, 1.0))
    result = plan(segment("forward", 120, 6.0, incline=8.0), treadmill=treadmill)
    walk = result.segments[0]
    assert walk.speed_kmh == 4.0
    assert walk.incline_pct == 6.0
    assert all(round((step.speed_kmh - 0.8) / 0.2, 6).is_integer() for step in walk.steps)


def test_incline_changes_wait_for_steady_walking_and_drop_for_a_turn() -> None:
    result = plan(
        segment("forward", 60, 3.0),
        segment("backward", 60, 3.0, incline=8.0),
        segment("forward", 60, 3.0),
    )
    backward = result.segments[2]
    ramp_end = backward.steps[0].end_s
    change = next(s for s in backward.steps if s.incline_pct == 8.0)
    assert change.start_s == pytest.approx(ramp_end + 5.0)
    turn_back = result.segments[3]
    assert turn_back.kind is SegmentKind.TURN
    assert turn_back.incline_pct == 5.0


def test_a_treadmill_that_cannot_restart_slowly_cannot_be_planned_for() -> None:
    with pytest.raises(LimitConflictError, match="restart"):
        effective_limits(
            SafetyLimits(),
            clinical=False,
            treadmill=TreadmillRanges(speed=Range(1.6, 16.0, 0.1), incline=None),
        )


def test_a_profile_built_in_code_that_unrolls_past_the_limits_is_refused() -> None:
    base = parse_profile(HEADER + segment("forward", 60, 3.0), file="t.toml")
    backward = Segment(direction=Direction.BACKWARD, duration_s=10.0, speed_kmh=2.0)
    hostile = RepeatBlock(
        repeat=100,
        segments=[RepeatBlock(repeat=100, segments=[RepeatBlock(repeat=100, segments=[backward])])],
    )
    # Validation refuses it when the model is built...
    with pytest.raises(ValidationError) as invalid:
        Profile.model_validate({**base.model_dump(), "segments": [*base.segments, hostile]})
    assert "segments[1].repeat: the profile would unroll to 1,000,001 segments" in str(
        invalid.value
    )
    # ...and the planner refuses it when validation was skipped, before unrolling anything.
    unchecked = base.model_copy(update={"segments": [*base.segments, hostile]})
    with pytest.raises(ProfileTooLongError) as raised:
        plan_workout(unchecked, effective_limits(SafetyLimits(), clinical=False))
    count, time = raised.value.issues
    assert (count.file, count.field) == ("profile 't'", "segments[1].repeat")
    assert "would unroll to 1,000,001 segments, more than the 2,000" in count.message
    assert time.field == "segments[1].repeat"
    assert "more than the 4:00:00 (h:mm:ss) a profile may last" in time.message


def test_a_profile_at_the_segment_limit_is_planned_in_full() -> None:
    cycle = segment("forward", 3.5, 3.0) + segment("rest", 3.5)
    inner = cycle.replace("[[segments]]", "[[segments.segments.segments]]")
    result = plan(f"[[segments]]\nrepeat = 40\n[[segments.segments]]\nrepeat = 25\n{inner}")
    # 40 x 25 x (forward, rest): every one of the 2,000 segments is in the plan.
    assert len(result.segments) == 2000
    assert result.total_s == pytest.approx(2000 * 3.5)
