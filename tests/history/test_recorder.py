"""The recorder writes a workout's history as it runs, from the session's own events and
measurements, in virtual time over the engine's test treadmill."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest
from structlog.testing import capture_logs

from tests.engine.doubles import DropsLinkMidRun
from tests.engine.harness import rig, run_in_virtual_time
from treadmilld.engine.api import AbortReason, Direction, Phase
from treadmilld.history.recorder import RiderContext, WorkoutRecorder
from treadmilld.history.records import (
    HistoryUnavailableError,
    PhaseChange,
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)


@dataclass
class KeepsEverything:
    """A history sink that keeps what it is given, in memory, as the store would."""

    workouts: dict[str, WorkoutRecord] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    segments: dict[str, dict[int, SegmentRecord]] = field(default_factory=dict)
    phases: dict[str, list[PhaseChange]] = field(default_factory=dict)
    sample_batches: int = 0

    async def begin_workout(self, record: WorkoutRecord) -> str:
        self.workouts[record.workout_id] = record
        self.samples[record.workout_id] = []
        self.segments[record.workout_id] = {}
        self.phases[record.workout_id] = []
        return record.workout_id

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        # The store keys samples by their instant: a second sample at the same `at_s` is
        # refused there (and its whole batch with it).
        instants = {sample.at_s for sample in self.samples[workout_id]}
        assert not instants & {sample.at_s for sample in batch}, "two samples at one instant"
        self.samples[workout_id].extend(batch)
        self.sample_batches += 1

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        assert segment.index not in self.segments[workout_id]
        self.segments[workout_id][segment.index] = segment

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        assert segment.index in self.segments[workout_id]
        self.segments[workout_id][segment.index] = segment

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None:
        self.phases[workout_id].append(phase)

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None:
        self.workouts[workout_id] = replace(
            self.workouts[workout_id],
            outcome=outcome,
            summary=summary,
            abort_reason=abort_reason,
            abort_detail=abort_detail,
        )

    def only(self) -> WorkoutRecord:
        assert len(self.workouts) == 1
        return next(iter(self.workouts.values()))


@dataclass
class UnreachableUntil(KeepsEverything):
    """A database that cannot be reached until `back_at` on the clock."""

    back_at: float = 0.0
    refused: int = 0

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self.back_at:
            self.refused += 1
            raise HistoryUnavailableError("connection refused (test)")

    async def begin_workout(self, record: WorkoutRecord) -> str:
        self._check()
        return await super().begin_workout(record)

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        self._check()
        await super().append_samples(workout_id, batch)


async def _record(
    profile: str, sink: KeepsEverything, *, make: object = None, rider: RiderContext | None = None
) -> WorkoutRecorder:
    kwargs = {} if make is None else {"make_treadmill": make}
    async with rig(**kwargs) as r:  # type: ignore[arg-type]
        recorder = WorkoutRecorder(r.session, sink, r.clock)
        recorder.for_rider(rider)
        task = asyncio.create_task(recorder.run())
        await asyncio.sleep(0)  # the recorder subscribes before anything happens
        await r.session.start_profile(profile)
        with contextlib.suppress(TimeoutError):
            await r.wait_for("workout_finished", within_s=3 * 3600)
        if not r.recorder.of_type("workout_finished"):
            await r.wait_for("workout_aborted")
        await asyncio.sleep(60.0)  # what a database that was down needs to catch up
        await recorder.drained()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return recorder


def test_a_finished_workout_is_recorded_with_its_segments_samples_and_summary() -> None:
    sink = KeepsEverything()
    run_in_virtual_time(lambda: _record("p1-starter-a", sink, rider=RiderContext("r-17")))
    record = sink.only()
    assert record.outcome is WorkoutOutcome.FINISHED
    assert record.rider_id == "r-17"
    assert record.profile_name == "p1-starter-a"
    summary = record.summary
    assert summary is not None
    samples = sink.samples[record.workout_id]
    # One sample a second for the whole workout, turns and all, plus the last moment.
    assert len(samples) == pytest.approx(samples[-1].at_s, abs=2)
    assert [s.at_s for s in samples] == sorted(s.at_s for s in samples)
    # The history ends where the workout did.
    assert samples[-1].distance_forward_m == pytest.approx(summary.distance_forward_m, abs=1.0)
    assert samples[-1].distance_backward_m == pytest.approx(summary.distance_backward_m, abs=1.0)
    assert summary.distance_backward_m > 0
    assert any(s.direction is Direction.BACKWARD and s.speed_kmh > 0 for s in samples)
    segments = [
        sink.segments[record.workout_id][i] for i in sorted(sink.segments[record.workout_id])
    ]
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(s.completed and s.ended_at_s is not None for s in segments)
    walked = summary.distance_forward_m + summary.distance_backward_m
    assert sum(s.distance_m for s in segments) == pytest.approx(walked, abs=1.0)
    backward = sum(s.distance_m for s in segments if s.direction is Direction.BACKWARD)
    assert 0 < backward <= summary.distance_backward_m + 1.0
    phases = [p.phase for p in sink.phases[record.workout_id]]
    assert Phase.RUNNING.value in phases
    assert Phase.TURNING.value in phases
    assert phases[-1] == Phase.FINISHED.value


def test_an_aborted_workout_is_recorded_with_its_reason_and_what_was_done() -> None:
    sink = KeepsEverything()
    run_in_virtual_time(
        lambda: _record(
            "forward-walk",
            sink,
            make=lambda clock: DropsLinkMidRun(clock, drop_at=120.0, back_after=30.0),
        )
    )
    record = sink.only()
    assert record.outcome is WorkoutOutcome.ABORTED
    assert record.abort_reason is AbortReason.LINK_LOST
    assert record.rider_id is None
    assert record.summary is not None
    assert record.summary.distance_forward_m > 0
    samples = sink.samples[record.workout_id]
    assert 100 <= len(samples) <= 200
    segments = sink.segments[record.workout_id]
    assert not segments[max(segments)].completed


def test_a_database_that_is_down_loses_nothing_and_says_what_to_do() -> None:
    sink = UnreachableUntil(back_at=300.0)
    with capture_logs() as logs:
        recorder = run_in_virtual_time(lambda: _record("p1-starter-a", sink))
    record = sink.only()
    assert sink.refused > 0
    assert record.outcome is WorkoutOutcome.FINISHED
    samples = sink.samples[record.workout_id]
    assert len(samples) == pytest.approx(samples[-1].at_s, abs=2)
    assert recorder.dropped_samples == 0
    warnings = [e for e in logs if e["event"] == "history_write_failed"]
    assert warnings
    assert "[database] url" in warnings[0]["action"]
