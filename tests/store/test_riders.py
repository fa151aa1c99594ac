"""Riders: kept faithfully, exported in full, deleted with all their history at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.store.records import rider, running, seconds
from treadmilld.engine.limits import ProfileLimits
from treadmilld.history.records import Feedback, WorkoutOutcome, WorkoutSummary
from treadmilld.store.api import (
    InvalidRecordError,
    RiderExistsError,
    Store,
    UnknownRiderError,
    UnknownWorkoutError,
)


async def test_a_rider_reads_back_as_created_then_as_changed(store: Store) -> None:
    created = rider(
        max_heart_rate_bpm=168,
        clinical=True,
        limits=ProfileLimits(max_backward_speed_kmh=2.5, confirm_turns=True),
        program_name="clinical-p3",
        program_state={"stage": 0, "sessions": [], "confirmed_by": None},
    )
    await store.create_rider(created)
    assert await store.get_rider("r-17") == created

    changed = rider(body_weight_kg=70.0, program_name="seed-starter", program_state={"stage": 2})
    await store.update_rider(changed)
    assert await store.get_rider("r-17") == changed
    assert await store.list_riders() == [changed]


async def test_riders_are_listed_by_id(store: Store) -> None:
    for rider_id in ("r-2", "r-10", "a-1"):
        await store.create_rider(rider(rider_id))
    assert [r.rider_id for r in await store.list_riders()] == ["a-1", "r-10", "r-2"]


async def test_a_rider_id_taken_or_unknown_or_not_a_pseudonym_is_refused(store: Store) -> None:
    await store.create_rider(rider())
    with pytest.raises(RiderExistsError, match="exists already"):
        await store.create_rider(rider(display_name="Someone else"))
    with pytest.raises(UnknownRiderError, match="create the rider first"):
        await store.update_rider(rider("r-99"))
    with pytest.raises(UnknownRiderError):
        await store.get_rider("r-99")
    with pytest.raises(InvalidRecordError, match="never a name"):
        await store.create_rider(rider("Anna Berg"))
    with pytest.raises(UnknownRiderError):
        await store.begin_workout(running("w-1", rider_id="r-99"))


async def _history(store: Store, rider_id: str, workout_id: str) -> None:
    await store.begin_workout(running(workout_id, rider_id=rider_id))
    await store.append_samples(workout_id, seconds(0, 30))
    await store.end_workout(
        workout_id, WorkoutOutcome.FINISHED, WorkoutSummary(30.0, 0.0, 16.7, 2.1)
    )
    reported = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    await store.add_feedback(workout_id, Feedback(effort=5, pain=2, reported_at=reported))


async def test_deleting_a_rider_deletes_all_their_history_and_nobody_elses(store: Store) -> None:
    await store.create_rider(rider("r-17"))
    await store.create_rider(rider("r-18"))
    await _history(store, "r-17", "w-1")
    await _history(store, "r-17", "w-2")
    await _history(store, "r-18", "w-3")

    assert await store.delete_rider("r-17") == 2

    with pytest.raises(UnknownRiderError):
        await store.get_rider("r-17")
    for gone in ("w-1", "w-2"):
        with pytest.raises(UnknownWorkoutError):
            await store.get_workout(gone)
    assert await store.list_workouts(rider_id="r-17") == []
    kept = await store.get_workout("w-3")
    assert len(kept.samples) == 30
    # Nothing of theirs is left behind in the child tables either.
    async with store.engine.connect() as connection:
        for table in ("samples", "feedback"):
            count = await connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            assert count == (30 if table == "samples" else 1)
    assert kept.feedback is not None
    with pytest.raises(UnknownRiderError):
        await store.delete_rider("r-17")


async def test_a_rider_export_holds_everything_about_them_as_plain_json(store: Store) -> None:
    await store.create_rider(rider("r-17", limits=ProfileLimits(max_backward_speed_kmh=3.0)))
    await store.create_rider(rider("r-18"))
    await _history(store, "r-17", "w-1")
    await _history(store, "r-18", "w-2")

    export = await store.export_rider("r-17")

    assert json.loads(json.dumps(export)) == export
    assert export["rider"]["rider_id"] == "r-17"
    assert export["rider"]["limits"] == {"max_backward_speed_kmh": 3.0}
    assert [w["workout_id"] for w in export["workouts"]] == ["w-1"]
    [workout] = export["workouts"]
    assert workout["outcome"] == "finished"
    assert workout["started_at"] == "2026-03-02T08:30:00+00:00"
    assert len(workout["samples"]) == 30
    assert workout["samples"][3] == {
        "at_s": 3.0,
        "speed_kmh": 2.0,
        "incline_pct": 0.0,
        "direction": "backward",
        "distance_forward_m": 0.0,
        "distance_backward_m": 1.667,
        "heart_rate_bpm": 103,
    }
    assert workout["feedback"] == {
        "effort": 5,
        "pain": 2,
        "reported_at": "2026-03-02T09:05:00+00:00",
    }
    with pytest.raises(UnknownRiderError):
        await store.export_rider("r-99")
