"""The daemon's history writer: a running workout's rows written with plain SQL through the
database's own driver (the stdlib's sqlite3 on one worker thread, asyncpg for PostgreSQL:
writer_backends.py), without SQLAlchemy.

Why a second path beside `Store`: issue 13 holds the daemon to 60 MiB resident, and SQLAlchemy
alone adds about 14 MiB to it (docs/database.md). The writer covers what `treadmilld run`
does to history (a workout's rows as it runs, `interrupted` at start, retention); everything
else (the CLI, riders, reading back, migrations) is `Store`'s. Both write the tables of
`schema.py`, the tests read what this writes through `Store` on both databases, and
`SCHEMA_REVISION` is checked against the migrations.

Opening checks the schema revision with one plain query; only when it is not the one this
code writes (an empty database, an older or a newer schema) does it migrate, through
`open_store` in a child process (`store/upgrade.py`), whose refusal of a newer schema comes
back as SchemaTooNewError.

Every call commits before it returns, like `Store`'s; connectivity failures raise
HistoryUnavailableError, so the recorder retries.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from treadmilld.engine.api import AbortReason
from treadmilld.history.records import (
    HistoryUnavailableError,
    PhaseChange,
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)
from treadmilld.store.errors import InvalidRecordError, SchemaTooNewError, StoreError
from treadmilld.store.writer_backends import Backend, PostgresBackend, SqliteBackend

_log = structlog.get_logger(__name__)

# The newest migration in migrations/versions/ (tests/store/test_writer.py checks it against
# Alembic's head): the schema the statements below are written for.
SCHEMA_REVISION = "0003"
# Same as store/engine.py's, for the same reasons (SQLite "PRAGMA busy_timeout").
SQLITE_BUSY_TIMEOUT_MS = 5000


def _backend_for(url: str) -> Backend:
    """The backend for a `database.url` as `store/engine.py` reads it (sqlite:///PATH,
    postgresql://..., with or without the driver after a `+`)."""
    scheme, _, rest = url.partition("://")
    backend = scheme.split("+", 1)[0].lower()
    if backend == "sqlite":
        path = rest.removeprefix("/")
        if not path or path == ":memory:":
            raise StoreError(
                f"database.url {url!r}: SQLite needs a file (sqlite:///PATH); an in-memory "
                "database would lose every workout when the daemon stops"
            )
        # Read here, at open, so a test can shorten the wait for a locked file.
        return SqliteBackend(Path(path), busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
    if backend in ("postgresql", "postgres"):
        parts = urlsplit(url)
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        return PostgresBackend(f"postgresql://{rest}", where)
    raise StoreError(
        f"database.url with {scheme!r}: treadmilld stores in SQLite or PostgreSQL only; use "
        "postgresql://USER:PASSWORD@HOST/DATABASE or leave database.url unset for SQLite in "
        "the state directory"
    )


async def open_history_writer(url: str) -> HistoryWriter:
    """The writer for `url`, its schema migrated first when it is not `SCHEMA_REVISION`.

    Raises SchemaTooNewError (a newer treadmilld migrated the database), HistoryUnavailableError
    (it cannot be reached) or StoreError (a URL treadmilld cannot use)."""
    backend = _backend_for(url)
    try:
        await _migrate_if_needed(backend, url)
    except BaseException:
        await backend.close()
        raise
    return HistoryWriter(backend)


async def _migrate_if_needed(backend: Backend, url: str) -> None:
    if await backend.revision() == SCHEMA_REVISION:
        return
    await _migrate_in_child(url, backend.where)
    found = await backend.revision()
    if found != SCHEMA_REVISION:
        raise StoreError(
            f"the database at {backend.where} is at schema {found!r} after migrating, and this "
            f"treadmilld writes {SCHEMA_REVISION!r}: its migrations and writer disagree; report "
            "this as a treadmilld bug"
        )


async def _migrate_in_child(url: str, where: str) -> None:
    """Migrate through `Store` in a child process (store/upgrade.py): Alembic and SQLAlchemy
    never load into the daemon. Its exit status becomes the error `open_store` would raise."""
    from treadmilld.store import upgrade  # noqa: PLC0415 - its constants only

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "treadmilld.store.upgrade",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await child.communicate(f"{url}\n".encode())
    lines = stderr.decode(errors="replace").strip().splitlines()
    message = lines[-1] if lines else f"the migration exited with status {child.returncode}"
    if child.returncode == upgrade.EXIT_MIGRATED:
        _log.info("database_migrated", database=where)
        return
    if child.returncode == upgrade.EXIT_SCHEMA_TOO_NEW:
        raise SchemaTooNewError(message)
    if child.returncode == upgrade.EXIT_UNREACHABLE:
        raise HistoryUnavailableError(message)
    raise StoreError(
        f"migrating the database at {where} failed: {message}; run "
        "`treadmilld history list` to see the whole error"
    )


_SAMPLE_INSERT = (
    "INSERT INTO samples (workout_id, at_s, speed_kmh, incline_pct, direction, "
    "distance_forward_m, distance_backward_m, heart_rate_bpm) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SEGMENT_COLUMNS = (
    "direction = ?, planned_duration_s = ?, planned_speed_kmh = ?, planned_incline_pct = ?, "
    "started_at_s = ?, ended_at_s = ?, distance_m = ?, completed = ?"
)


def _segment_values(segment: SegmentRecord) -> tuple[Any, ...]:
    return (
        segment.direction.value,
        segment.planned_duration_s,
        segment.planned_speed_kmh,
        segment.planned_incline_pct,
        segment.started_at_s,
        segment.ended_at_s,
        segment.distance_m,
        segment.completed,
    )


class HistoryWriter:
    """The recorder's sink in the daemon (`treadmilld.history.recorder.HistorySink`), plus
    what the daemon does to history at start and once a day."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    @property
    def where(self) -> str:
        """The database, for log lines (no password)."""
        return self._backend.where

    async def close(self) -> None:
        await self._backend.close()

    async def begin_workout(self, record: WorkoutRecord) -> str:
        summary = record.summary
        await self._backend.execute(
            "INSERT INTO workouts (id, rider_id, treadmill_id, profile_name, started_at, "
            "outcome, abort_reason, abort_detail, duration_s, distance_forward_m, "
            "distance_backward_m, kcal, program_name, program_stage) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            record.workout_id,
            record.rider_id,
            record.treadmill_id,
            record.profile_name,
            self._backend.timestamp(record.started_at),
            record.outcome.value,
            None if record.abort_reason is None else record.abort_reason.value,
            record.abort_detail,
            None if summary is None else summary.duration_s,
            None if summary is None else summary.distance_forward_m,
            None if summary is None else summary.distance_backward_m,
            None if summary is None else summary.kcal,
            record.program_name,
            record.program_stage,
        )
        return record.workout_id

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        if not batch:
            return
        await self._backend.execute_many(
            _SAMPLE_INSERT,
            [
                (
                    workout_id,
                    s.at_s,
                    s.speed_kmh,
                    s.incline_pct,
                    s.direction.value,
                    s.distance_forward_m,
                    s.distance_backward_m,
                    s.heart_rate_bpm,
                )
                for s in batch
            ],
        )

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        await self._backend.execute(
            "INSERT INTO segments (workout_id, idx, direction, planned_duration_s, "
            "planned_speed_kmh, planned_incline_pct, started_at_s, ended_at_s, distance_m, "
            "completed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            workout_id,
            segment.index,
            *_segment_values(segment),
        )

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        changed = await self._backend.execute(
            f"UPDATE segments SET {_SEGMENT_COLUMNS} WHERE workout_id = ? AND idx = ?",  # noqa: S608 - fixed column list
            *_segment_values(segment),
            workout_id,
            segment.index,
        )
        if changed == 0:
            raise InvalidRecordError(
                f"workout {workout_id!r} has no segment {segment.index}; add it first"
            )

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None:
        await self._backend.execute(
            "INSERT INTO phases (workout_id, at_s, phase) VALUES (?, ?, ?)",
            workout_id,
            phase.at_s,
            phase.phase,
        )

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None:
        changed = await self._backend.execute(
            "UPDATE workouts SET outcome = ?, abort_reason = ?, abort_detail = ?, "
            "duration_s = ?, distance_forward_m = ?, distance_backward_m = ?, kcal = ? "
            "WHERE id = ?",
            outcome.value,
            None if abort_reason is None else abort_reason.value,
            abort_detail,
            None if summary is None else summary.duration_s,
            None if summary is None else summary.distance_forward_m,
            None if summary is None else summary.distance_backward_m,
            None if summary is None else summary.kcal,
            workout_id,
        )
        if changed == 0:
            raise InvalidRecordError(
                f"no workout {workout_id!r} to end; it was never begun (or retention deleted it)"
            )

    async def any_riders(self) -> bool:
        """Whether the database holds a rider: a daemon whose gym keeps none never needs the
        full store (SQLAlchemy, about 14 MiB) for riders."""
        return bool(await self._backend.fetch_column("SELECT id FROM riders LIMIT 1"))

    async def mark_interrupted_on_start(self, treadmill_ids: Collection[str]) -> list[str]:
        """Every RUNNING workout of these treadmills becomes INTERRUPTED (this daemon died
        under it); another Pi's running workouts on a shared database are left alone."""
        ids = sorted(treadmill_ids)
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        condition = f"outcome = ? AND treadmill_id IN ({marks})"
        running = [WorkoutOutcome.RUNNING.value, *ids]
        found = await self._backend.fetch_column(
            f"SELECT id FROM workouts WHERE {condition} ORDER BY started_at",  # noqa: S608 - placeholders only
            *running,
        )
        if found:
            await self._backend.execute(
                f"UPDATE workouts SET outcome = ? WHERE {condition}",  # noqa: S608 - placeholders only
                WorkoutOutcome.INTERRUPTED.value,
                *running,
            )
        for workout_id in found:
            _log.warning("workout_marked_interrupted", workout_id=workout_id)
        return [str(workout_id) for workout_id in found]

    async def apply_retention(self, older_than_days: int, *, now: datetime | None = None) -> int:
        """Delete the workouts (with what they hold) that started more than `older_than_days`
        days before `now`; a running one is kept. Returns how many went."""
        if older_than_days < 1:
            raise InvalidRecordError(
                f"retention of {older_than_days} days would delete today's workouts; give 1 "
                "or more, or no retention to keep everything"
            )
        cutoff = (now if now is not None else datetime.now(UTC)) - timedelta(days=older_than_days)
        deleted = await self._backend.execute(
            "DELETE FROM workouts WHERE started_at < ? AND outcome != ?",
            self._backend.timestamp(cutoff),
            WorkoutOutcome.RUNNING.value,
        )
        if deleted:
            _log.info(
                "workouts_deleted_by_retention", count=deleted, older_than_days=older_than_days
            )
        return deleted
