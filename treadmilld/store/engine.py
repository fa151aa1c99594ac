"""The SQLAlchemy engine for a `database.url`: SQLite through aiosqlite, PostgreSQL through
asyncpg, whatever driver the URL names or leaves out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from treadmilld.store.errors import StoreError

_log = structlog.get_logger(__name__)

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRESQL_DRIVER = "postgresql+asyncpg"
# A writer waits this long for another's lock (the CLI reading history while the daemon writes)
# instead of failing at once with "database is locked" (SQLite, PRAGMA busy_timeout).
SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    # On every new connection, as these are per connection (SQLite docs, "PRAGMA foreign_keys":
    # off by default "for backwards compatibility"; journal_mode=WAL persists in the file but is
    # cheap to assert). WAL lets the CLI read while a workout is written; synchronous=FULL syncs
    # the log at each commit, so a power loss keeps every committed sample ("WAL mode ... with
    # synchronous=NORMAL ... a transaction committed might roll back following a power loss").
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url` (sqlite:///PATH or postgresql://USER@HOST/DB; the async driver
    is chosen here). A SQLite file's folder is created when missing."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise StoreError(
            f"database.url {url!r} is not a database URL ({error}); use "
            "postgresql://USER:PASSWORD@HOST/DATABASE, or leave it unset for SQLite"
        ) from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise StoreError(
                f"database.url {url!r}: SQLite needs a file (sqlite:///PATH); an in-memory "
                "database would lose every workout when the daemon stops"
            )
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed.set(drivername=SQLITE_DRIVER))
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if backend in ("postgresql", "postgres"):
        # pool_pre_ping: a gym's database restarts or drops idle connections; a stale one is
        # replaced before use instead of failing the next sample batch.
        return create_async_engine(parsed.set(drivername=POSTGRESQL_DRIVER), pool_pre_ping=True)
    raise StoreError(
        f"database.url {parsed.render_as_string(hide_password=True)!r}: treadmilld stores in "
        "SQLite or PostgreSQL only; use postgresql://USER:PASSWORD@HOST/DATABASE or leave "
        "database.url unset for SQLite in the state directory"
    )
