"""The executor: walks a `WorkoutPlan` on the injected clock through the safety governor.

It owns the timeline and the turn protocol; the governor owns the limits. Commands (pause,
resume, skip, confirm, stop, nudges) set a flag and wake the executor, which acts on them at its
next checkpoint; emergency stop does not come here at all: the session cancels the executor's
task and calls the governor directly.

Link and governor errors propagate out of `run()`; the session turns them into an abort.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import structlog

from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    Direction,
    Phase,
    SegmentSkipped,
    SegmentStarted,
    SessionEvent,
    TurnConfirmationNeeded,
    TurnCountdown,
    TurnNow,
    WorkoutPaused,
    WorkoutResumed,
)
from treadmilld.engine.belt import deceleration_allowance_s
from treadmilld.engine.governor import BeltFaultError, SafetyGovernor, ramp_window_s
from treadmilld.engine.planner import (
    COUNTDOWN_S,
    PlanSegment,
    PlanStep,
    SegmentKind,
    StepKind,
    WorkoutPlan,
)
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_any

_log = structlog.get_logger(__name__)

# Seconds between setpoint writes while ramping: one Control Point procedure per second keeps
# well inside what BLE treadmills answer (one procedure at a time, FTMS §4.16.3; pyftms waits
# 2 s for an answer, dudanov/pyftms).
DEFAULT_TICK_S = 1.0
_EPS = 1e-6


class _SkipSegment(Exception):  # noqa: N818 - control flow, not an error
    pass


class _StopWorkout(Exception):  # noqa: N818 - control flow, not an error
    pass


class WorkoutExecutor:
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
    ) -> None:
        self.plan = plan
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

    # ------------------------------------------------------------------ commands, synchronous

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

    # ------------------------------------------------------------------ progress

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

    # ------------------------------------------------------------------ waiting

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
            raise _StopWorkout
        if self._skip_requested:
            self._skip_requested = False
            if skippable:
                raise _SkipSegment
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
            if self._clock.now() >= deadline - _EPS:
                # A pause and resume in the same instant still counts as a pause.
                return max(paused, _EPS) if self._pauses != pauses_before else 0.0
            await self._sleep_until(deadline)

    # ------------------------------------------------------------------ belt helpers

    async def _ramp_down_and_pause(self, *, stop: bool = False) -> None:
        """Ramp the target down to the restart speed at the governed rate, then pause (or stop).
        Only a stop request or cancellation interrupts it."""
        governor = self._governor
        limits = governor.limits
        if governor.belt_moving and limits is not None:
            restart = limits.restart_speed_kmh
            while (governor.target_speed_kmh or 0.0) > restart + _EPS:
                if self._stop_requested and not stop:
                    # Stopping ramps down too (in `run`), never a pause from speed.
                    raise _StopWorkout
                if await governor.set_speed(restart) <= restart + _EPS:
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
                while self._clock.now() < next_write - _EPS and not (
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
                raise _StopWorkout
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
                and self._governor.backward_remaining_s() <= self._backward_margin_s() + _EPS
            ):
                # The pause used up the backward budget, or leaves less than a restart and the
                # next pause take on this deck: this walk is over, not the workout.
                self._log.warning("backward_budget_used", segment=self.segment_index)
                raise _SkipSegment
            if facing is not None:
                await self._governor.start_belt(facing)
        if self._plan_origin is not None:
            # The plan stood still from the pause until the belt moved again.
            self._plan_origin += self._clock.now() - started
        return paused_for

    # ------------------------------------------------------------------ the workout

    async def run(self) -> bool:
        """Run the plan. Returns True when it finished, False when stopped by a command."""
        segments = self.plan.segments
        index = 0
        try:
            # Plan time starts once the deck's data shows the belt standing (just after a
            # connect that takes a second or two of records).
            await self._wait_for_standstill()
            while index < len(segments):
                await self._run_segment(segments[index], index)
                index += 1
            self._ending = True
            await self._ramp_down_and_pause(stop=True)
        except _StopWorkout:
            self.stopped_by_user = True
            await self._ramp_down_and_pause(stop=True)
            return False
        self._segment_deadline = None
        self._set_phase(Phase.FINISHED)
        return True

    async def _run_segment(self, segment: PlanSegment, index: int) -> None:
        self.segment_index = index
        self._speed_override = None
        self._incline_override = None
        self._segment_deadline = self._clock.now() + segment.duration_s
        paused = segment.kind is not SegmentKind.WALK
        self._event(
            SegmentStarted,
            index=index,
            direction=Direction.REST if paused else segment.direction,
            duration_s=segment.duration_s,
            speed_kmh=segment.speed_kmh,
            incline_pct=segment.incline_pct,
            cue=segment.cue,
        )
        if not paused:
            # The person now faces this way even if the belt never starts (an abort before the
            # Start is sent): the governor keeps it for the next workout's turn.
            self._governor.segment_announced(segment.direction)
        self._on_change()
        self._log.info(
            "segment_started",
            index=index,
            kind=segment.kind.value,
            direction=segment.direction.value,
            duration_s=segment.duration_s,
        )
        try:
            if segment.kind is SegmentKind.TURN:
                await self._turn(segment)
            elif segment.kind is SegmentKind.REST:
                await self._rest(segment)
            else:
                await self._walk(segment)
        except _SkipSegment:
            # What follows begins now, not at its planned time.
            self._plan_origin = None
            self._event(SegmentSkipped, index=index)
            self._log.info("segment_skipped", index=index)

    async def _rest(self, segment: PlanSegment) -> None:
        await self._ramp_down_and_pause()
        self._set_phase(Phase.RESTING)
        await self._hold(segment.duration_s, skippable=True)

    async def _turn(self, segment: PlanSegment) -> None:
        to_direction = segment.direction
        await self._ramp_down_and_pause()
        self._set_phase(Phase.TURNING)
        turn_incline = segment.steps[0].incline_pct
        if (self._governor.target_incline_pct or 0.0) > turn_incline + _EPS:
            await self._governor.set_incline(turn_incline)
        limits = self._governor.limits
        hold_s = segment.steps[0].duration_s
        if limits is not None:
            hold_s = max(hold_s, limits.turn_pause_s)
        await self._stand_and_turn(to_direction, hold_s, confirm=segment.awaits_confirmation)

    async def _turn_before_start(self, to_direction: Direction) -> None:
        """The person last walked the other way (an earlier workout, or before an abort): the
        same turn protocol as inside a plan before the belt moves this way."""
        limits = self._governor.limits
        if limits is None:
            return
        resume_phase = self.phase
        started = self._clock.now()
        deadline = self._segment_deadline
        self._held_at = started
        self._set_phase(Phase.TURNING)
        self._log.info("turn_before_start", to_direction=to_direction.value)
        try:
            await self._stand_and_turn(
                to_direction, limits.turn_pause_s, confirm=limits.confirm_turns
            )
        finally:
            self._held_at = None
        if deadline is not None:
            # The plan has not moved on: the segment still has all it had when the turn began
            # (pauses inside the turn included, counted once).
            self._segment_deadline = deadline + self._clock.now() - started
        self._set_phase(resume_phase)

    async def _stand_and_turn(
        self, to_direction: Direction, hold_s: float, *, confirm: bool
    ) -> None:
        """Wait for the belt to be *measured* standing, tell the person to turn, keep it
        standing for `hold_s` counted from measured standstill, then count down 3-2-1. A pause
        anywhere in here runs the whole countdown again after the resume."""
        await self._wait_for_standstill()
        self._governor.turn_announced(to_direction)
        self._event(TurnNow, to_direction=to_direction)
        if confirm:
            await self._hold_standing(hold_s)
            self._confirmed = False
            self._set_phase(Phase.AWAITING_CONFIRMATION)
            self._event(TurnConfirmationNeeded, to_direction=to_direction)
            while True:
                await self._checkpoint(skippable=False)
                if self._confirmed:
                    break
                await self._sleep_until(math.inf)
            self._set_phase(Phase.TURNING)
            self._segment_deadline = self._clock.now() + COUNTDOWN_S
        else:
            await self._hold_standing(hold_s - COUNTDOWN_S)
        # The incline comes down to the restart maximum (measured) before the countdown: the
        # belt must move right after "1", not when a slow incline motor gets there.
        await self._governor.lower_incline_for_start(to_direction)
        while True:
            interrupted = False
            for seconds_left in range(COUNTDOWN_S, 0, -1):
                self.turn_countdown_s = seconds_left
                self._event(TurnCountdown, seconds_left=seconds_left, to_direction=to_direction)
                self._on_change()
                if await self._hold(1.0, skippable=False) > 0:
                    interrupted = True
                    break
            if not interrupted and self._governor.standing_for_s() + _EPS >= hold_s:
                break
            # Paused and resumed mid-countdown (or the belt did not stand long enough): the
            # person hears the whole countdown again before the belt moves.
            self.turn_countdown_s = None
            await self._hold_standing(hold_s - COUNTDOWN_S)
        self.turn_countdown_s = None
        self._governor.turn_counted_down(to_direction)

    async def _wait_for_standstill(self) -> None:
        """Until the deck's data shows the belt standing; bounded by what the slowest deck
        needs to stop from the last measured speed."""
        governor = self._governor
        observer = governor.observer
        speed = max(observer.speed_kmh or 0.0, governor.target_speed_kmh or 0.0, 1.0)
        deadline = self._clock.now() + deceleration_allowance_s(speed)
        # Standing only counts once the deck has answered the Stop or Pause it was sent.
        while observer.state() is not BeltState.STANDING or governor.halt_pending:
            if self._stop_requested:
                raise _StopWorkout
            left = deadline - self._clock.now()
            if left <= 0:
                state = observer.state()
                # A deck that went silent is not a belt that kept moving: say which it was.
                reason = (
                    AbortReason.UNEXPECTED_MOTION
                    if state is BeltState.MOVING
                    else AbortReason.NO_DATA
                )
                raise BeltFaultError(
                    reason,
                    f"the belt was told to stop and is not measured standing after "
                    f"{deceleration_allowance_s(speed):.0f} s ({state.value}, "
                    f"{observer.speed_kmh} km/h)",
                )
            if observer.state() is BeltState.STANDING:
                # Standing, but the Stop or Pause is still unanswered: look again shortly.
                await self._clock.sleep(min(left, 0.25))
            else:
                await observer.wait_standing(min(left, 1.0))

    async def _hold_standing(self, seconds: float) -> None:
        """Until the belt has been measured standing for `seconds` (pauses allowed)."""
        while True:
            await self._checkpoint(skippable=False)
            left = seconds - self._governor.standing_for_s()
            if left <= _EPS:
                return
            # Re-check at least once a second: standing time restarts if the belt moves.
            await self._sleep_until(self._clock.now() + min(left, 1.0))

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
        writes = math.ceil(above / (limits.ramp_rate_kmh_per_s * tick) - _EPS) + 2
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
        if governor.belt_moving and governor.backward_remaining_s() <= margin + _EPS:
            self._log.warning("backward_budget_used", segment=segment.index)
            raise _SkipSegment

    def _next_write_kmh(self, speed_kmh: float) -> float:
        """The target the governor's ramp would write next on the way to `speed_kmh`."""
        governor = self._governor
        limits = governor.limits
        current = governor.target_speed_kmh
        if limits is None or current is None:
            return speed_kmh
        step = limits.ramp_rate_kmh_per_s * self._ramp_tick_s()
        return min(speed_kmh, current + step)

    def _desired(self, step: PlanStep, elapsed: float, last_ramp_down: bool) -> tuple[float, float]:
        fraction = 1.0 if step.duration_s <= 0 else min(max(elapsed / step.duration_s, 0.0), 1.0)
        speed = step.from_speed_kmh + (step.speed_kmh - step.from_speed_kmh) * fraction
        incline = step.from_incline_pct + (step.incline_pct - step.from_incline_pct) * fraction
        if step.duration_s <= 0:
            incline = step.incline_pct
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
                and governor.backward_remaining_s() <= self._backward_margin_s() + _EPS
            ):
                self._log.warning("backward_budget_used", segment=segment.index)
                raise _SkipSegment
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
            and step.speed_kmh <= governor.limits.restart_speed_kmh + _EPS
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
            ending = now >= deadline - _EPS
            tick = self._ramp_tick_s()
            speed, incline = self._setpoints(step, now, start, deadline, last_ramp_down)
            if not ending and self._inner_write_delays_the_end(step, speed, now, deadline):
                # The ramp's final speed is reachable at its end from where the target is now,
                # and this inner write would leave too little time after it for that.
                await self._sleep_until(deadline)
                continue
            if speed > (governor.target_speed_kmh or 0.0):
                self._check_backward_budget(segment, next_kmh=self._next_write_kmh(speed))
            written_before = governor.target_written_at
            changing = await self._apply(speed, incline, segment)
            if ending:
                return
            wake_at = deadline
            if changing or step.kind is StepKind.RAMP:
                # The next ramp write when the governor allows a whole step again, counted from
                # the last write's answer (its ramp allowance counts from there); the step's
                # final value waits for the step's end.
                wrote = governor.target_written_at > written_before
                wake_at = min(deadline, (governor.target_written_at if wrote else now) + tick)
            budget_at = self._backward_budget_deadline(segment)
            if budget_at is not None:
                wake_at = max(min(wake_at, budget_at), now + _EPS)
            await self._sleep_until(wake_at)

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
            return limits.ramp_rate_kmh_per_s * span + _EPS

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
        if now >= deadline - _EPS:
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
