"""A state directory whose history database is already at the newest schema.

A daemon started on an empty state directory migrates it first, in a child process that loads
SQLAlchemy and Alembic (store/writer.py): about two seconds before the daemon is ready. Tests
whose subject is not that first start (signals, reconnects, commands) take `migrated_history`,
and their daemons open a database migrated once per run and copied for each test, so every
test still has a database of its own. The first start's migration keeps its own tests
(tests/app/test_history_daemon.py, tests/store/test_recording.py).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from treadmilld.store.api import open_store, sqlite_url
from treadmilld.store.config import DATABASE_FILE_NAME, state_dir


async def _migrate(folder: Path) -> None:
    store = await open_store(sqlite_url(folder))
    await store.close()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history database at the newest schema, made once per run: copy it, never open it."""
    folder = tmp_path_factory.mktemp("migrated-history")
    asyncio.run(_migrate(folder))
    database = folder / DATABASE_FILE_NAME
    assert database.is_file(), f"migrating {folder} left no {DATABASE_FILE_NAME}"
    return database


@pytest.fixture
def migrated_history(migrated_database: Path) -> Path:
    """This test's $STATE_DIRECTORY (the root conftest gives each test its own) holding a copy
    of the migrated database; the daemon then opens it without a migration child."""
    target = state_dir() / DATABASE_FILE_NAME
    assert not target.exists(), f"{target} exists already; take migrated_history first"
    shutil.copyfile(migrated_database, target)
    return target
