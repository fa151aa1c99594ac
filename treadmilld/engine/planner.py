"""The pure planner: profile x effective limits -> the exact timeline of setpoints.

No I/O and no clock: the same inputs always give the same plan, so `treadmilld profiles show`
and the golden tests show exactly what the executor will ask of the belt.

Rules the plan follows (design choices; docs/safety.md gives the sources):
- The belt starts from a pause at the restart speed (<= 1.0 km/h) and ramps at the ramp rate.
- Before every pause (a turn, a rest, the end) the belt ramps down to the restart speed inside the
  segment's own time, so a treadmill that resumes at its last target restarts slowly.
- A change of direction inserts a turn: belt paused for the turn time (countdown in its last
  3 s); in clinical mode it then waits for a confirm command and counts down 3-2-1.
- Incline changes only during steady walking, `steady_before_incline_s` after a speed change,
  and is lowered to the turn maximum while the belt is paused for a turn.
- Speeds and inclines are clamped to the effective limits and rounded to the treadmill's
  increment; contiguous backward walking is lengthened to the minimum backward bout and cut to
  the backward budget. Every such change is listed in `adjustments`.
"""

from __future__ import annotations

from treadmilld.engine.api import Direction
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.plan import (
    PlanAdjustment,
    PlanSegment,
    PlanStep,
    SegmentKind,
    StepKind,
    WorkoutPlan,
)
from treadmilld.engine.plan_limits import apply_backward_bounds, apply_segment_limits
from treadmilld.engine.plan_ramps import walk_segment
from treadmilld.engine.plan_turns import COUNTDOWN_S, turn_cue, turn_segment
from treadmilld.engine.plan_work import PlanCursor, WorkItem
from treadmilld.engine.profile import Profile

__all__ = [
    "COUNTDOWN_S",
    "PlanAdjustment",
    "PlanSegment",
    "PlanStep",
    "SegmentKind",
    "StepKind",
    "WorkoutPlan",
    "plan_workout",
    "turn_cue",
]

_EPS = 1e-9


def plan_workout(profile: Profile, limits: EffectiveLimits) -> WorkoutPlan:
    """The timeline for `profile` under `limits`.

    Raises `ProfileTooLongError` (from `Profile.flat_segments`, before unrolling anything) when
    the profile's repeat blocks exceed `MAX_EXPANDED_SEGMENTS` or `MAX_EXPANDED_S`: a loaded
    profile was refused already, but one built in code with `model_construct` or
    `model_copy(update=...)` skipped validation.
    """
    # Ramps that do not fit can lengthen a segment after the budget was applied; when that
    # pushes backward time over the budget, plan again with the budget shrunk by the excess.
    budget = limits.max_backward_s
    for _ in range(8):
        adjustments: list[PlanAdjustment] = []
        work = apply_segment_limits(profile, limits, adjustments)
        work = apply_backward_bounds(work, limits, adjustments, budget)
        plan = WorkoutPlan(
            profile=profile.name,
            title=profile.title,
            clinical=limits.clinical,
            limits=limits,
            segments=tuple(_lay_out(work, limits, adjustments)),
            adjustments=tuple(adjustments),
        )
        excess = plan.backward_s - limits.max_backward_s
        if excess <= _EPS:
            break
        budget = max(budget - excess, 0.0)
    return plan


def _needs_pause_after(work: list[WorkItem], index: int) -> bool:
    if index + 1 >= len(work):
        return True  # the end of the workout
    following = work[index + 1]
    return following.direction is not work[index].direction


def _lay_out(
    work: list[WorkItem], limits: EffectiveLimits, out: list[PlanAdjustment]
) -> list[PlanSegment]:
    cursor = PlanCursor()
    segments: list[PlanSegment] = []
    for index, item in enumerate(work):
        if item.direction is Direction.REST:
            segments.append(_rest_segment(len(segments), item, cursor))
            continue
        if cursor.facing is not None and item.direction is not cursor.facing:
            segments.append(turn_segment(len(segments), item.direction, cursor, limits))
        segments.append(
            walk_segment(
                len(segments),
                item,
                cursor,
                limits,
                pause_after=_needs_pause_after(work, index),
                out=out,
            )
        )
    return segments


def _rest_segment(index: int, item: WorkItem, cursor: PlanCursor) -> PlanSegment:
    step = PlanStep(
        cursor.t,
        item.duration_s,
        StepKind.REST,
        Direction.REST,
        0.0,
        0.0,
        cursor.incline,
        cursor.incline,
    )
    segment = PlanSegment(
        index,
        SegmentKind.REST,
        Direction.REST,
        cursor.t,
        item.duration_s,
        0.0,
        cursor.incline,
        item.cue or "Rest: the belt is paused.",
        item.origin,
        awaits_confirmation=False,
        steps=(step,),
    )
    cursor.t += item.duration_s
    cursor.moving = False
    cursor.speed = 0.0
    return segment
