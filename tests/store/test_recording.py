"""A workout recorded by the daemon's recorder through the daemon's writer lands in a real
database (SQLite and PostgreSQL), reads back whole through the store, and exports to FIT, TCX
and CSV files that decode; a database that goes away mid-workout loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from tests.engine.harness import rig, run_in_virtual_time
from tests.history.test_csv_export import rows
from tests.history.test_fit_export import check_matches_record as check_fit
from tests.history.test_fit_export import decode as decode_fit
from tests.history.test_tcx_export import check_matches_record as check_tcx
from tests.history.test_tcx_export import valid_activity
from tests.history.workouts import interval_workout
from tests.store.real_time import RealTimeLoop, WritesInRealTime, real_time_loop
from tests.support.postgres import PostgresServer
from treadmilld.engine.api import Direction
from treadmilld.history.export import ExportFormat, export_workout
from treadmilld.history.recorder import WorkoutRecorder
from treadmilld.history.records import (
    HistoryUnavailableError,
    PhaseChange,
    WorkoutOutcome,
    WorkoutRecord,
)
from treadmilld.store.api import (
    SchemaTooNewError,
    Store,
    head_revision,
    open_store,
    schema_revision,
    sqlite_url,
)
from treadmilld.store.config import DATABASE_FILE_NAME
from treadmilld.store.writer import SCHEMA_REVISION, open_history_writer

PROFILE = "p1-starter-a"  # about 15 minutes: turns, a rest, backward bouts


def test_the_writer_writes_the_newest_schema_the_migrations_build() -> None:
    assert head_revision() == SCHEMA_REVISION


def _record(
    loop: RealTimeLoop,
    url: str,
    *,
    outage: tuple[Callable[[], None], Callable[[], None]] | None = None,
) -> tuple[WorkoutRecord, int]:
    """The profile walked in virtual time, recorded through the real writer on `loop`; the
    stored workout and how many segments the session started. With `outage` (stop, start):
    the database is stopped 60 s into the workout and started again 120 s later."""
    loop.run(_migrated(url))
    writer = loop.run(open_history_writer(url))

    async def walk() -> tuple[str, int]:
        async with rig() as r:
            recorder = WorkoutRecorder(r.session, WritesInRealTime(writer, loop), r.clock)
            task = asyncio.create_task(recorder.run())
            await asyncio.sleep(0)  # subscribed before anything happens
            await r.session.start_profile(PROFILE)
            if outage is not None:
                stop, start = outage
                await r.clock.sleep(60.0)
                stop()  # blocks this loop: no virtual time passes while the server goes
                await r.clock.sleep(120.0)
                start()
            await r.wait_for("workout_finished", within_s=3 * 3600)
            await recorder.drained()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert recorder.last_workout_id is not None
            return recorder.last_workout_id, len(r.recorder.of_type("segment_started"))

    try:
        workout_id, segments = run_in_virtual_time(walk)
    finally:
        loop.run(writer.close())

    async def read() -> WorkoutRecord:
        async with await open_store(url) as store:
            return await store.get_workout(workout_id)

    return loop.run(read()), segments


async def _migrated(url: str) -> None:
    """The schema built in this process (the writer would start a fresh interpreter for it,
    seconds each time; test_a_fresh_database_is_migrated_when_opened covers that path)."""
    await (await open_store(url)).close()


def _check_whole(record: WorkoutRecord, segments: int) -> None:
    assert record.outcome is WorkoutOutcome.FINISHED
    assert record.summary is not None
    assert record.profile_name == PROFILE
    # Every segment, planned and done, all run to their end.
    assert [s.index for s in record.segments] == list(range(segments))
    assert all(s.completed and s.ended_at_s is not None for s in record.segments)
    assert {s.direction for s in record.segments} >= {Direction.FORWARD, Direction.BACKWARD}
    # A sample every second from start to end, none missing.
    times = [s.at_s for s in record.samples]
    assert times == sorted(times)
    assert max(b - a for a, b in itertools.pairwise(times)) <= 1.0 + 1e-6
    assert times[-1] == pytest.approx(record.summary.duration_s, abs=1.5)
    assert len(times) == pytest.approx(record.summary.duration_s, abs=2)
    last = record.samples[-1]
    assert last.distance_forward_m == pytest.approx(record.summary.distance_forward_m, abs=0.5)
    assert last.distance_backward_m == pytest.approx(record.summary.distance_backward_m, abs=0.5)
    phases = [p.phase for p in record.phases]
    assert phases[0] in {"starting", "running"}
    assert "turning" in phases
    assert phases[-1] == "finished"


def test_a_whole_workout_lands_in_the_database_and_exports(database_url: str) -> None:
    with real_time_loop() as loop:
        record, segments = _record(loop, database_url)

    _check_whole(record, segments)
    check_fit(record, decode_fit(export_workout(record, ExportFormat.FIT)))
    check_tcx(record, valid_activity(export_workout(record, ExportFormat.TCX)))
    table = rows(export_workout(record, ExportFormat.CSV).decode("utf-8"))
    assert [float(row["at_s"]) for row in table] == [s.at_s for s in record.samples]


def test_a_database_stopped_mid_workout_and_started_again_has_the_whole_history(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    with real_time_loop() as loop, capture_logs() as logs:
        record, segments = _record(
            loop, url, outage=(postgres_server.stop, postgres_server.start_again)
        )

    failed = [line for line in logs if line["event"] == "history_write_failed"]
    assert failed, "the writes during the outage should have failed and been retried"
    assert "reachable" in failed[0]["action"]
    _check_whole(record, segments)


async def test_every_treadmill_writes_through_one_writer_at_once(
    store: Store, database_url: str
) -> None:
    """The daemon's recorders share one writer: eight workouts written at the same moments
    land whole, none refused."""
    writer = await open_history_writer(database_url)

    async def workout(index: int) -> None:
        record = replace(
            interval_workout(), workout_id=f"w-{index}", treadmill_id=f"tm{index}", samples=()
        )
        await writer.begin_workout(replace(record, segments=()))
        for sample in interval_workout().samples:
            await writer.append_samples(record.workout_id, [sample])
        await writer.end_workout(record.workout_id, WorkoutOutcome.STOPPED, record.summary)

    try:
        await asyncio.gather(*(workout(index) for index in range(8)))
    finally:
        await writer.close()
    expected = [s.at_s for s in interval_workout().samples]
    for index in range(8):
        stored = await store.get_workout(f"w-{index}")
        assert stored.outcome is WorkoutOutcome.STOPPED
        assert [s.at_s for s in stored.samples] == expected


async def test_an_unreachable_database_is_history_unavailable_with_what_to_check() -> None:
    closed = "postgresql://treadmilld@127.0.0.1:9/treadmilld"  # port 9: discard, never open
    with pytest.raises(HistoryUnavailableError, match="check that it runs"):
        await open_history_writer(closed)
    with pytest.raises(HistoryUnavailableError, match="check that it runs"):
        await open_store(closed)


async def test_a_fresh_database_is_migrated_when_opened(database_url: str) -> None:
    writer = await open_history_writer(database_url)
    await writer.close()
    async with await open_store(database_url) as store:
        assert await schema_revision(store.engine) == SCHEMA_REVISION


async def test_a_schema_newer_than_this_treadmilld_is_refused_with_what_to_do(
    store: Store,
) -> None:
    async with store.engine.begin() as connection:
        await connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNewError, match="Upgrade treadmilld"):
        await open_history_writer(str(store.engine.url.render_as_string(hide_password=False)))


async def test_a_refused_write_stays_its_own_error(store: Store, database_url: str) -> None:
    """A constraint the database enforces is no outage: retrying would never help."""
    writer = await open_history_writer(database_url)
    try:
        with pytest.raises(Exception, match=r"(?i)foreign") as raised:
            await writer.add_phase("w-nobody", PhaseChange(at_s=1.0, phase="running"))
        assert not isinstance(raised.value, HistoryUnavailableError)
    finally:
        await writer.close()


async def test_a_sqlite_database_locked_past_its_busy_timeout_is_history_unavailable(
    tmp_path: Path,
) -> None:
    await _migrated(sqlite_url(tmp_path))
    # The file's lock is waited for this long (instead of 5 s) before SQLite gives up.
    with mock.patch("treadmilld.store.writer.SQLITE_BUSY_TIMEOUT_MS", 50):
        writer = await open_history_writer(sqlite_url(tmp_path))
    holder = sqlite3.connect(tmp_path / DATABASE_FILE_NAME)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another writer holding the file
        with pytest.raises(HistoryUnavailableError, match="cannot be reached"):
            await writer.add_phase("w-any", PhaseChange(at_s=1.0, phase="running"))
    finally:
        holder.rollback()
        holder.close()
        await writer.close()
