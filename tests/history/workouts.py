"""Recorded workouts for the export tests: one written out by hand, and a Hypothesis strategy
for any shape a recorder can leave (segments of every direction, gaps between them, skipped and
cut segments, any number of samples, heart rate always, never or now and then, no summary)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from treadmilld.engine.api import Direction
from treadmilld.history.records import (
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)

STARTED_AT = datetime(2026, 11, 30, 9, 15, 0, tzinfo=UTC)


def interval_workout(*, heart_rate: bool = True) -> WorkoutRecord:
    """Forward 30 s at 3 km/h, backward 30 s at 2 km/h with 1 % incline, rest 10 s, then
    backward again 20 s at 2.5 km/h, stopped 5 s into the last segment's planned 20 s."""
    plan = (
        (Direction.FORWARD, 30, 3.0, 0.0),
        (Direction.BACKWARD, 30, 2.0, 1.0),
        (Direction.REST, 10, 0.0, 0.0),
        (Direction.BACKWARD, 20, 2.5, 0.0),
    )
    return walk(plan, stopped_after_s=75.0, heart_rate=heart_rate, kcal=6.4)


def walk(
    plan: tuple[tuple[Direction, int, float, float], ...],
    *,
    stopped_after_s: float | None = None,
    heart_rate: bool = True,
    kcal: float | None = 5.0,
    gap_s: float = 0.0,
) -> WorkoutRecord:
    """A workout that ran `plan` (direction, seconds, km/h, incline %) at exactly its planned
    speeds, a sample each second, `gap_s` standing still between segments."""
    segments: list[SegmentRecord] = []
    at = 0.0
    for index, (direction, seconds, speed, incline) in enumerate(plan):
        segments.append(
            SegmentRecord(
                index=index,
                direction=direction,
                planned_duration_s=seconds,
                planned_speed_kmh=speed,
                planned_incline_pct=incline,
                started_at_s=at,
                ended_at_s=at + seconds,
                distance_m=0.0 if direction is Direction.REST else speed / 3.6 * seconds,
                completed=True,
            )
        )
        at += seconds + gap_s
    end = at - gap_s if stopped_after_s is None else stopped_after_s
    if stopped_after_s is not None:
        cut = [s for s in segments if s.started_at_s < end]
        last = cut[-1]
        cut[-1] = replace(
            last,
            ended_at_s=None,
            completed=False,
            distance_m=last.planned_speed_kmh / 3.6 * (end - last.started_at_s),
        )
        segments = cut
    samples = _samples(segments, end, heart_rate=heart_rate)
    return _record(segments, samples, end, kcal)


def _samples(segments: list[SegmentRecord], end: float, *, heart_rate: bool) -> list[Sample]:
    samples: list[Sample] = []
    forward = backward = 0.0
    second = 0
    while second < end:
        current = [s for s in segments if s.started_at_s <= second]
        segment = current[-1] if current else None
        in_segment = segment is not None and (
            segment.ended_at_s is None or second < segment.ended_at_s
        )
        direction = segment.direction if segment is not None and in_segment else Direction.REST
        speed = segment.planned_speed_kmh if segment is not None and in_segment else 0.0
        incline = segment.planned_incline_pct if segment is not None else None
        samples.append(
            Sample(
                at_s=float(second),
                speed_kmh=speed,
                incline_pct=incline,
                direction=direction,
                distance_forward_m=forward,
                distance_backward_m=backward,
                heart_rate_bpm=(95 + second % 40) if heart_rate else None,
            )
        )
        step = speed / 3.6 * min(1.0, end - second)
        if direction is Direction.BACKWARD:
            backward += step
        elif direction is Direction.FORWARD:
            forward += step
        second += 1
    return samples


def _record(
    segments: list[SegmentRecord], samples: list[Sample], end: float, kcal: float | None
) -> WorkoutRecord:
    last = samples[-1] if samples else None
    forward = backward = 0.0
    if last is not None:
        step = last.speed_kmh / 3.6 * max(end - last.at_s, 0.0)
        forward = last.distance_forward_m + (step if last.direction is Direction.FORWARD else 0)
        backward = last.distance_backward_m + (step if last.direction is Direction.BACKWARD else 0)
    return WorkoutRecord(
        workout_id="w-0001",
        treadmill_id="deck-1",
        profile_name="P2 backward intervals",
        started_at=STARTED_AT,
        outcome=WorkoutOutcome.STOPPED,
        segments=tuple(segments),
        samples=tuple(samples),
        summary=None
        if kcal is None
        else WorkoutSummary(
            duration_s=end, distance_forward_m=forward, distance_backward_m=backward, kcal=kcal
        ),
    )


_DIRECTIONS = st.sampled_from(list(Direction))


@st.composite
def recorded_workouts(draw: st.DrawFn) -> WorkoutRecord:
    """Any workout a recorder can leave, kept short (at most about four minutes)."""
    count = draw(st.integers(min_value=0, max_value=8))
    segments: list[SegmentRecord] = []
    at = draw(st.floats(min_value=0.0, max_value=5.0))  # a countdown before the first
    for index in range(count):
        direction = draw(_DIRECTIONS)
        planned = float(draw(st.integers(min_value=1, max_value=30)))
        speed = 0.0 if direction is Direction.REST else draw(st.floats(0.5, 9.0))
        ran = draw(st.sampled_from(["completed", "skipped", "cut"]))
        duration = planned if ran == "completed" else draw(st.floats(0.0, planned))
        segments.append(
            SegmentRecord(
                index=index,
                direction=direction,
                planned_duration_s=planned,
                planned_speed_kmh=speed,
                planned_incline_pct=draw(st.floats(-3.0, 15.0)),
                started_at_s=at,
                ended_at_s=at + duration,
                distance_m=speed / 3.6 * duration,
                completed=ran == "completed",
            )
        )
        at += duration + draw(st.floats(min_value=0.0, max_value=4.0))  # waiting for a turn
    end = at if segments else draw(st.floats(min_value=0.0, max_value=60.0))
    ended_inside = draw(st.booleans())  # the workout ended inside its last segment
    if segments and ended_inside:
        segments[-1] = replace(segments[-1], ended_at_s=None, completed=False)
    heart_rate = draw(st.sampled_from(["always", "never", "sometimes"]))
    sample_count = draw(st.integers(min_value=0, max_value=int(end) + 1))
    samples: list[Sample] = []
    forward = backward = 0.0
    for second in range(sample_count):
        at_s = min(second + draw(st.floats(0.0, 0.3)), end)
        direction = draw(_DIRECTIONS)
        speed = 0.0 if direction is Direction.REST else draw(st.floats(0.0, 9.0))
        bpm = draw(st.integers(40, 210))
        samples.append(
            Sample(
                at_s=at_s,
                speed_kmh=speed,
                incline_pct=draw(st.one_of(st.none(), st.floats(-3.0, 15.0))),
                direction=direction,
                distance_forward_m=forward,
                distance_backward_m=backward,
                heart_rate_bpm=bpm
                if heart_rate == "always" or (heart_rate == "sometimes" and draw(st.booleans()))
                else None,
            )
        )
        if direction is Direction.FORWARD:
            forward += speed / 3.6
        elif direction is Direction.BACKWARD:
            backward += speed / 3.6
    has_summary = draw(st.booleans())
    summary = (
        WorkoutSummary(
            duration_s=end,
            distance_forward_m=forward,
            distance_backward_m=backward,
            kcal=draw(st.floats(0.0, 900.0)),
        )
        if has_summary
        else None
    )
    started = STARTED_AT + timedelta(
        seconds=draw(st.integers(0, 10**8)), microseconds=draw(st.integers(0, 999_999))
    )
    return WorkoutRecord(
        workout_id="w-prop",
        treadmill_id="deck-1",
        profile_name=draw(st.sampled_from(["P1", "P4 clinical <retro> & co"])),
        started_at=started,
        outcome=WorkoutOutcome.FINISHED if has_summary else WorkoutOutcome.INTERRUPTED,
        segments=tuple(segments),
        samples=tuple(samples),
        summary=summary,
    )
