"""Ramp building: one walking segment as steps, the belt ramping at the ramp rate to the
segment's speed (from the restart speed when it starts), an incline change once walking is
steady, a ramp within the segment, and the ramp down to the restart speed before a pause, all
inside the segment's own time (a lower peak, or a longer segment, when they do not fit)."""

from __future__ import annotations

from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.plan import PlanAdjustment, PlanSegment, PlanStep, SegmentKind, StepKind
from treadmilld.engine.plan_work import PlanCursor, WorkItem

_EPS = 1e-9


def walk_segment(  # noqa: PLR0915 - one timeline, read top to bottom
    index: int,
    item: WorkItem,
    cursor: PlanCursor,
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
        heart_rate_zone=item.zone,
    )
