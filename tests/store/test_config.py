"""Where the database is: `[database]` in the configuration, SQLite in the state directory by
default, in WAL mode with foreign keys enforced."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from treadmilld.app.settings import load_settings
from treadmilld.store.api import DatabaseSettings, StoreError, database_url, open_store

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_without_a_url_the_database_is_sqlite_in_the_state_directory_systemd_grants() -> None:
    settings = DatabaseSettings()
    granted = {"STATE_DIRECTORY": "/var/lib/treadmilld"}
    assert (
        database_url(settings, granted) == "sqlite+aiosqlite:////var/lib/treadmilld/treadmilld.db"
    )
    assert database_url(settings, {}) == "sqlite+aiosqlite:////var/lib/treadmilld/treadmilld.db"
    assert database_url(settings, {"STATE_DIRECTORY": "/srv/tm"}).endswith("/srv/tm/treadmilld.db")
    shared = DatabaseSettings(url="postgresql://treadmilld@db.gym.lan/treadmilld")
    assert database_url(shared, granted) == "postgresql://treadmilld@db.gym.lan/treadmilld"


def test_the_database_section_is_read_from_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "postgresql://treadmilld@db.gym.lan/treadmilld"\n')
    monkeypatch.setenv("TREADMILLD_DATABASE__RETENTION_DAYS", "365")
    settings, _ = load_settings(path)
    assert settings.database == DatabaseSettings(
        url="postgresql://treadmilld@db.gym.lan/treadmilld", retention_days=365
    )


def test_every_database_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert "## `[database]`" in text
    assert [name for name in DatabaseSettings.model_fields if f"`{name}`" not in text] == []


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_enforced(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/t.db")
    async with store, store.engine.connect() as connection:
        assert await connection.scalar(sa.text("PRAGMA foreign_keys")) == 1
        with pytest.raises(sa.exc.IntegrityError):
            await connection.execute(
                sa.text(
                    "INSERT INTO samples (workout_id, at_s, speed_kmh, direction, "
                    "distance_forward_m, distance_backward_m) "
                    "VALUES ('nobody', 0, 0, 'rest', 0, 0)"
                )
            )
    # WAL is in the file itself: another process (the CLI reading history while the daemon
    # writes a workout) finds it so.
    with sqlite3.connect(tmp_path / "t.db") as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reader.close()


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("mysql://root@localhost/treadmilld", "SQLite or PostgreSQL only"),
        ("sqlite://", "needs a file"),
        ("not a url", "is not a database URL"),
    ],
)
async def test_an_unusable_database_url_says_what_to_use(url: str, hint: str) -> None:
    with pytest.raises(StoreError, match=hint):
        await open_store(url)
