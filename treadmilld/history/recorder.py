"""Records every workout as it runs: a session's events become segments, phase changes and an
ending, and its snapshot is sampled at 1 Hz on the injected clock.

Recording never holds up the belt: the session publishes into a bounded fan-out that never
waits, and the recorder hands each write to its own writer task through a queue, so a slow or
unreachable database delays only the history. Each write is committed on its own (the store's
contract), so a power loss or SIGKILL keeps everything up to the last second, and the next
start marks the workout `interrupted`. When the database is unreachable the writer retries
with the runtime's backoff; samples beyond `MAX_PENDING_SAMPLES` are dropped oldest first and
counted (the ending and the segments never are).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    Direction,
    SegmentSkipped,
    SegmentStarted,
    SessionEvent,
    SessionSnapshot,
    StateChanged,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStarted,
    WorkoutStopped,
)
from treadmilld.history.records import (
    HistoryUnavailableError,
    PhaseChange,
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)
from treadmilld.runtime.backoff import Backoff
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

# One sample a second: what issue 15 asks for, what FIT and TCX tracks carry, and the rate
# Treadmill Data arrives at on most decks (real-decks.md: the Urevo E1L sends about 1 Hz).
SAMPLE_INTERVAL_S = 1.0
# An hour of samples waiting for a database that does not answer; older ones are dropped.
MAX_PENDING_SAMPLES = 3600


class HistorySink(Protocol):
    """Where recorded workouts go (`treadmilld.store.Store` in the daemon). Each call is its own
    committed write."""

    async def begin_workout(self, record: WorkoutRecord) -> str: ...

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None: ...

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None: ...

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None: ...

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None: ...

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None: ...


class RecordedSession(Protocol):
    """What the recorder reads of a `WorkoutSession`."""

    @property
    def treadmill_id(self) -> str: ...

    def snapshot(self) -> SessionSnapshot: ...

    def events(self) -> AsyncIterator[SessionEvent]: ...


@dataclass(frozen=True, slots=True)
class RiderContext:
    """Who the next workout on this treadmill is for, set by the start path before it starts."""

    rider_id: str
    program_name: str | None = None
    program_stage: int | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_workout_id() -> str:
    return f"w-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, slots=True)
class _PendingSample:
    workout_id: str
    sample: Sample


@dataclass
class _Workout:
    workout_id: str
    started_at_clock: float
    # The last sample's time: one sample per instant (the store keys samples by it), so the
    # ending's sample is not written again when a tick of the sampler fell on the same instant.
    last_sample_at_s: float | None = None
    segment: SegmentRecord | None = None
    forward_at_segment_start: float = 0.0
    backward_at_segment_start: float = 0.0
    phase: str | None = None


class WorkoutRecorder:
    def __init__(
        self,
        session: RecordedSession,
        sink: HistorySink,
        clock: Clock,
        *,
        wall_clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_workout_id,
        sample_interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self._session = session
        self._sink = sink
        self._clock = clock
        self._wall_clock = wall_clock
        self._new_id = new_id
        self._sample_interval_s = sample_interval_s
        self._log = _log.bind(treadmill_id=session.treadmill_id)
        self._rider: RiderContext | None = None
        self._workout: _Workout | None = None
        self._last_workout_id: str | None = None
        # Writes waiting for the writer task, in order; samples are batched at write time.
        self._pending: deque[Callable[[], Coroutine[Any, Any, object]] | _PendingSample] = deque()
        self._pending_samples = 0
        self._dropped_samples = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._backoff = Backoff(initial_s=1.0, maximum_s=30.0, jitter=(0.8, 1.2))

    # ------------------------------------------------------------------ the start path

    def for_rider(self, context: RiderContext | None) -> None:
        """The next workout to start is this rider's (None: nobody's)."""
        self._rider = context

    @property
    def workout_id(self) -> str | None:
        """The workout being recorded, or None."""
        return self._workout.workout_id if self._workout is not None else None

    @property
    def last_workout_id(self) -> str | None:
        """The workout recorded most recently (or now), or None before the first."""
        return self._last_workout_id

    @property
    def dropped_samples(self) -> int:
        return self._dropped_samples

    async def drained(self) -> None:
        """Until every write handed over so far is done (for shutdown and tests)."""
        while self._pending or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ tasks

    async def run(self) -> None:
        """Consume the session's events, sample during workouts and write; until cancelled."""
        events = self._session.events()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._writer(), name=f"history-writer-{self._session.treadmill_id}")
            group.create_task(self._sampler(), name=f"history-sampler-{self._session.treadmill_id}")
            async for event in events:
                self._on_event(event)

    async def _sampler(self) -> None:
        # Each tick is due at a multiple of the interval from the first, not an interval after
        # the last one woke: a wake-up's lateness would otherwise add up (a few ms a second in
        # real time, a sample in 25 lost at the demo's 14x).
        # After a stall longer than an interval the ticks start again from now, one sample,
        # not a burst of them for the seconds the loop was away.
        due = self._clock.now()
        while True:
            due = max(due + self._sample_interval_s, self._clock.now())
            await self._clock.sleep(due - self._clock.now())
            if self._workout is not None:
                self._queue_sample(self._sample(self._session.snapshot(), self._workout))

    async def _writer(self) -> None:
        while True:
            while not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            self._idle.clear()
            head = self._pending[0]
            if isinstance(head, _PendingSample):
                workout_id, batch = self._take_samples()
                await self._write(functools.partial(self._sink.append_samples, workout_id, batch))
            else:
                await self._write(head)
                self._pending.popleft()

    def _take_samples(self) -> tuple[str, list[Sample]]:
        """The samples at the head of the queue that belong to one workout."""
        head = self._pending[0]
        assert isinstance(head, _PendingSample)
        batch: list[Sample] = []
        while self._pending:
            item = self._pending[0]
            if not isinstance(item, _PendingSample) or item.workout_id != head.workout_id:
                break
            self._pending.popleft()
            batch.append(item.sample)
        self._pending_samples -= len(batch)
        return head.workout_id, batch

    async def _write(self, operation: Callable[[], Coroutine[Any, Any, object]]) -> None:
        """One write, retried while the database is unreachable (restarting, or the network to
        a gym's PostgreSQL down): the workout goes on meanwhile. A write the store refuses is
        logged and left out: history never stops a belt."""
        while True:
            try:
                await operation()
            except HistoryUnavailableError as error:
                delay = self._backoff.next_delay()
                self._log.warning(
                    "history_write_failed",
                    error=str(error),
                    retry_in_s=round(delay, 1),
                    action="check that the database in [database] url is reachable; "
                    "the workout goes on and its history is written once it is",
                )
                await self._clock.sleep(delay)
                continue
            except Exception:  # noqa: BLE001 - a refused write must not end the workout
                self._log.exception(
                    "history_write_refused",
                    action="this part of the workout's history is missing; report the "
                    "traceback as a treadmilld bug",
                )
            self._backoff.reset()
            return

    # ------------------------------------------------------------------ events

    def _enqueue(self, operation: Callable[[], Coroutine[Any, Any, object]]) -> None:
        self._pending.append(operation)
        self._wake.set()

    def _queue_sample(self, sample: Sample) -> None:
        assert self._workout is not None
        if self._workout.last_sample_at_s == sample.at_s:
            return
        self._workout.last_sample_at_s = sample.at_s
        if self._pending_samples >= MAX_PENDING_SAMPLES:
            self._drop_oldest_sample()
        self._pending.append(_PendingSample(self._workout.workout_id, sample))
        self._pending_samples += 1
        self._wake.set()

    def _drop_oldest_sample(self) -> None:
        for index, item in enumerate(self._pending):
            if isinstance(item, _PendingSample):
                del self._pending[index]
                self._pending_samples -= 1
                self._dropped_samples += 1
                if self._dropped_samples in (1, 10, 100) or self._dropped_samples % 1000 == 0:
                    self._log.warning(
                        "history_samples_dropped",
                        dropped=self._dropped_samples,
                        action="the database has not answered for an hour; check it",
                    )
                return

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, WorkoutStarted):
            self._begin(event)
            return
        workout = self._workout
        if workout is None:
            return
        if isinstance(event, SegmentStarted):
            self._segment_started(workout, event)
        elif isinstance(event, SegmentSkipped):
            self._close_segment(workout, completed=False)
        elif isinstance(event, StateChanged):
            self._phase_seen(workout, event.snapshot)
        elif isinstance(event, WorkoutFinished | WorkoutStopped | WorkoutAborted):
            self._end(workout, event)

    def _begin(self, event: WorkoutStarted) -> None:
        if self._workout is not None:
            # A start without an end seen (should not happen): close the old one honestly.
            self._end(self._workout, None)
        rider = self._rider
        self._rider = None
        workout = _Workout(workout_id=self._new_id(), started_at_clock=event.at)
        self._workout = workout
        self._last_workout_id = workout.workout_id
        record = WorkoutRecord(
            workout_id=workout.workout_id,
            treadmill_id=self._session.treadmill_id,
            profile_name=event.profile,
            started_at=self._wall_clock(),
            outcome=WorkoutOutcome.RUNNING,
            rider_id=rider.rider_id if rider is not None else None,
            program_name=rider.program_name if rider is not None else None,
            program_stage=rider.program_stage if rider is not None else None,
        )
        self._enqueue(lambda: self._sink.begin_workout(record))
        self._log.info("workout_recording", workout_id=workout.workout_id)

    def _at(self, workout: _Workout, at: float | None = None) -> float:
        return max((self._clock.now() if at is None else at) - workout.started_at_clock, 0.0)

    def _segment_started(self, workout: _Workout, event: SegmentStarted) -> None:
        if workout.segment is not None and workout.segment.ended_at_s is None:
            self._close_segment(workout, completed=True, at=event.at)
        snapshot = self._session.snapshot()
        workout.forward_at_segment_start = snapshot.distance_forward_m
        workout.backward_at_segment_start = snapshot.distance_backward_m
        segment = SegmentRecord(
            index=event.index,
            direction=event.direction,
            planned_duration_s=event.duration_s,
            planned_speed_kmh=event.speed_kmh,
            planned_incline_pct=event.incline_pct,
            started_at_s=self._at(workout, event.at),
        )
        workout.segment = segment
        workout_id = workout.workout_id
        self._enqueue(lambda: self._sink.add_segment(workout_id, segment))

    def _close_segment(
        self, workout: _Workout, *, completed: bool, at: float | None = None
    ) -> None:
        segment = workout.segment
        if segment is None or segment.ended_at_s is not None:
            return
        snapshot = self._session.snapshot()
        # Everything the belt moved during the segment, whichever way: a turn's ramp-down is
        # walked in the turn segment, so the segments add up to the workout's distance.
        distance = (snapshot.distance_backward_m - workout.backward_at_segment_start) + (
            snapshot.distance_forward_m - workout.forward_at_segment_start
        )
        closed = replace(
            segment,
            ended_at_s=self._at(workout, at),
            distance_m=max(distance, 0.0),
            completed=completed,
        )
        workout.segment = closed
        workout_id = workout.workout_id
        self._enqueue(lambda: self._sink.update_segment(workout_id, closed))

    def _phase_seen(self, workout: _Workout, snapshot: SessionSnapshot) -> None:
        phase = snapshot.phase.value
        if phase == workout.phase:
            return
        workout.phase = phase
        change = PhaseChange(at_s=self._at(workout), phase=phase)
        workout_id = workout.workout_id
        self._enqueue(lambda: self._sink.add_phase(workout_id, change))

    def _sample(self, snapshot: SessionSnapshot, workout: _Workout) -> Sample:
        moving = snapshot.belt is BeltState.MOVING and snapshot.direction is not None
        return Sample(
            at_s=self._at(workout),
            speed_kmh=max(snapshot.speed_kmh or 0.0, 0.0),
            incline_pct=snapshot.incline_pct,
            direction=snapshot.direction if moving and snapshot.direction else Direction.REST,
            distance_forward_m=snapshot.distance_forward_m,
            distance_backward_m=snapshot.distance_backward_m,
            heart_rate_bpm=snapshot.heart_rate_bpm,
        )

    def _end(
        self, workout: _Workout, event: WorkoutFinished | WorkoutStopped | WorkoutAborted | None
    ) -> None:
        snapshot = self._session.snapshot()
        # The last second's sample, so the history ends where the workout did.
        self._queue_sample(self._sample(snapshot, workout))
        self._close_segment(
            workout,
            completed=isinstance(event, WorkoutFinished),
            at=None if event is None else event.at,
        )
        abort_reason: AbortReason | None = None
        abort_detail: str | None = None
        if isinstance(event, WorkoutFinished | WorkoutStopped):
            outcome = (
                WorkoutOutcome.FINISHED
                if isinstance(event, WorkoutFinished)
                else WorkoutOutcome.STOPPED
            )
            summary = WorkoutSummary(
                duration_s=event.elapsed_s,
                distance_forward_m=event.distance_forward_m,
                distance_backward_m=event.distance_backward_m,
                kcal=event.calories_kcal,
            )
        else:
            outcome = WorkoutOutcome.ABORTED if event is not None else WorkoutOutcome.INTERRUPTED
            if event is not None:
                abort_reason, abort_detail = event.reason, event.detail
            summary = WorkoutSummary(
                duration_s=snapshot.elapsed_s,
                distance_forward_m=snapshot.distance_forward_m,
                distance_backward_m=snapshot.distance_backward_m,
                kcal=snapshot.calories_kcal,
            )
        workout_id = workout.workout_id
        self._enqueue(
            lambda: self._sink.end_workout(
                workout_id,
                outcome,
                summary,
                abort_reason=abort_reason,
                abort_detail=abort_detail,
            )
        )
        self._workout = None
        self._log.info("workout_recorded", workout_id=workout_id, outcome=outcome.value)
