"""What one treadmill's session knows about its workout, shared by the session's parts.

`WorkoutSession` and the parts it is made of (its link reactions, its workout endings, its
watchdog, its snapshot) read and change this one object, in public, so none of them reaches
into another's private state.
"""

from __future__ import annotations

import asyncio

from treadmilld.engine.api import AbortReason, Phase
from treadmilld.engine.calories import WorkoutTotals
from treadmilld.engine.executor import WorkoutExecutor
from treadmilld.engine.heart_rate import HeartRateReading, HeartRateSources
from treadmilld.engine.planner import WorkoutPlan
from treadmilld.runtime.clock import Clock

ACTIVE_PHASES = frozenset(
    {
        Phase.RUNNING,
        Phase.TURNING,
        Phase.AWAITING_CONFIRMATION,
        Phase.RESTING,
        Phase.PAUSED,
    }
)


class SessionState:
    """The workout running, or the last one, and when the deck last sent data.

    `phase` is the session's own (IDLE, RUNNING while a workout runs, then how it ended); while
    a workout runs, its executor knows the finer phase (`current_phase`)."""

    def __init__(self, clock: Clock, *, default_body_weight_kg: float) -> None:
        self._clock = clock
        self.phase = Phase.IDLE
        self.plan: WorkoutPlan | None = None
        self.executor: WorkoutExecutor | None = None
        self.executor_task: asyncio.Task[None] | None = None
        # What the next start that names no weight uses.
        self.default_body_weight_kg = default_body_weight_kg
        self.totals = WorkoutTotals(body_weight_kg=default_body_weight_kg)
        self.clinical = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.abort_reason: AbortReason | None = None
        # How the last workout ended and how far it got (see SessionSnapshot), kept until the
        # next start.
        self.outcome: str | None = None
        self.final_progress_pct: float | None = None
        self.telemetry_at: float | None = None
        # Set whenever the no-data deadline moves (a record arrived, a workout started): the
        # watchdog waits on it instead of looking on a timer.
        self.deadline_moved = asyncio.Event()
        # The strap's and the treadmill's heart-rate readings, each filtered.
        self.heart_rate = HeartRateSources()

    @property
    def active(self) -> bool:
        """A workout runs (in any of its phases, paused included)."""
        return self.phase in ACTIVE_PHASES

    @property
    def current_phase(self) -> Phase:
        if self.executor is not None and self.active:
            return self.executor.phase
        return self.phase

    def heart_rate_now(self) -> HeartRateReading | None:
        """The filtered heart rate that counts now (the strap's while fresh, else the
        treadmill's), None when neither has a fresh valid reading."""
        return self.heart_rate.current(self._clock.now())

    def heart_rate_raw_bpm(self) -> int | None:
        """The last value received from the source that counts, before any filter."""
        return self.heart_rate.raw_bpm(self._clock.now())

    def telemetry_arrived(self, at: float) -> None:
        self.telemetry_at = at
        self.deadline_moved.set()

    def begin(
        self, plan: WorkoutPlan, executor: WorkoutExecutor, *, weight_kg: float, clinical: bool
    ) -> None:
        """A workout was accepted: everything the last one left behind goes."""
        self.plan = plan
        self.clinical = clinical
        self.totals = WorkoutTotals(body_weight_kg=weight_kg)
        self.started_at = self._clock.now()
        self.ended_at = None
        self.abort_reason = None
        self.outcome = None
        self.final_progress_pct = None
        self.phase = Phase.RUNNING
        self.executor = executor
        self.deadline_moved.set()

    def elapsed_s(self, until: float | None = None) -> float:
        """Workout time: from the start to now (or the end), time spent paused left out."""
        if self.started_at is None:
            return 0.0
        if until is None:
            until = self.ended_at if self.ended_at is not None else self._clock.now()
        paused = self.executor.paused_s(until) if self.executor is not None else 0.0
        return max(until - self.started_at - paused, 0.0)

    def progress_pct(self, *, active: bool) -> float | None:
        """Share of the planned time done (plan time: a pause or a turn waiting for its
        confirmation does not advance it)."""
        plan = self.plan
        executor = self.executor
        if not active or plan is None or executor is None:
            return self.final_progress_pct
        if plan.total_s <= 0:
            return 0.0
        done = plan.total_s - executor.remaining_s()
        return min(max(100.0 * done / plan.total_s, 0.0), 100.0)

    def end_workout(self, outcome: str) -> None:
        """Freeze what a finished, stopped or aborted workout shows until the next start."""
        self.ended_at = self._clock.now()
        if self.plan is None:
            # An emergency stop with no workout ever started: no workout had an outcome.
            return
        finished = outcome == Phase.FINISHED.value
        self.final_progress_pct = 100.0 if finished else self.progress_pct(active=True)
        self.outcome = outcome
