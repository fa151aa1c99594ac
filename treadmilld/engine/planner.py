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

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from treadmilld.engine.api import Direction
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.profile import Profile

# Seconds of 3-2-1 countdown before the belt restarts after a turn.
COUNTDOWN_S = 3
_EPS = 1e-9


class StepKind(StrEnum):
    WALK = "walk"  # steady speed and incline
    RAMP = "ramp"  # speed and/or incline changing linearly
    TURN = "turn"  # belt paused while the user turns round
    REST = "rest"  # belt paused, no turn


class SegmentKind(StrEnum):
    WALK = "walk"
    TURN = "turn"
    REST = "rest"


@dataclass(frozen=True, slots=True)
class PlanStep:
    start_s: float
    duration_s: float
    kind: StepKind
    direction: Direction  # facing for walk/ramp; the new facing for a turn; REST for a rest
    from_speed_kmh: float
    speed_kmh: float  # at the end of the step
    from_incline_pct: float
    incline_pct: float  # at the end of the step
    starts_belt: bool = False  # the belt starts (at the restart speed) as this step begins

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def rate_kmh_per_s(self) -> float:
        if self.duration_s <= 0:
            return 0.0
        return abs(self.speed_kmh - self.from_speed_kmh) / self.duration_s


@dataclass(frozen=True, slots=True)
class PlanSegment:
    index: int
    kind: SegmentKind
    direction: Direction  # walking direction; the new facing for a turn; REST for a rest
    start_s: float
    duration_s: float
    speed_kmh: float  # the segment's main (steady) speed; 0 while paused
    incline_pct: float
    cue: str | None
    origin: str  # where in the profile it comes from ("inserted turn" for turns)
    awaits_confirmation: bool
    steps: tuple[PlanStep, ...]

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class PlanAdjustment:
    """The plan changed what the profile asked for to keep a limit."""

    origin: str
    limit: str
    requested: float
    applied: float


@dataclass(frozen=True, slots=True)
class WorkoutPlan:
    profile: str
    title: str
    clinical: bool
    limits: EffectiveLimits
    segments: tuple[PlanSegment, ...]
    adjustments: tuple[PlanAdjustment, ...]

    @property
    def total_s(self) -> float:
        return self.segments[-1].end_s if self.segments else 0.0

    @property
    def backward_s(self) -> float:
        return self._time_in(Direction.BACKWARD)

    @property
    def forward_s(self) -> float:
        return self._time_in(Direction.FORWARD)

    @property
    def turn_count(self) -> int:
        return sum(1 for s in self.segments if s.kind is SegmentKind.TURN)

    def _time_in(self, direction: Direction) -> float:
        return sum(
            s.duration_s
            for s in self.segments
            if s.kind is SegmentKind.WALK and s.direction is direction
        )

    def to_json_dict(self) -> dict[str, Any]:
        """A stable, JSON-ready form (used by the golden plan files)."""
        limits = asdict(self.limits)
        limits.pop("decided_by")
        return {
            "profile": self.profile,
            "title": self.title,
            "clinical": self.clinical,
            "total_s": _r(self.total_s),
            "forward_s": _r(self.forward_s),
            "backward_s": _r(self.backward_s),
            "turns": self.turn_count,
            "limits": {k: _r(v) if isinstance(v, float) else v for k, v in limits.items()},
            "adjustments": [
                {**asdict(a), "requested": _r(a.requested), "applied": _r(a.applied)}
                for a in self.adjustments
            ],
            "segments": [
                {
                    "index": s.index,
                    "kind": s.kind.value,
                    "direction": s.direction.value,
                    "start_s": _r(s.start_s),
                    "duration_s": _r(s.duration_s),
                    "speed_kmh": _r(s.speed_kmh),
                    "incline_pct": _r(s.incline_pct),
                    "cue": s.cue,
                    "origin": s.origin,
                    "awaits_confirmation": s.awaits_confirmation,
                    "steps": [
                        {
                            "kind": st.kind.value,
                            "start_s": _r(st.start_s),
                            "duration_s": _r(st.duration_s),
                            "from_speed_kmh": _r(st.from_speed_kmh),
                            "speed_kmh": _r(st.speed_kmh),
                            "from_incline_pct": _r(st.from_incline_pct),
                            "incline_pct": _r(st.incline_pct),
                            "starts_belt": st.starts_belt,
                        }
                        for st in s.steps
                    ],
                }
                for s in self.segments
            ],
        }


def _r(value: float) -> float:
    return round(value, 3)


@dataclass(slots=True)
class _Work:
    direction: Direction
    duration_s: float
    speed_kmh: float
    incline_pct: float
    to_speed_kmh: float | None
    to_incline_pct: float | None
    cue: str | None
    origin: str


def turn_cue(to_direction: Direction) -> str:
    facing = "the back of the treadmill" if to_direction is Direction.BACKWARD else "the console"
    return f"Belt stopping. Turn round to face {facing} and hold the rails."


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
        work = _apply_segment_limits(profile, limits, adjustments)
        work = _apply_backward_bounds(work, limits, adjustments, budget)
        segments = _lay_out(work, limits, adjustments)
        backward = sum(
            s.duration_s
            for s in segments
            if s.kind is SegmentKind.WALK and s.direction is Direction.BACKWARD
        )
        excess = backward - limits.max_backward_s
        if excess <= _EPS:
            break
        budget = max(budget - excess, 0.0)
    return WorkoutPlan(
        profile=profile.name,
        title=profile.title,
        clinical=limits.clinical,
        limits=limits,
        segments=tuple(segments),
        adjustments=tuple(adjustments),
    )


def _clamp_speed(
    value: float,
    direction: Direction,
    limits: EffectiveLimits,
    origin: str,
    out: list[PlanAdjustment],
) -> float:
    cap = limits.max_speed_kmh(direction)
    applied = min(max(limits.quantize_speed(value), limits.min_speed_kmh), cap)
    if value > cap + _EPS:
        limit = (
            "max_backward_speed_kmh"
            if direction is Direction.BACKWARD
            else ("max_forward_speed_kmh")
        )
        out.append(PlanAdjustment(origin, limit, value, applied))
    elif value < limits.min_speed_kmh - _EPS:
        out.append(PlanAdjustment(origin, "min_speed_kmh", value, applied))
    return applied


def _clamp_incline(
    value: float,
    direction: Direction,
    limits: EffectiveLimits,
    origin: str,
    out: list[PlanAdjustment],
) -> float:
    if not limits.incline_controllable:
        if value != 0:
            out.append(PlanAdjustment(origin, "incline_not_controllable", value, 0.0))
        return 0.0
    cap = limits.max_incline_pct(direction)
    applied = min(max(limits.quantize_incline(value), limits.min_incline_pct), cap)
    applied = limits.quantize_incline(applied, toward=limits.min_incline_pct)
    if value > cap + _EPS:
        limit = (
            "max_backward_incline_pct"
            if direction is Direction.BACKWARD
            else ("max_forward_incline_pct")
        )
        out.append(PlanAdjustment(origin, limit, value, applied))
    elif value < limits.min_incline_pct - _EPS:
        out.append(PlanAdjustment(origin, "min_incline_pct", value, applied))
    return applied


def _apply_segment_limits(
    profile: Profile, limits: EffectiveLimits, out: list[PlanAdjustment]
) -> list[_Work]:
    work: list[_Work] = []
    for flat in profile.flat_segments():
        seg = flat.segment
        if seg.direction is Direction.REST:
            work.append(
                _Work(Direction.REST, seg.duration_s, 0.0, 0.0, None, None, seg.cue, flat.origin)
            )
            continue
        speed = _clamp_speed(seg.speed_kmh, seg.direction, limits, flat.origin, out)
        incline = _clamp_incline(seg.incline_pct, seg.direction, limits, flat.origin, out)
        to_speed = to_incline = None
        if seg.ramp is not None:
            if seg.ramp.to_speed_kmh is not None:
                to_speed = _clamp_speed(
                    seg.ramp.to_speed_kmh, seg.direction, limits, f"{flat.origin}.ramp", out
                )
            if seg.ramp.to_incline_pct is not None:
                to_incline = _clamp_incline(
                    seg.ramp.to_incline_pct, seg.direction, limits, f"{flat.origin}.ramp", out
                )
        work.append(
            _Work(
                seg.direction,
                seg.duration_s,
                speed,
                incline,
                to_speed,
                to_incline,
                seg.cue,
                flat.origin,
            )
        )
    return work


def _apply_backward_bounds(
    work: list[_Work], limits: EffectiveLimits, out: list[PlanAdjustment], budget: float
) -> list[_Work]:
    # Minimum backward bout: contiguous backward walking (no rest or turn in between).
    index = 0
    while index < len(work):
        if work[index].direction is not Direction.BACKWARD:
            index += 1
            continue
        end = index
        while end + 1 < len(work) and work[end + 1].direction is Direction.BACKWARD:
            end += 1
        bout = sum(w.duration_s for w in work[index : end + 1])
        if bout < limits.min_backward_segment_s - _EPS:
            last = work[end]
            new_duration = last.duration_s + limits.min_backward_segment_s - bout
            out.append(
                PlanAdjustment(last.origin, "min_backward_segment_s", last.duration_s, new_duration)
            )
            last.duration_s = new_duration
        index = end + 1
    # Backward budget per session: cut the bout that crosses it (unless what is left is
    # shorter than the minimum bout: then drop it), and drop every later backward segment.
    kept: list[_Work] = []
    in_bout = False
    for item in work:
        if item.direction is not Direction.BACKWARD:
            in_bout = False
            kept.append(item)
            continue
        starting_bout = not in_bout
        in_bout = True
        too_short = starting_bout and budget < limits.min_backward_segment_s - _EPS
        if budget <= _EPS or too_short:
            out.append(PlanAdjustment(item.origin, "max_backward_s", item.duration_s, 0.0))
            budget = 0.0
            continue
        kept_item = item
        if item.duration_s > budget + _EPS:
            out.append(PlanAdjustment(item.origin, "max_backward_s", item.duration_s, budget))
            kept_item = replace(item, duration_s=budget)
        budget -= kept_item.duration_s
        kept.append(kept_item)
    return kept


def _needs_pause_after(work: list[_Work], index: int) -> bool:
    if index + 1 >= len(work):
        return True  # the end of the workout
    following = work[index + 1]
    return following.direction is not work[index].direction


class _Cursor:
    """The belt as the plan leaves it: time, commanded speed/incline, facing, paused or not."""

    def __init__(self) -> None:
        self.t = 0.0
        self.speed = 0.0
        self.incline = 0.0
        self.facing: Direction | None = None
        self.moving = False
        self.last_speed_change_end = -1e9


def _lay_out(
    work: list[_Work], limits: EffectiveLimits, out: list[PlanAdjustment]
) -> list[PlanSegment]:
    cursor = _Cursor()
    segments: list[PlanSegment] = []
    for index, item in enumerate(work):
        if item.direction is Direction.REST:
            segments.append(_rest_segment(len(segments), item, cursor))
            continue
        if cursor.facing is not None and item.direction is not cursor.facing:
            segments.append(_turn_segment(len(segments), item.direction, cursor, limits))
        segments.append(
            _walk_segment(
                len(segments),
                item,
                cursor,
                limits,
                pause_after=_needs_pause_after(work, index),
                out=out,
            )
        )
    return segments


def _rest_segment(index: int, item: _Work, cursor: _Cursor) -> PlanSegment:
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


def _turn_segment(
    index: int, to_direction: Direction, cursor: _Cursor, limits: EffectiveLimits
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


def _walk_segment(  # noqa: PLR0915 - one timeline, read top to bottom
    index: int,
    item: _Work,
    cursor: _Cursor,
    limits: EffectiveLimits,
    *,
    pause_after: bool,
    out: list[PlanAdjustment],
) -> PlanSegment:
    rate = limits.ramp_rate_kmh_per_s
    restart = limits.restart_speed_kmh
    start = cursor.t
    starts_belt = not cursor.moving
    s0 = restart if starts_belt else cursor.speed
    target = item.speed_kmh
    final = item.to_speed_kmh if item.to_speed_kmh is not None else target
    duration = item.duration_s

    def ramp_down_s(from_speed: float) -> float:
        return max(from_speed - restart, 0.0) / rate if pause_after else 0.0

    # Ramps happen inside the segment's time; if they do not fit, walk a lower peak.
    if abs(target - s0) / rate + ramp_down_s(final) > duration + _EPS:
        if pause_after:
            peak = max(min(target, (duration * rate + s0 + restart) / 2), s0)
            peak = target if target < s0 else peak
        else:
            reach = duration * rate
            peak = s0 + reach if target >= s0 else s0 - reach
        peak = limits.quantize_speed(peak, toward=s0)
        out.append(PlanAdjustment(item.origin, "ramp_rate_kmh_per_s", target, peak))
        target = final = peak
        needed = abs(target - s0) / rate + ramp_down_s(final)
        if needed > duration + _EPS:
            out.append(PlanAdjustment(item.origin, "segment_lengthened_s", duration, needed))
            duration = needed

    steps: list[PlanStep] = []
    t = start
    incline = cursor.incline

    def add(
        kind: StepKind,
        length: float,
        speeds: tuple[float, float],
        inclines: tuple[float, float],
        *,
        marker: bool = False,
    ) -> None:
        nonlocal t
        first = not steps
        if length <= _EPS and not marker and not (starts_belt and first):
            return
        length = max(length, 0.0)
        steps.append(
            PlanStep(
                t,
                length,
                kind,
                item.direction,
                speeds[0],
                speeds[1],
                inclines[0],
                inclines[1],
                starts_belt=starts_belt and first,
            )
        )
        t += length

    up = abs(target - s0) / rate
    add(StepKind.RAMP if up > _EPS else StepKind.WALK, up, (s0, target), (incline, incline))
    if up > _EPS or starts_belt:
        cursor.last_speed_change_end = t
    down = ramp_down_s(final)
    steady_end = start + duration - down

    # Incline changes during steady walking, some seconds after the last speed change; a
    # zero-length step marks the write.
    if abs(item.incline_pct - incline) > _EPS:
        change_at = min(
            max(t, cursor.last_speed_change_end + limits.steady_before_incline_s), steady_end
        )
        add(StepKind.WALK, change_at - t, (target, target), (incline, incline))
        add(StepKind.WALK, 0.0, (target, target), (incline, item.incline_pct), marker=True)
        incline = item.incline_pct

    steady = max(steady_end - t, 0.0)
    to_incline = item.to_incline_pct if item.to_incline_pct is not None else incline
    if abs(final - target) > _EPS or abs(to_incline - incline) > _EPS:
        if abs(final - target) > steady * rate + _EPS:
            reachable = target + steady * rate if final > target else target - steady * rate
            reachable = limits.quantize_speed(reachable, toward=target)
            out.append(
                PlanAdjustment(f"{item.origin}.ramp", "ramp_rate_kmh_per_s", final, reachable)
            )
            final = reachable
        add(StepKind.RAMP, steady, (target, final), (incline, to_incline))
        cursor.last_speed_change_end = t
    else:
        add(StepKind.WALK, steady, (target, target), (incline, incline))
    incline = to_incline
    if pause_after and final > restart + _EPS:
        add(StepKind.RAMP, start + duration - t, (final, restart), (incline, incline))
        cursor.speed = restart
    else:
        cursor.speed = final
    cursor.t = start + duration
    cursor.incline = incline
    cursor.facing = item.direction
    cursor.moving = not pause_after
    return PlanSegment(
        index,
        SegmentKind.WALK,
        item.direction,
        start,
        duration,
        target,
        item.incline_pct,
        item.cue,
        item.origin,
        awaits_confirmation=False,
        steps=tuple(steps),
    )
