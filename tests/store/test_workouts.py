"""A workout written as it runs reads back as it happened; lists, feedback and retention."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from tests.store.records import STARTED, rider, running, seconds
from treadmilld.engine.api import AbortReason, Direction
from treadmilld.history.records import (
    Feedback,
    PhaseChange,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutSummary,
)
from treadmilld.store.api import InvalidRecordError, Store, UnknownWorkoutError, WorkoutExistsError


async def test_a_workout_written_piece_by_piece_reads_back_as_it_happened(store: Store) -> None:
    await store.create_rider(rider())
    record = running("w-1")
    assert await store.begin_workout(record) == "w-1"
    assert (await store.get_workout("w-1")).outcome is WorkoutOutcome.RUNNING

    first = SegmentRecord(
        index=0,
        direction=Direction.FORWARD,
        planned_duration_s=60.0,
        planned_speed_kmh=3.0,
        planned_incline_pct=0.0,
        started_at_s=0.0,
    )
    second = SegmentRecord(
        index=1,
        direction=Direction.BACKWARD,
        planned_duration_s=30.0,
        planned_speed_kmh=2.0,
        planned_incline_pct=1.5,
        started_at_s=70.0,
    )
    await store.add_phase("w-1", PhaseChange(0.0, "running"))
    await store.add_segment("w-1", first)
    await store.append_samples("w-1", seconds(0, 60, heart_rate=False))
    done_first = dataclasses.replace(first, ended_at_s=60.0, distance_m=50.0)
    await store.update_segment("w-1", done_first)
    await store.add_phase("w-1", PhaseChange(60.0, "turning"))
    await store.add_phase("w-1", PhaseChange(60.0, "turn_pause"))  # same instant, kept in order
    await store.add_segment("w-1", second)
    await store.append_samples("w-1", seconds(60, 25))
    await store.add_phase("w-1", PhaseChange(85.0, "aborted"))
    summary = WorkoutSummary(
        duration_s=85.0, distance_forward_m=50.0, distance_backward_m=8.3, kcal=6.4
    )
    await store.end_workout(
        "w-1",
        WorkoutOutcome.ABORTED,
        summary,
        abort_reason=AbortReason.SAFETY_KEY,
        abort_detail="safety key pulled at 85 s",
    )

    got = await store.get_workout("w-1")
    assert got.outcome is WorkoutOutcome.ABORTED
    assert got.abort_reason is AbortReason.SAFETY_KEY
    assert got.abort_detail == "safety key pulled at 85 s"
    assert got.summary == summary
    assert got.segments == (done_first, second)
    assert got.samples == (*seconds(0, 60, heart_rate=False), *seconds(60, 25))
    assert [p.phase for p in got.phases] == ["running", "turning", "turn_pause", "aborted"]
    assert got.started_at == STARTED
    assert got.rider_id == "r-17"


async def test_writes_to_a_workout_that_is_not_there_are_refused(store: Store) -> None:
    with pytest.raises(UnknownWorkoutError, match="begin it first"):
        await store.append_samples("w-9", seconds(0, 1))
    with pytest.raises(UnknownWorkoutError):
        await store.end_workout("w-9", WorkoutOutcome.FINISHED, None)
    with pytest.raises(UnknownWorkoutError):
        await store.get_workout("w-9")
    await store.begin_workout(running("w-1", rider_id=None))
    with pytest.raises(WorkoutExistsError):
        await store.begin_workout(running("w-1", rider_id=None))
    with pytest.raises(InvalidRecordError, match="add it first"):
        await store.update_segment("w-1", SegmentRecord(3, Direction.FORWARD, 10.0, 2.0, 0.0, 0.0))


async def test_workouts_are_listed_newest_first_by_rider_and_since(store: Store) -> None:
    await store.create_rider(rider("r-17"))
    await store.create_rider(rider("r-18"))
    for day, rider_id in enumerate(["r-17", "r-18", "r-17", None, "r-17"]):
        workout_id = f"w-{day}"
        await store.begin_workout(
            running(workout_id, rider_id=rider_id, started_at=STARTED + timedelta(days=day))
        )
        await store.append_samples(workout_id, seconds(0, 5))

    assert [w.workout_id for w in await store.list_workouts()] == [
        "w-4", "w-3", "w-2", "w-1", "w-0",
    ]  # fmt: skip
    by_rider = await store.list_workouts(rider_id="r-17")
    assert [w.workout_id for w in by_rider] == ["w-4", "w-2", "w-0"]
    assert all(w.samples == () for w in by_rider)  # a list reads no seconds
    since = await store.list_workouts(rider_id="r-17", since=STARTED + timedelta(days=1))
    assert [w.workout_id for w in since] == ["w-4", "w-2"]
    assert [w.workout_id for w in await store.list_workouts(limit=2)] == ["w-4", "w-3"]


async def test_feedback_is_kept_per_workout_the_latest_report_winning(store: Store) -> None:
    await store.begin_workout(running("w-1", rider_id=None))
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    await store.add_feedback("w-1", Feedback(effort=7, pain=3, reported_at=at))
    later = Feedback(effort=6, pain=0, reported_at=at + timedelta(minutes=5))
    await store.add_feedback("w-1", later)
    assert (await store.get_workout("w-1")).feedback == later
    [listed] = await store.list_workouts()
    assert listed.feedback == later

    for effort, pain in ((11, 0), (0, -1)):
        with pytest.raises(InvalidRecordError, match="from 0 to 10"):
            await store.add_feedback("w-1", Feedback(effort, pain, at))
    with pytest.raises(UnknownWorkoutError):
        await store.add_feedback("w-9", later)


async def test_retention_deletes_old_finished_workouts_and_keeps_recent_and_running(
    store: Store,
) -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    ages = {"w-old": 100, "w-edge": 30, "w-new": 29, "w-running-old": 200}
    for workout_id, days in ages.items():
        await store.begin_workout(
            running(workout_id, rider_id=None, started_at=now - timedelta(days=days, seconds=1))
        )
        await store.append_samples(workout_id, seconds(0, 10))
        if workout_id != "w-running-old":
            await store.end_workout(workout_id, WorkoutOutcome.FINISHED, None)

    assert await store.apply_retention(30, now=now) == 2

    assert {w.workout_id for w in await store.list_workouts()} == {"w-new", "w-running-old"}
    assert len((await store.get_workout("w-running-old")).samples) == 10
    with pytest.raises(InvalidRecordError):
        await store.apply_retention(0, now=now)


async def test_on_start_only_this_daemons_running_workouts_become_interrupted(
    store: Store,
) -> None:
    await store.begin_workout(running("w-mine", rider_id=None))
    await store.append_samples("w-mine", seconds(0, 12))
    other_pi = dataclasses.replace(running("w-other-pi", rider_id=None), treadmill_id="tm07")
    await store.begin_workout(other_pi)
    await store.begin_workout(running("w-done", rider_id=None))
    await store.end_workout("w-done", WorkoutOutcome.STOPPED, None)

    assert await store.mark_interrupted_on_start(["tm01", "tm02"]) == ["w-mine"]

    mine = await store.get_workout("w-mine")
    assert mine.outcome is WorkoutOutcome.INTERRUPTED
    assert mine.samples == tuple(seconds(0, 12))
    assert (await store.get_workout("w-other-pi")).outcome is WorkoutOutcome.RUNNING
    assert (await store.get_workout("w-done")).outcome is WorkoutOutcome.STOPPED
    assert await store.mark_interrupted_on_start(["tm01"]) == []
