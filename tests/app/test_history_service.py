"""History in the daemon at start and once a day: the database opened, this daemon's running
workouts marked `interrupted` (another Pi's left alone), a newer schema refused as a
configuration error, retention applied at start and then daily."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.history.workouts import interval_workout
from tests.mqtt.client import ManualClock
from treadmilld.app.history_service import RETENTION_INTERVAL_S, HistoryService, open_history
from treadmilld.app.settings import ConfigError
from treadmilld.engine.library import ProfileLibrary
from treadmilld.history.records import WorkoutOutcome, WorkoutRecord
from treadmilld.programs.library import ProgramLibrary
from treadmilld.runtime.clock import LoopClock
from treadmilld.store.api import DatabaseSettings, Store, open_store, sqlite_url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await open_store(sqlite_url(tmp_path)) as opened:
        yield opened


def _database(store: Store, retention_days: int | None = None) -> DatabaseSettings:
    return DatabaseSettings(url=str(store.engine.url), retention_days=retention_days)


def _programs() -> ProgramLibrary:
    return ProgramLibrary(ProfileLibrary())


def _workout(
    workout_id: str,
    *,
    days_ago: float = 0.0,
    treadmill_id: str = "tm01",
    outcome: WorkoutOutcome = WorkoutOutcome.FINISHED,
) -> WorkoutRecord:
    return replace(
        interval_workout(),
        workout_id=workout_id,
        treadmill_id=treadmill_id,
        started_at=datetime.now(UTC) - timedelta(days=days_ago),
        outcome=outcome,
    )


async def _ids(store: Store) -> set[str]:
    return {w.workout_id for w in await store.list_workouts()}


async def test_this_daemons_running_workouts_become_interrupted_and_another_pis_do_not(
    store: Store,
) -> None:
    await store.begin_workout(_workout("w-mine", outcome=WorkoutOutcome.RUNNING))
    await store.begin_workout(
        _workout("w-other-pi", treadmill_id="tm09", outcome=WorkoutOutcome.RUNNING)
    )
    async with open_history(
        _database(store), ["tm01", "tm02"], programs=_programs(), clock=LoopClock()
    ):
        pass
    assert (await store.get_workout("w-mine")).outcome is WorkoutOutcome.INTERRUPTED
    assert (await store.get_workout("w-other-pi")).outcome is WorkoutOutcome.RUNNING
    assert len((await store.get_workout("w-mine")).samples) == len(interval_workout().samples)


async def test_a_schema_newer_than_this_treadmilld_is_a_configuration_error(store: Store) -> None:
    async with store.engine.begin() as connection:
        await connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigError, match=r"\[database\].*Upgrade treadmilld"):
        async with open_history(
            _database(store), ["tm01"], programs=_programs(), clock=LoopClock()
        ):
            pass


async def test_retention_runs_at_start_and_then_once_a_day(store: Store) -> None:
    await store.begin_workout(_workout("w-old", days_ago=40))
    await store.begin_workout(_workout("w-recent", days_ago=2))
    await store.begin_workout(
        _workout("w-old-running", days_ago=40, outcome=WorkoutOutcome.RUNNING)
    )
    days = ManualClock()
    async with open_history(
        _database(store, retention_days=30), ["tm09"], programs=_programs(), clock=LoopClock()
    ) as history:
        assert isinstance(history, HistoryService)
        service = HistoryService(
            history.writer,
            url=history.url,
            programs=history.programs,
            retention_days=30,
            clock=LoopClock(),
            retention_clock=days,
        )
        assert [name for name, _ in service.tasks()] == ["history-retention"]
        task = asyncio.create_task(service.keep_retention())
        try:
            await days.sleeper_until(days.now() + RETENTION_INTERVAL_S)
            assert await _ids(store) == {"w-recent", "w-old-running"}
            await store.begin_workout(_workout("w-aged-since", days_ago=31))
            await days.advance(RETENTION_INTERVAL_S)
            await days.sleeper_until(days.now() + RETENTION_INTERVAL_S)
            assert await _ids(store) == {"w-recent", "w-old-running"}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_without_retention_nothing_is_deleted_and_no_task_runs(store: Store) -> None:
    await store.begin_workout(_workout("w-old", days_ago=4000))
    async with open_history(
        _database(store), ["tm01"], programs=_programs(), clock=LoopClock()
    ) as history:
        assert history.tasks() == []
    assert await _ids(store) == {"w-old"}
