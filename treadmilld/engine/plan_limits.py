"""The profile's segments under the limits, before any timeline: speeds and inclines clamped
and rounded to the treadmill's increment, contiguous backward walking lengthened to the minimum
bout and cut to the backward budget. Every change is recorded as a `PlanAdjustment`."""

from __future__ import annotations

from dataclasses import replace

from treadmilld.engine.api import Direction
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.plan import PlanAdjustment, PlanZone
from treadmilld.engine.plan_work import WorkItem
from treadmilld.engine.profile import Profile, Segment

_EPS = 1e-9


def _noted(
    out: list[PlanAdjustment],
    origin: str,
    value: float,
    applied: float,
    *,
    cap: tuple[float, str],
    floor: tuple[float, str],
) -> float:
    """`applied`, with the limit that changed `value` (the cap or the floor, as value and name)
    recorded."""
    if value > cap[0] + _EPS:
        out.append(PlanAdjustment(origin, cap[1], value, applied))
    elif value < floor[0] - _EPS:
        out.append(PlanAdjustment(origin, floor[1], value, applied))
    return applied


def _clamp_speed(
    value: float,
    direction: Direction,
    limits: EffectiveLimits,
    origin: str,
    out: list[PlanAdjustment],
) -> float:
    cap = (limits.max_speed_kmh(direction), limits.max_speed_limit(direction))
    floor = (limits.min_speed_kmh, "min_speed_kmh")
    applied = min(max(limits.quantize_speed(value), floor[0]), cap[0])
    return _noted(out, origin, value, applied, cap=cap, floor=floor)


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
    cap = (limits.max_incline_pct(direction), limits.max_incline_limit(direction))
    floor = (limits.min_incline_pct, "min_incline_pct")
    applied = min(max(limits.quantize_incline(value), floor[0]), cap[0])
    applied = limits.quantize_incline(applied, toward=floor[0])
    return _noted(out, origin, value, applied, cap=cap, floor=floor)


def apply_segment_limits(
    profile: Profile, limits: EffectiveLimits, out: list[PlanAdjustment]
) -> list[WorkItem]:
    """Each profile segment, unrolled, with its speeds and inclines inside the limits."""
    work: list[WorkItem] = []
    for flat in profile.flat_segments():
        seg = flat.segment
        if seg.direction is Direction.REST:
            work.append(
                WorkItem(Direction.REST, seg.duration_s, 0.0, 0.0, None, None, seg.cue, flat.origin)
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
            WorkItem(
                seg.direction,
                seg.duration_s,
                speed,
                incline,
                to_speed,
                to_incline,
                seg.cue,
                flat.origin,
                zone=_zone(seg, speed, incline, limits, flat.origin, out),
            )
        )
    return work


def _zone(  # noqa: PLR0917 - the segment, where it starts, and what _clamp_* need
    seg: Segment,
    speed: float,
    incline: float,
    limits: EffectiveLimits,
    origin: str,
    out: list[PlanAdjustment],
) -> PlanZone | None:
    """A zone segment's bounds inside the limits (never below where it starts)."""
    if seg.heart_rate_zone is None:
        return None
    low_speed, high_speed = seg.zone_speed_bounds()
    top_incline = seg.max_incline_pct if seg.max_incline_pct is not None else seg.incline_pct
    low, high = seg.heart_rate_zone
    return PlanZone(
        low_pct=low,
        high_pct=high,
        min_speed_kmh=min(
            _clamp_speed(low_speed, seg.direction, limits, f"{origin}.min_speed_kmh", out), speed
        ),
        max_speed_kmh=max(
            _clamp_speed(high_speed, seg.direction, limits, f"{origin}.max_speed_kmh", out), speed
        ),
        max_incline_pct=max(
            _clamp_incline(top_incline, seg.direction, limits, f"{origin}.max_incline_pct", out),
            incline,
        ),
    )


def apply_backward_bounds(
    work: list[WorkItem], limits: EffectiveLimits, out: list[PlanAdjustment], budget: float
) -> list[WorkItem]:
    """Backward walking lengthened to the minimum bout, then cut to `budget` seconds."""
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
    kept: list[WorkItem] = []
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
