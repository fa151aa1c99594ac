"""The walk on plan time: each step of a walk segment placed at `plan_origin + start_s`, a
ramp's inner writes paced by the governor's answer-based allowance and its final speed written
at the ramp's end, never before; the backward budget checked before every raise; a
heart-rate-guided walk steered by the zone controller (`engine/heart_rate_control.py`) in its
steady step, once a tick. One layer of `WorkoutExecutor` (see `engine/executor_core.py`)."""

from __future__ import annotations

from treadmilld.engine.api import Direction, Phase
from treadmilld.engine.executor_core import EPS, SkipSegment
from treadmilld.engine.executor_turns import TurnSteps
from treadmilld.engine.heart_rate_control import ZoneBounds, ZoneSetpoint, decide, settle
from treadmilld.engine.limit_clamps import ramp_window_s
from treadmilld.engine.planner import PlanSegment, PlanStep, StepKind


class WalkSteps(TurnSteps):
    async def _walk(self, segment: PlanSegment) -> None:
        self._set_phase(Phase.RUNNING)
        self._nudgeable_segment = segment.index
        try:
            for step in segment.steps:
                await self._moving_step(segment, step)
                self._check_backward_budget(segment)
        finally:
            self._nudgeable_segment = None
            self._ramping_down_for_pause = False

    def _desired(self, step: PlanStep, elapsed: float, last_ramp_down: bool) -> tuple[float, float]:
        fraction = 1.0 if step.duration_s <= 0 else min(max(elapsed / step.duration_s, 0.0), 1.0)
        speed = step.from_speed_kmh + (step.speed_kmh - step.from_speed_kmh) * fraction
        incline = step.from_incline_pct + (step.incline_pct - step.from_incline_pct) * fraction
        if step.duration_s <= 0:
            incline = step.incline_pct
        if self._zone_held is not None and step.kind is StepKind.WALK:
            speed, incline = self._zone_held.speed_kmh, self._zone_held.incline_pct
        if self._speed_override is not None and not last_ramp_down:
            speed = self._speed_override
        if self._incline_override is not None:
            incline = self._incline_override
        return speed, incline

    async def _moving_step(self, segment: PlanSegment, step: PlanStep) -> None:
        governor = self._governor
        if not governor.belt_moving:
            # Not just any budget left: a backward Start needs the margin too (at least the
            # Pause's late answer), as a resume does; a walk begun on less than that ends
            # with its Pause landing after the budget.
            if (
                segment.direction is Direction.BACKWARD
                and governor.backward_remaining_s() <= self._backward_margin_s() + EPS
            ):
                self._log.warning("backward_budget_used", segment=segment.index)
                raise SkipSegment
            if governor.needs_turn(segment.direction):
                await self._turn_before_start(segment.direction)
            await governor.start_belt(segment.direction)
            # The plan goes on from the moment the belt is measured moving: this step begins
            # now, whatever starting it took.
            self._plan_origin = None
        if self._plan_origin is None:
            self._plan_origin = self._clock.now() - step.start_s
        last_ramp_down = (
            step is segment.steps[-1]
            and step.kind is StepKind.RAMP
            and step.speed_kmh < step.from_speed_kmh
            and governor.limits is not None
            and step.speed_kmh <= governor.limits.restart_speed_kmh + EPS
        )
        self._ramping_down_for_pause = last_ramp_down
        while True:
            await self._checkpoint(skippable=True)
            if not governor.belt_moving:
                await governor.start_belt(segment.direction)
            self._check_backward_budget(segment)
            # On plan time: a pause moved the origin by its length, so the step resumes where
            # it was; a write answered late does not move it, so later steps do not drift.
            start = (self._plan_origin if self._plan_origin is not None else 0.0) + step.start_s
            deadline = start + step.duration_s
            now = self._clock.now()
            ending = now >= deadline - EPS
            tick = self._ramp_tick_s()
            steering = segment.heart_rate_zone is not None and step.kind is StepKind.WALK
            if steering and not ending:
                self._steer(segment, step, now)
            speed, incline = self._setpoints(step, now, start, deadline, last_ramp_down)
            if not ending and self._inner_write_delays_the_end(step, speed, now, deadline):
                # The ramp's final speed is reachable at its end from where the target is now,
                # and this inner write would leave too little time after it for that. The wait
                # still ends early at the backward budget's deadline, as every wait here does.
                budget_at = self._backward_budget_deadline(segment)
                wake_at = (
                    deadline if budget_at is None else max(min(deadline, budget_at), now + EPS)
                )
                await self._sleep_until(wake_at)
                continue
            if speed > (governor.target_speed_kmh or 0.0):
                self._check_backward_budget(segment, next_kmh=self._next_write_kmh(speed))
            written_before = governor.target_written_at
            changing = await self._apply(speed, incline, segment)
            if ending:
                return
            wake_at = self._next_look(step, deadline, now, written_before, changing=changing)
            if steering:
                wake_at = min(wake_at, now + tick)  # the zone controller looks once a tick
            budget_at = self._backward_budget_deadline(segment)
            if budget_at is not None:
                wake_at = max(min(wake_at, budget_at), now + EPS)
            await self._sleep_until(wake_at)

    def _next_look(
        self, step: PlanStep, deadline: float, now: float, written_before: float, *, changing: bool
    ) -> float:
        """When the step is looked at again: at its end, or inside a ramp (or a governed change)
        at the next ramp write, when the governor allows a whole step again, counted from the
        last write's answer (its ramp allowance counts from there); the step's final value
        waits for the step's end."""
        if not (changing or step.kind is StepKind.RAMP):
            return deadline
        governor = self._governor
        wrote = governor.target_written_at > written_before
        return min(deadline, (governor.target_written_at if wrote else now) + self._ramp_tick_s())

    def zone_bounds(self, segment: PlanSegment | None = None) -> ZoneBounds | None:
        """The heart-rate zone (bpm) and bounds of `segment` (default: the current one), or
        None when it is no heart-rate-guided walk or the rider's HRmax is unknown."""
        segment = segment or self.segment
        zone = segment.heart_rate_zone
        limits = self._governor.limits
        if zone is None or limits is None or limits.hr_max_bpm is None:
            return None
        return ZoneBounds(
            low_bpm=limits.hr_max_bpm * zone.low_pct / 100.0,
            high_bpm=limits.hr_max_bpm * zone.high_pct / 100.0,
            min_speed_kmh=zone.min_speed_kmh,
            max_speed_kmh=zone.max_speed_kmh,
            min_incline_pct=max(limits.min_incline_pct, 0.0),
            max_incline_pct=zone.max_incline_pct,
        )

    def _steer(self, segment: PlanSegment, step: PlanStep, now: float) -> None:
        """One look of the zone controller in a zone walk's steady step; the speed may change
        only while the belt walks (never in a turn: the executor is in none here)."""
        bounds = self.zone_bounds(segment)
        if bounds is None:
            return
        governor = self._governor
        held = self._zone_held or ZoneSetpoint(step.speed_kmh, step.incline_pct)
        decided = decide(
            bounds,
            held,
            self._heart_rate(),
            now,
            speed_may_change=governor.belt_moving and self.phase is Phase.RUNNING,
        )
        # Where the governor lets them settle: the controller never asks beyond a limit.
        settled = settle(
            decided,
            speed_kmh=governor.speed_target_for(decided.speed_kmh)[0],
            incline_pct=governor.incline_target_for(decided.incline_pct)[0],
        )
        if settled != held and (
            settled.speed_kmh != held.speed_kmh or settled.incline_pct != held.incline_pct
        ):
            self._log.info(
                "zone_setpoint",
                segment=segment.index,
                speed_kmh=settled.speed_kmh,
                incline_pct=settled.incline_pct,
            )
        self._zone_held = settled

    def _ramp_write_kmh(self) -> float:
        """How far one ramp write moves the speed: the ramp rate over one ramp tick, a whole
        number of the deck's increments."""
        limits = self._governor.limits
        if limits is None:
            return 0.0
        return limits.ramp_rate_kmh_per_s * self._ramp_tick_s()

    def _inner_write_delays_the_end(
        self, step: PlanStep, speed: float, now: float, deadline: float
    ) -> bool:
        """True when writing `speed` now, inside a ramp, would make the ramp's final write late:
        the governor's ramp allowance counts from each write's answer, so after this write it
        could not let the rest through at the step's end, while without this write it could."""
        governor = self._governor
        limits = governor.limits
        current = governor.target_speed_kmh
        if step.kind is not StepKind.RAMP or limits is None or current is None:
            return False
        if abs(speed - current) < limits.speed_increment_kmh / 2:
            return False  # nothing would be written

        def allowance(since: float) -> float:
            span = min(max(deadline - since, 0.0), ramp_window_s(limits))
            return limits.ramp_rate_kmh_per_s * span + EPS

        end = step.speed_kmh
        after_write = abs(end - speed) <= allowance(now + governor.answer_time_s)
        without = abs(end - current) <= allowance(governor.target_written_at)
        return without and not after_write

    def _setpoints(
        self, step: PlanStep, now: float, start: float, deadline: float, last_ramp_down: bool
    ) -> tuple[float, float]:
        """What to write now. At the step's end: its final values. Inside a ramp: where the plan
        will be one ramp tick later (the governor holds the ramp rate, so the belt keeps up
        with the plan), but the speed held one ramp write short of the ramp's final speed:
        that write is made at the step's end, never early, and is a whole ramp write like the
        others. (Inclines keep aiming a tick ahead: the deck's incline motor is far slower.)"""
        if now >= deadline - EPS:
            return self._desired(step, step.duration_s, last_ramp_down)
        aim = min(now + self._ramp_tick_s(), deadline)
        speed, incline = self._desired(step, aim - start, last_ramp_down)
        if step.kind is StepKind.RAMP and (self._speed_override is None or last_ramp_down):
            speed = _short_of_end(
                speed, step.from_speed_kmh, step.speed_kmh, self._ramp_write_kmh()
            )
        return speed, incline

    async def _apply(self, speed: float, incline: float, segment: PlanSegment) -> bool:
        """Write what differs; True while the setpoints have not reached where the limits let
        them settle (so the caller keeps ticking through a governed ramp)."""
        governor = self._governor
        limits = governor.limits
        if limits is None:
            return False
        changing = False
        if limits.incline_controllable:
            reachable_incline, _ = governor.incline_target_for(incline)
            # Compared with what was asked, not with what the deck set: a deck with an incline
            # table settles below the ask, and that is where it stays (no rewrite each tick).
            current_incline = governor.asked_incline_pct
            half_step = limits.incline_increment_pct / 2
            if current_incline is None or abs(reachable_incline - current_incline) >= half_step:
                await governor.set_incline(incline)
                asked = governor.asked_incline_pct
                # Still changing while the governor holds the ask below where it settles (the
                # turn incline cap while the belt stands).
                changing = asked is None or abs(asked - reachable_incline) >= half_step
        reachable_speed, _ = governor.speed_target_for(speed)
        current = governor.target_speed_kmh
        half_step = limits.speed_increment_kmh / 2
        if current is None or abs(reachable_speed - current) >= half_step:
            if speed > (current or 0.0):
                # The budget again right before a raise: an incline write just before it (a
                # deck answering late) has used backward time the caller's check could not
                # count, and the raise's ramp-down must still land the Pause inside the budget.
                self._check_backward_budget(segment, next_kmh=self._next_write_kmh(speed))
            written = await governor.set_speed(speed)
            changing = changing or abs(written - reachable_speed) >= half_step
        return changing


def _short_of_end(value: float, start: float, end: float, short_by: float) -> float:
    """`value` on its way from `start` to `end`, held `short_by` short of `end` (and never
    behind `start`): a ramp's final write belongs to the ramp's end."""
    if end > start:
        return min(value, max(end - short_by, start))
    if end < start:
        return max(value, min(end + short_by, start))
    return value
