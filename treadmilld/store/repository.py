"""The store: riders and workout history on SQLite or PostgreSQL.

Every call is its own transaction and commits before it returns: a workout is written as it
runs (`begin_workout`, then `append_samples`, `add_segment`, `update_segment`, `add_phase`),
so a power loss or SIGKILL loses at most the batch being written, and the next start marks the
workout `interrupted` (`mark_interrupted_on_start`) with every sample written before kept.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from treadmilld.engine.api import AbortReason
from treadmilld.history.records import (
    Feedback,
    PhaseChange,
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)
from treadmilld.history.riders import RIDER_ID_PATTERN, Rider
from treadmilld.store.availability import reachability
from treadmilld.store.engine import create_engine
from treadmilld.store.errors import (
    InvalidRecordError,
    RiderExistsError,
    UnknownRiderError,
    WorkoutExistsError,
)
from treadmilld.store.export import rider_export
from treadmilld.store.migrate import upgrade_schema
from treadmilld.store.rows import (
    feedback_from,
    feedback_row,
    insert_workout_children,
    phase_row,
    read_workout,
    rider_from,
    rider_row,
    sample_row,
    segment_row,
    summary_row,
    unknown_workout,
    workout_from,
    workout_row,
)
from treadmilld.store.schema import (
    WORKOUT_ID_LENGTH,
    feedback,
    phases,
    riders,
    samples,
    segments,
    workouts,
)

_log = structlog.get_logger(__name__)

FEEDBACK_RANGE = range(11)  # effort and pain are each reported 0 to 10 (issue 15)


async def open_store(url: str, *, wall_time: Callable[[], float] = time.time) -> Store:
    """Open the database at `url`, migrating its schema to the newest this treadmilld knows.

    Raises SchemaTooNewError when a newer treadmilld migrated it, HistoryUnavailableError when
    the database cannot be reached. `wall_time` (seconds since the epoch) stamps riders'
    created/updated times."""
    engine = create_engine(url)
    try:
        with reachability(engine.url.render_as_string(hide_password=True)):
            await upgrade_schema(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine, wall_time=wall_time)


class Store:
    """Every method raises HistoryUnavailableError (treadmilld.history.records) when the
    database cannot be reached (connection refused or lost, a server restarting, SQLite's file
    locked or its disk gone), so a caller may try again; every other error is its own."""

    def __init__(self, engine: AsyncEngine, *, wall_time: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._wall_time = wall_time
        self._where = engine.url.render_as_string(hide_password=True)

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed on leaving; connectivity failures as HistoryUnavailable."""
        with reachability(self._where):
            async with self._engine.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        with reachability(self._where):
            async with self._engine.connect() as conn:
                yield conn

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_time(), UTC)

    # Riders

    async def create_rider(self, rider: Rider) -> None:
        _check_rider(rider)
        now = self._now()
        async with self._begin() as conn:
            if await _rider_exists(conn, rider.rider_id):
                raise RiderExistsError(
                    f"rider {rider.rider_id!r} exists already; change it with an update, or "
                    "choose another id"
                )
            await conn.execute(
                sa.insert(riders).values(**rider_row(rider), created_at=now, updated_at=now)
            )
        _log.info("rider_created", rider_id=rider.rider_id)

    async def update_rider(self, rider: Rider) -> None:
        """Replace every field of the rider with `rider`'s."""
        _check_rider(rider)
        async with self._begin() as conn:
            result = await conn.execute(
                sa.update(riders)
                .where(riders.c.id == rider.rider_id)
                .values(**rider_row(rider), updated_at=self._now())
            )
            if result.rowcount == 0:
                raise _unknown_rider(rider.rider_id)
        _log.info("rider_updated", rider_id=rider.rider_id)

    async def get_rider(self, rider_id: str) -> Rider:
        async with self._connect() as conn:
            query = sa.select(riders).where(riders.c.id == rider_id)
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise _unknown_rider(rider_id)
        return rider_from(row)

    async def list_riders(self) -> list[Rider]:
        async with self._connect() as conn:
            rows = await conn.execute(sa.select(riders).order_by(riders.c.id))
            return [rider_from(row) for row in rows.mappings()]

    async def delete_rider(self, rider_id: str) -> int:
        """Delete the rider and their whole history (workouts, samples, feedback) in one
        transaction; returns how many workouts went."""
        async with self._begin() as conn:
            gone = await conn.execute(sa.delete(workouts).where(workouts.c.rider_id == rider_id))
            result = await conn.execute(sa.delete(riders).where(riders.c.id == rider_id))
            if result.rowcount == 0:
                raise _unknown_rider(rider_id)
        _log.info("rider_deleted", rider_id=rider_id, workouts=gone.rowcount)
        return gone.rowcount

    async def export_rider(self, rider_id: str) -> dict[str, Any]:
        """Everything stored about the rider, as plain JSON values (a data-subject export)."""
        async with self._connect() as conn:
            query = sa.select(riders).where(riders.c.id == rider_id)
            rider = (await conn.execute(query)).mappings().first()
            if rider is None:
                raise _unknown_rider(rider_id)
            ids = await conn.scalars(
                sa.select(workouts.c.id)
                .where(workouts.c.rider_id == rider_id)
                .order_by(workouts.c.started_at, workouts.c.id)
            )
            records = [await read_workout(conn, workout_id) for workout_id in ids.all()]
        return rider_export(rider, records)

    # Workouts, written as they run

    async def begin_workout(self, record: WorkoutRecord) -> str:
        """Store a new workout (normally RUNNING, with nothing recorded yet); returns its id."""
        if not record.workout_id or len(record.workout_id) > WORKOUT_ID_LENGTH:
            raise InvalidRecordError(
                f"workout id {record.workout_id!r}: give 1 to {WORKOUT_ID_LENGTH} characters"
            )
        async with self._begin() as conn:
            if record.rider_id is not None and not await _rider_exists(conn, record.rider_id):
                raise _unknown_rider(record.rider_id)
            if await _workout_exists(conn, record.workout_id):
                raise WorkoutExistsError(
                    f"workout {record.workout_id!r} exists already; give each workout a new id"
                )
            await conn.execute(sa.insert(workouts).values(**workout_row(record)))
            await insert_workout_children(conn, record)
        _log.info(
            "workout_recording_started",
            workout_id=record.workout_id,
            treadmill_id=record.treadmill_id,
            rider_id=record.rider_id,
        )
        return record.workout_id

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        if not batch:
            return
        async with self._begin() as conn:
            await _require_workout(conn, workout_id)
            await conn.execute(sa.insert(samples), [sample_row(workout_id, s) for s in batch])

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        async with self._begin() as conn:
            await _require_workout(conn, workout_id)
            await conn.execute(sa.insert(segments).values(segment_row(workout_id, segment)))

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        """Replace the stored segment of the same index (its end, distance, completion)."""
        async with self._begin() as conn:
            result = await conn.execute(
                sa.update(segments)
                .where(segments.c.workout_id == workout_id, segments.c.idx == segment.index)
                .values(segment_row(workout_id, segment))
            )
            if result.rowcount == 0:
                await _require_workout(conn, workout_id)
                raise InvalidRecordError(
                    f"workout {workout_id!r} has no segment {segment.index}; add it first"
                )

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None:
        async with self._begin() as conn:
            await _require_workout(conn, workout_id)
            await conn.execute(sa.insert(phases).values(phase_row(workout_id, phase)))

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None:
        async with self._begin() as conn:
            result = await conn.execute(
                sa.update(workouts)
                .where(workouts.c.id == workout_id)
                .values(
                    outcome=outcome.value,
                    abort_reason=None if abort_reason is None else abort_reason.value,
                    abort_detail=abort_detail,
                    **summary_row(summary),
                )
            )
            if result.rowcount == 0:
                raise unknown_workout(workout_id)
        _log.info(
            "workout_recording_ended",
            workout_id=workout_id,
            outcome=outcome.value,
            abort_reason=abort_reason,
        )

    async def mark_interrupted_on_start(self, treadmill_ids: Collection[str]) -> list[str]:
        """Every workout of these treadmills still RUNNING becomes INTERRUPTED (the daemon
        died under it); its samples stay. Only this daemon's treadmills: on a shared
        PostgreSQL, another Pi's running workouts are its own. Returns the ids marked."""
        if not treadmill_ids:
            return []
        running = sa.and_(
            workouts.c.outcome == WorkoutOutcome.RUNNING.value,
            workouts.c.treadmill_id.in_(list(treadmill_ids)),
        )
        async with self._begin() as conn:
            ids = list((await conn.scalars(sa.select(workouts.c.id).where(running))).all())
            if ids:
                await conn.execute(
                    sa.update(workouts)
                    .where(workouts.c.id.in_(ids))
                    .values(outcome=WorkoutOutcome.INTERRUPTED.value)
                )
        for workout_id in ids:
            _log.warning("workout_marked_interrupted", workout_id=workout_id)
        return ids

    # Reading

    async def get_workout(self, workout_id: str) -> WorkoutRecord:
        """The whole workout: segments, samples, phases, summary and feedback."""
        async with self._connect() as conn:
            return await read_workout(conn, workout_id)

    async def list_workouts(
        self,
        rider_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[WorkoutRecord]:
        """Newest first, with summary and feedback but without segments, samples and phases
        (`get_workout` has those): a list of 45-minute workouts would otherwise read every
        second of each."""
        query = (
            sa.select(workouts, feedback.c.effort, feedback.c.pain, feedback.c.reported_at)
            .outerjoin(feedback, feedback.c.workout_id == workouts.c.id)
            .order_by(workouts.c.started_at.desc(), workouts.c.id.desc())
            .limit(limit)
        )
        if rider_id is not None:
            query = query.where(workouts.c.rider_id == rider_id)
        if since is not None:
            query = query.where(workouts.c.started_at >= since)
        async with self._connect() as conn:
            rows = await conn.execute(query)
            return [workout_from(row, feedback_from(row)) for row in rows.mappings()]

    # After a workout

    async def add_feedback(self, workout_id: str, report: Feedback) -> None:
        """The rider's effort and pain for a workout; a later report replaces an earlier one."""
        for name, value in (("effort", report.effort), ("pain", report.pain)):
            if value not in FEEDBACK_RANGE:
                raise InvalidRecordError(f"{name} {value!r}: report a whole number from 0 to 10")
        async with self._begin() as conn:
            await _require_workout(conn, workout_id)
            await conn.execute(sa.delete(feedback).where(feedback.c.workout_id == workout_id))
            await conn.execute(sa.insert(feedback).values(feedback_row(workout_id, report)))

    async def apply_retention(self, older_than_days: int, *, now: datetime | None = None) -> int:
        """Delete workouts (and all they hold) that started more than `older_than_days` days
        before `now`; a workout still running is kept. Returns how many went."""
        if older_than_days < 1:
            raise InvalidRecordError(
                f"retention of {older_than_days} days would delete today's workouts; give 1 "
                "or more, or no retention to keep everything"
            )
        cutoff = (now if now is not None else self._now()) - timedelta(days=older_than_days)
        async with self._begin() as conn:
            result = await conn.execute(
                sa.delete(workouts).where(
                    workouts.c.started_at < cutoff,
                    workouts.c.outcome != WorkoutOutcome.RUNNING.value,
                )
            )
        if result.rowcount:
            _log.info(
                "workouts_deleted_by_retention",
                count=result.rowcount,
                older_than_days=older_than_days,
            )
        return result.rowcount


# Checks several methods share


def _check_rider(rider: Rider) -> None:
    if not RIDER_ID_PATTERN.fullmatch(rider.rider_id):
        raise InvalidRecordError(
            f"rider id {rider.rider_id!r}: use 1 to 32 lowercase letters, digits, '-' or '_' "
            "(a pseudonym like 'r-17', never a name: it is an MQTT topic level)"
        )


async def _rider_exists(conn: AsyncConnection, rider_id: str) -> bool:
    found = await conn.scalar(sa.select(riders.c.id).where(riders.c.id == rider_id))
    return found is not None


async def _workout_exists(conn: AsyncConnection, workout_id: str) -> bool:
    found = await conn.scalar(sa.select(workouts.c.id).where(workouts.c.id == workout_id))
    return found is not None


async def _require_workout(conn: AsyncConnection, workout_id: str) -> None:
    if not await _workout_exists(conn, workout_id):
        raise unknown_workout(workout_id)


def _unknown_rider(rider_id: str) -> UnknownRiderError:
    return UnknownRiderError(f"no rider {rider_id!r}; create the rider first, or check the id")
