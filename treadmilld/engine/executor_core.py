"""The executor's state and the mechanisms every part of the walk uses: the commands (a flag set
and a wake), progress, waiting on the injected clock at checkpoints, the pause cycle with its
governed ramp-down, and the backward budget's margin.

`WorkoutExecutor` (`engine/executor.py`) is this core plus the turn protocol
(`engine/executor_turns.py`) and the walk on plan time (`engine/executor_walking.py`), each a
layer of one class: they share one state, so they are one object, written in three files by
concern.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import structlog

from treadmilld.engine.api import (
    Direction,
    Phase,
    SessionEvent,
    WorkoutPaused,
    WorkoutResumed,
)
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.heart_rate import HeartRateReading
from treadmilld.engine.heart_rate_control import ZoneSetpoint
from treadmilld.engine.planner import PlanSegment, SegmentKind, WorkoutPlan
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_any

_log = structlog.get_logger(__name__)

# Seconds between setpoint writes while ramping: one Control Point procedure per second keeps
# well inside what BLE treadmills answer (one procedure at a time, FTMS §4.16.3; pyftms waits
# 2 s for an answer, dudanov/pyftms).
DEFAULT_TICK_S = 1.0
EPS = 1e-6


class SkipSegment(Exception):  # noqa: N818 - control flow, not an error
    """End the current segment now and go on with the next."""


class StopWorkout(Exception):  # noqa: N818 - control flow, not an error
    """End the workout: ramp down and stop."""


class ExecutorCore:
    def __init__(
        self,
        plan: WorkoutPlan,
        governor: SafetyGovernor,
        clock: Clock,
        *,
        treadmill_id: str,
        emit: Callable[[SessionEvent], None],
        on_change: Callable[[], None],
        tick_s: float = DEFAULT_TICK_S,
        heart_rate: Callable[[], HeartRateReading | None] = lambda: None,
    ) -> None:
        self.plan = plan
        # The filtered heart rate to steer a zone segment by (the session's sources).
        self._heart_rate = heart_rate
        # The zone controller's setpoints in the current heart-rate-guided walk, None elsewhere.
        self._zone_held: ZoneSetpoint | None = None
        self._governor = governor
        self._clock = clock
        self._treadmill_id = treadmill_id
        self._log = _log.bind(treadmill_id=treadmill_id)
        self._emit = emit
        self._on_change = on_change
        self._tick_s = tick_s
        self._wake = asyncio.Event()
        self._pause_requested = False
        self._resume_requested = False
        self._skip_requested = False
        self._stop_requested = False
        self._confirmed = False
        # Manual nudges: they replace the plan's speed or incline for the rest of the walk
        # segment they were accepted in, and end at its boundary (the next segment brings its
        # own planned values).
        self._speed_override: float | None = None
        self._incline_override: float | None = None
        # The walk segment a nudge would apply to right now, or None while nothing would carry
        # it out (starting, ramping down into a turn or rest, turning, resting, ending): a
        # nudge accepted then would be overwritten at the next segment unseen.
        self._nudgeable_segment: int | None = None
        # The last step of a walk ramps down to the restart speed for the pause after it: the
        # plan's speed wins there, so a speed nudge would not be carried out.
        self._ramping_down_for_pause = False
        self._ending = False  # the last segment is done: ramping down to the final stop
        self.phase = Phase.RUNNING
        self.segment_index = 0
        self.turn_countdown_s: int | None = None
        self.stopped_by_user = False
        self._segment_deadline: float | None = None
        # Clock time of plan time zero while the belt walks the plan: every step begins at
        # `_plan_origin + step.start_s`, so the time a write takes to be answered does not push
        # later steps back. Set when the belt starts (the plan resumes from the moment it is
        # measured moving), moved by pauses, cleared by a skip (the next segment begins at once).
        self._plan_origin: float | None = None
        self._paused_at: float | None = None
        # Set while a turn outside the plan (before a segment's first Start) holds plan time.
        self._held_at: float | None = None
        # Time spent in finished pause cycles: workout time (elapsed) leaves it out.
        self._paused_total_s = 0.0
        self._pauses = 0  # pause cycles so far (a turn's countdown restarts after one)

    def request_pause(self) -> None:
        self._pause_requested = True
        self._resume_requested = False
        self._wake.set()

    def request_resume(self) -> None:
        self._resume_requested = True
        self._wake.set()

    def request_skip(self) -> None:
        self._skip_requested = True
        self._wake.set()

    def request_stop(self) -> None:
        self._stop_requested = True
        self._wake.set()

    def confirm_turn(self) -> None:
        self._confirmed = True
        self._wake.set()

    def nudge_refusal(self, what: str) -> str | None:
        """Why a manual nudge of `what` ("speed" or "incline") would not be carried out now,
        or None when it will be: it then holds until the current walk segment ends."""
        number = self.segment_index + 1
        if self._stop_requested or self._ending:
            return "the workout is ending"
        if self._skip_requested:
            return (
                f"segment {number} is being skipped; send it again once the next segment "
                "has started"
            )
        if self._nudgeable_segment is None:
            return self._not_walking(number)
        if what == "speed" and self._ramping_down_for_pause:
            return (
                f"segment {number} is ramping down to pause for what comes next; its speed "
                "follows the plan to the end"
            )
        return self._segment_ending(number, what)

    def _not_walking(self, number: int) -> str:
        segment = self.segment
        if segment.kind is SegmentKind.WALK:
            upcoming = "the belt moves" if self.segment_index == 0 else "the next segment starts"
            return f"the walk is not under way; send it again once {upcoming}"
        return (
            f"the belt is slowing down for segment {number} ({segment.kind.value}); send it "
            "again once the next walk has started"
        )

    def _segment_ending(self, number: int, what: str) -> str | None:
        remaining = self.segment_remaining_s()
        # Less than one setpoint write is left: the nudge would be written at most once and
        # replaced a moment later.
        if remaining is None or remaining >= self._ramp_tick_s():
            return None
        if number == len(self.plan.segments):
            return f"segment {number}, the last, ends in {remaining:.1f} s"
        return (
            f"segment {number} ends in {remaining:.1f} s and segment {number + 1} sets its "
            f"own {what}; send it again once segment {number + 1} has started"
        )

    def nudge_speed(self, speed_kmh: float) -> None:
        self._speed_override = speed_kmh
        self._wake.set()

    def nudge_incline(self, incline_pct: float) -> None:
        self._incline_override = incline_pct
        self._wake.set()

    def recheck(self) -> None:
        """Something outside changed the belt's targets: look at the setpoints again now."""
        self._wake.set()

    @property
    def pause_pending(self) -> bool:
        return self._pause_requested

    @property
    def plan_origin(self) -> float | None:
        """Clock time at which the plan's time zero lies while the belt walks it (a step planned
        at `start_s` begins at `plan_origin + start_s`), or None before the belt first moves."""
        return self._plan_origin

    @property
    def segment(self) -> PlanSegment:
        return self.plan.segments[min(self.segment_index, len(self.plan.segments) - 1)]

    def segment_remaining_s(self) -> float | None:
        if self._segment_deadline is None:
            return None
        # Plan time stands still in a pause, and in a turn the plan does not contain (the
        # earlier of the two when a pause falls inside such a turn).
        frozen = self._held_at if self._held_at is not None else self._paused_at
        now = frozen if frozen is not None else self._clock.now()
        return max(self._segment_deadline - now, 0.0)

    def paused_s(self, until: float) -> float:
        """Time spent paused up to `until`, the pause under way included (one ended by a stop
        or an abort runs on until the workout's end)."""
        ongoing = max(until - self._paused_at, 0.0) if self._paused_at is not None else 0.0
        return self._paused_total_s + ongoing

    def remaining_s(self) -> float:
        later = sum(s.duration_s for s in self.plan.segments[self.segment_index + 1 :])
        current = self.segment_remaining_s()
        return later + (current if current is not None else self.segment.duration_s)

    def _set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self._on_change()

    def _event(self, factory: Callable[..., SessionEvent], **fields: object) -> None:
        self._emit(factory(treadmill_id=self._treadmill_id, at=self._clock.now(), **fields))

    async def _sleep_until(self, deadline: float) -> None:
        """Sleep on the injected clock until `deadline` or until a command wakes us."""
        remaining = deadline - self._clock.now()
        if remaining <= 0 or self._wake.is_set():
            return
        await wait_any(events=(self._wake,), seconds=remaining, clock=self._clock)

    async def _checkpoint(self, *, skippable: bool) -> float:
        """Act on pending commands; returns how long a pause took (to extend deadlines)."""
        self._wake.clear()
        if self._stop_requested:
            raise StopWorkout
        if self._skip_requested:
            self._skip_requested = False
            if skippable:
                raise SkipSegment
        if self._pause_requested:
            return await self._pause_cycle()
        return 0.0

    async def _hold(self, seconds: float, *, skippable: bool) -> float:
        """Wait `seconds` of workout time (time spent paused does not count); returns how long
        it was paused (0 when it was not)."""
        deadline = self._clock.now() + seconds
        paused = 0.0
        pauses_before = self._pauses
        while True:
            shift = await self._checkpoint(skippable=skippable)
            paused += shift
            deadline += shift
            if self._clock.now() >= deadline - EPS:
                # A pause and resume in the same instant still counts as a pause.
                return max(paused, EPS) if self._pauses != pauses_before else 0.0
            await self._sleep_until(deadline)

    async def _ramp_down_and_pause(self, *, stop: bool = False) -> None:
        """Ramp the target down to the restart speed at the governed rate, then pause (or stop).
        Only a stop request or cancellation interrupts it."""
        governor = self._governor
        limits = governor.limits
        if governor.belt_moving and limits is not None:
            restart = limits.restart_speed_kmh
            while (governor.target_speed_kmh or 0.0) > restart + EPS:
                if self._stop_requested and not stop:
                    # Stopping ramps down too (in `run`), never a pause from speed.
                    raise StopWorkout
                if await governor.set_speed(restart) <= restart + EPS:
                    break
                # The next write when the governor's ramp allows a whole step again, counted
                # from the last write (not from now): a ramp-down that begins between two
                # writes (a pause or skip mid-ramp) keeps the governed pace, so it ends inside
                # the backward margin the executor keeps in hand.
                next_write = max(
                    governor.target_written_at + self._ramp_tick_s(), self._clock.now()
                )
                # A command that wakes us (a pause asked for mid-ramp-down, soak seed 701) does
                # not bring the next write forward: written early, it would be a part step,
                # one more write and one more late answer than the margin counted. Only a stop
                # request cuts the wait short (it is acted on at the top of the loop).
                while self._clock.now() < next_write - EPS and not (
                    self._stop_requested and not stop
                ):
                    await self._sleep_until(next_write)
                    self._wake.clear()
        if stop:
            await governor.stop_belt()
        elif governor.belt_moving:
            await governor.pause_belt()

    def _ramp_tick_s(self) -> float:
        """Seconds between ramp writes: a whole number of treadmill increments per write, each
        exactly at the ramp rate, so rounding to the increment never slows a ramp down."""
        limits = self._governor.limits
        if limits is None:
            return self._tick_s
        per_increment = limits.speed_increment_kmh / limits.ramp_rate_kmh_per_s
        if per_increment >= self._tick_s:
            return per_increment
        return per_increment * math.floor(self._tick_s / per_increment + 1e-9)

    async def _pause_cycle(self) -> float:
        self._pauses += 1
        started = self._clock.now()
        self._pause_requested = False
        resume_phase = self.phase
        self._paused_at = started
        self._set_phase(Phase.PAUSED)
        self._event(WorkoutPaused)
        was_moving = self._governor.belt_moving
        if was_moving:
            await self._ramp_down_and_pause()
        while not self._resume_requested:
            if self._stop_requested:
                raise StopWorkout
            self._wake.clear()
            await self._sleep_until(math.inf)
        self._resume_requested = False
        self._skip_requested = False
        self._paused_at = None
        paused_for = self._clock.now() - started
        self._paused_total_s += paused_for
        if self._segment_deadline is not None and self._held_at is None:
            # (Inside a turn outside the plan, the turn moves the deadline by its whole length.)
            self._segment_deadline += paused_for
        self._set_phase(resume_phase)
        self._event(WorkoutResumed)
        if was_moving:
            facing = self._governor.facing
            if (
                facing is Direction.BACKWARD
                and self._governor.backward_remaining_s() <= self._backward_margin_s() + EPS
            ):
                # The pause used up the backward budget, or leaves less than a restart and the
                # next pause take on this deck: this walk is over, not the workout.
                self._log.warning("backward_budget_used", segment=self.segment_index)
                raise SkipSegment
            if facing is not None:
                await self._governor.start_belt(facing)
        if self._plan_origin is not None:
            # The plan stood still from the pause until the belt moved again.
            self._plan_origin += self._clock.now() - started
        return paused_for

    def _backward_margin_s(self, next_kmh: float = 0.0) -> float:
        """Backward time to keep in hand: enough to ramp down and pause, plus one tick."""
        governor = self._governor
        limits = governor.limits
        if limits is None:
            return 0.0
        # From the highest target the belt may be heading for: a raise still on its way lands
        # (one late answer later) before the ramp-down can begin.
        reachable, _ = governor.speed_target_for(next_kmh) if next_kmh > 0 else (0.0, None)
        above = max(max(governor.highest_target_kmh, reachable) - limits.restart_speed_kmh, 0.0)
        tick = self._ramp_tick_s()
        # Every write still to come (the ramp-down steps and the Pause) lands one Control
        # Point answer later: a deck answering late eats into the budget too.
        writes = math.ceil(above / (limits.ramp_rate_kmh_per_s * tick) - EPS) + 2
        return above / limits.ramp_rate_kmh_per_s + tick + writes * governor.answer_time_s

    def _backward_budget_deadline(self, segment: PlanSegment) -> float | None:
        """When a backward segment must be cut short to stay inside the backward budget."""
        if segment.direction is not Direction.BACKWARD or not self._governor.belt_moving:
            return None
        remaining = self._governor.backward_remaining_s() - self._backward_margin_s()
        return self._clock.now() + max(remaining, 0.0)

    def _check_backward_budget(self, segment: PlanSegment, *, next_kmh: float = 0.0) -> None:
        """End a backward segment early when the rest of the budget is only enough to ramp
        down (so the pause lands inside the budget) from the current target or from `next_kmh`,
        the target about to be written (a raise adds ramp-down time and its own answer)."""
        if segment.direction is not Direction.BACKWARD:
            return
        governor = self._governor
        margin = self._backward_margin_s(next_kmh)
        if governor.belt_moving and governor.backward_remaining_s() <= margin + EPS:
            self._log.warning("backward_budget_used", segment=segment.index)
            raise SkipSegment

    def _next_write_kmh(self, speed_kmh: float) -> float:
        """The target the governor's ramp would write next on the way to `speed_kmh`."""
        governor = self._governor
        limits = governor.limits
        current = governor.target_speed_kmh
        if limits is None or current is None:
            return speed_kmh
        step = limits.ramp_rate_kmh_per_s * self._ramp_tick_s()
        return min(speed_kmh, current + step)
