"""Rows and records: how the store's tables (schema.py) hold a rider and a workout, both ways.

`Store` (repository.py) writes what the `*_row` functions give and reads back through the
`*_from` ones, so the two directions are kept side by side; a whole workout (its row with the
segments, samples, phases and feedback under it) is written and read here too, on a connection
the caller's transaction holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from treadmilld.engine.api import AbortReason, Direction
from treadmilld.engine.limits import ProfileLimits
from treadmilld.history.records import (
    Feedback,
    PhaseChange,
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)
from treadmilld.history.riders import Rider, StrapChoice
from treadmilld.store.errors import UnknownWorkoutError
from treadmilld.store.schema import feedback, phases, samples, segments, workouts


def rider_row(rider: Rider) -> dict[str, Any]:
    return {
        "id": rider.rider_id,
        "display_name": rider.display_name,
        "body_weight_kg": rider.body_weight_kg,
        "max_heart_rate_bpm": rider.max_heart_rate_bpm,
        "clinical": rider.clinical,
        "limits": None if rider.limits is None else rider.limits.model_dump(exclude_none=True),
        "program_name": rider.program_name,
        "program_state": None if rider.program_state is None else dict(rider.program_state),
        "heart_rate_strap": None
        if rider.heart_rate_strap is None
        else rider.heart_rate_strap.to_json(),
    }


def rider_from(row: sa.RowMapping) -> Rider:
    return Rider(
        rider_id=row["id"],
        display_name=row["display_name"],
        body_weight_kg=row["body_weight_kg"],
        max_heart_rate_bpm=row["max_heart_rate_bpm"],
        clinical=row["clinical"],
        limits=None if row["limits"] is None else ProfileLimits.model_validate(row["limits"]),
        program_name=row["program_name"],
        program_state=row["program_state"],
        heart_rate_strap=None
        if row["heart_rate_strap"] is None
        else StrapChoice.from_json(row["heart_rate_strap"]),
    )


def summary_row(summary: WorkoutSummary | None) -> dict[str, float | None]:
    return {
        "duration_s": None if summary is None else summary.duration_s,
        "distance_forward_m": None if summary is None else summary.distance_forward_m,
        "distance_backward_m": None if summary is None else summary.distance_backward_m,
        "kcal": None if summary is None else summary.kcal,
    }


def workout_row(record: WorkoutRecord) -> dict[str, Any]:
    return {
        "id": record.workout_id,
        "rider_id": record.rider_id,
        "treadmill_id": record.treadmill_id,
        "profile_name": record.profile_name,
        "started_at": record.started_at,
        "outcome": record.outcome.value,
        "abort_reason": None if record.abort_reason is None else record.abort_reason.value,
        "abort_detail": record.abort_detail,
        "program_name": record.program_name,
        "program_stage": record.program_stage,
        **summary_row(record.summary),
    }


def workout_from(
    row: sa.RowMapping,
    report: Feedback | None,
    segment_records: Iterable[SegmentRecord] = (),
    sample_records: Iterable[Sample] = (),
    phase_records: Iterable[PhaseChange] = (),
) -> WorkoutRecord:
    summary = None
    if row["duration_s"] is not None:
        summary = WorkoutSummary(
            duration_s=row["duration_s"],
            distance_forward_m=row["distance_forward_m"],
            distance_backward_m=row["distance_backward_m"],
            kcal=row["kcal"],
        )
    reason = row["abort_reason"]
    return WorkoutRecord(
        workout_id=row["id"],
        treadmill_id=row["treadmill_id"],
        profile_name=row["profile_name"],
        started_at=row["started_at"],
        outcome=WorkoutOutcome(row["outcome"]),
        rider_id=row["rider_id"],
        abort_reason=None if reason is None else AbortReason(reason),
        abort_detail=row["abort_detail"],
        segments=tuple(segment_records),
        samples=tuple(sample_records),
        phases=tuple(phase_records),
        summary=summary,
        feedback=report,
        program_name=row["program_name"],
        program_stage=row["program_stage"],
    )


def feedback_from(row: sa.RowMapping) -> Feedback | None:
    if row["effort"] is None:
        return None
    return Feedback(effort=row["effort"], pain=row["pain"], reported_at=row["reported_at"])


def feedback_row(workout_id: str, report: Feedback) -> dict[str, Any]:
    return {
        "workout_id": workout_id,
        "effort": report.effort,
        "pain": report.pain,
        "reported_at": report.reported_at,
    }


def sample_row(workout_id: str, sample: Sample) -> dict[str, Any]:
    return {
        "workout_id": workout_id,
        "at_s": sample.at_s,
        "speed_kmh": sample.speed_kmh,
        "incline_pct": sample.incline_pct,
        "direction": sample.direction.value,
        "distance_forward_m": sample.distance_forward_m,
        "distance_backward_m": sample.distance_backward_m,
        "heart_rate_bpm": sample.heart_rate_bpm,
    }


def sample_from(row: sa.Row[Any]) -> Sample:
    return Sample(
        at_s=row.at_s,
        speed_kmh=row.speed_kmh,
        incline_pct=row.incline_pct,
        direction=Direction(row.direction),
        distance_forward_m=row.distance_forward_m,
        distance_backward_m=row.distance_backward_m,
        heart_rate_bpm=row.heart_rate_bpm,
    )


def segment_row(workout_id: str, segment: SegmentRecord) -> dict[str, Any]:
    return {
        "workout_id": workout_id,
        "idx": segment.index,
        "direction": segment.direction.value,
        "planned_duration_s": segment.planned_duration_s,
        "planned_speed_kmh": segment.planned_speed_kmh,
        "planned_incline_pct": segment.planned_incline_pct,
        "started_at_s": segment.started_at_s,
        "ended_at_s": segment.ended_at_s,
        "distance_m": segment.distance_m,
        "completed": segment.completed,
    }


def segment_from(row: sa.Row[Any]) -> SegmentRecord:
    return SegmentRecord(
        index=row.idx,
        direction=Direction(row.direction),
        planned_duration_s=row.planned_duration_s,
        planned_speed_kmh=row.planned_speed_kmh,
        planned_incline_pct=row.planned_incline_pct,
        started_at_s=row.started_at_s,
        ended_at_s=row.ended_at_s,
        distance_m=row.distance_m,
        completed=row.completed,
    )


def phase_row(workout_id: str, phase: PhaseChange) -> dict[str, Any]:
    return {"workout_id": workout_id, "at_s": phase.at_s, "phase": phase.phase}


def phase_from(row: sa.Row[Any]) -> PhaseChange:
    return PhaseChange(at_s=row.at_s, phase=row.phase)


# A whole workout: its row and every row under it, in one connection


async def insert_workout_children(conn: AsyncConnection, record: WorkoutRecord) -> None:
    workout_id = record.workout_id
    if record.segments:
        await conn.execute(
            sa.insert(segments), [segment_row(workout_id, s) for s in record.segments]
        )
    if record.samples:
        await conn.execute(sa.insert(samples), [sample_row(workout_id, s) for s in record.samples])
    if record.phases:
        await conn.execute(sa.insert(phases), [phase_row(workout_id, p) for p in record.phases])
    if record.feedback is not None:
        await conn.execute(sa.insert(feedback).values(feedback_row(workout_id, record.feedback)))


async def read_workout(conn: AsyncConnection, workout_id: str) -> WorkoutRecord:
    query = (
        sa.select(workouts, feedback.c.effort, feedback.c.pain, feedback.c.reported_at)
        .outerjoin(feedback, feedback.c.workout_id == workouts.c.id)
        .where(workouts.c.id == workout_id)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise unknown_workout(workout_id)
    segment_rows = await conn.execute(
        sa.select(segments).where(segments.c.workout_id == workout_id).order_by(segments.c.idx)
    )
    sample_rows = await conn.execute(
        sa.select(samples).where(samples.c.workout_id == workout_id).order_by(samples.c.at_s)
    )
    phase_rows = await conn.execute(
        sa.select(phases).where(phases.c.workout_id == workout_id).order_by(phases.c.id)
    )
    return workout_from(
        row,
        feedback_from(row),
        segment_records=[segment_from(s) for s in segment_rows],
        sample_records=[sample_from(s) for s in sample_rows],
        phase_records=[phase_from(p) for p in phase_rows],
    )


def unknown_workout(workout_id: str) -> UnknownWorkoutError:
    return UnknownWorkoutError(
        f"no workout {workout_id!r}; begin it first, or check the id (retention may have "
        "deleted an old one)"
    )
