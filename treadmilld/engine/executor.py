"""The executor: walks a `WorkoutPlan` on the injected clock through the safety governor.

It owns the timeline and the turn protocol; the governor owns the limits. Commands (pause,
resume, skip, confirm, stop, nudges) set a flag and wake the executor, which acts on them at its
next checkpoint; emergency stop does not come here at all: the session cancels the executor's
task and calls the governor directly.

Link and governor errors propagate out of `run()`; the session turns them into an abort.
"""

from __future__ import annotations

from treadmilld.engine.api import Direction, Phase, SegmentSkipped, SegmentStarted
from treadmilld.engine.executor_core import DEFAULT_TICK_S, SkipSegment, StopWorkout
from treadmilld.engine.executor_walking import WalkSteps
from treadmilld.engine.planner import PlanSegment, SegmentKind

__all__ = ["DEFAULT_TICK_S", "WorkoutExecutor"]


class WorkoutExecutor(WalkSteps):
    """Runs one plan: this file holds the timeline (segments in order, the final stop); the
    state, commands and pauses are in `executor_core`, turns in `executor_turns`, the walk on
    plan time in `executor_walking`."""

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
        except StopWorkout:
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
        self._zone_held = None
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
        except SkipSegment:
            # What follows begins now, not at its planned time.
            self._plan_origin = None
            self._event(SegmentSkipped, index=index)
            self._log.info("segment_skipped", index=index)

    async def _rest(self, segment: PlanSegment) -> None:
        await self._ramp_down_and_pause()
        self._set_phase(Phase.RESTING)
        await self._hold(segment.duration_s, skippable=True)
