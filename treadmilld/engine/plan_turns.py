"""Turn insertion: where the walking direction changes, the belt pauses for the turn time (the
cue asks the person to turn round; in clinical mode a confirm command and a 3-2-1 countdown
follow), and the incline comes down to the turn maximum meanwhile."""

from __future__ import annotations

from treadmilld.engine.api import Direction
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.plan import PlanSegment, PlanStep, SegmentKind, StepKind
from treadmilld.engine.plan_work import PlanCursor

# Seconds of 3-2-1 countdown before the belt restarts after a turn.
COUNTDOWN_S = 3


def turn_cue(to_direction: Direction) -> str:
    facing = "the back of the treadmill" if to_direction is Direction.BACKWARD else "the console"
    return f"Belt stopping. Turn round to face {facing} and hold the rails."


def turn_segment(
    index: int, to_direction: Direction, cursor: PlanCursor, limits: EffectiveLimits
) -> PlanSegment:
    incline = cursor.incline
    if limits.incline_controllable:
        cap = min(limits.max_turn_incline_pct, limits.max_incline_pct(to_direction))
        if incline > cap:
            incline = limits.quantize_incline(cap, toward=limits.min_incline_pct)
    steps = [
        PlanStep(
            cursor.t,
            limits.turn_pause_s,
            StepKind.TURN,
            to_direction,
            0.0,
            0.0,
            cursor.incline,
            incline,
        )
    ]
    duration = limits.turn_pause_s
    if limits.confirm_turns:
        steps.append(
            PlanStep(
                cursor.t + duration,
                float(COUNTDOWN_S),
                StepKind.TURN,
                to_direction,
                0.0,
                0.0,
                incline,
                incline,
            )
        )
        duration += COUNTDOWN_S
    segment = PlanSegment(
        index,
        SegmentKind.TURN,
        to_direction,
        cursor.t,
        duration,
        0.0,
        incline,
        turn_cue(to_direction),
        "inserted turn",
        limits.confirm_turns,
        tuple(steps),
    )
    cursor.t += duration
    cursor.incline = incline
    cursor.moving = False
    cursor.speed = 0.0
    return segment
