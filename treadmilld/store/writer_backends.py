"""The two ways `HistoryWriter` (writer.py) reaches a database without SQLAlchemy: the
stdlib's sqlite3 on one worker thread, and asyncpg for PostgreSQL, behind one `Backend`
protocol of `?`-placeholder statements that commit as they return.

Only the stdlib, asyncpg (imported when a PostgreSQL url is opened) and availability.py load
here: this is the daemon's path, kept free of SQLAlchemy (writer.py says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from treadmilld.store.availability import reachability

if TYPE_CHECKING:
    import asyncpg

# How SQLAlchemy's DateTime stores on SQLite (its SQLite dialect's DATETIME storage format), so
# `Store` reads what this writes and retention compares like with like.
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# A PostgreSQL statement that has not answered in this long is treated as a lost connection
# (a network gone silent would otherwise hold the write until TCP gives up, minutes later).
POSTGRES_COMMAND_TIMEOUT_S = 30.0
POSTGRES_CONNECT_TIMEOUT_S = 10.0


class Backend(Protocol):
    where: str

    async def revision(self) -> str | None: ...

    async def execute(self, sql: str, *params: Any) -> int:
        """One statement, committed; the number of rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch_column(self, sql: str, *params: Any) -> list[Any]: ...

    def timestamp(self, value: datetime) -> Any: ...

    async def close(self) -> None: ...


def _closed(cursor: sqlite3.Cursor) -> sqlite3.Cursor:
    """The cursor, closed: its statement goes back to the connection's cache now. A cursor left
    open (handed back to the event loop as a result) keeps the cached statement busy, and the
    next call with the same SQL then fails with "bad parameter or other API misuse"."""
    cursor.close()
    return cursor


class SqliteBackend:
    """sqlite3 on one worker thread: the connection is only ever used from that thread."""

    def __init__(self, path: Path, *, busy_timeout_ms: int) -> None:
        self.where = str(path)
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-sqlite")
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._path, timeout=self._busy_timeout_ms / 1000)
            # As store/engine.py: WAL so the CLI reads while a workout is written; foreign keys
            # for retention's cascade; synchronous=FULL so a power loss keeps every commit.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            self._connection = connection
        return self._connection

    async def _call(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        def run() -> Any:
            connection = self._connect()
            try:
                result = work(connection)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
            return result

        with reachability(self.where):
            return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def revision(self) -> str | None:
        def read(connection: sqlite3.Connection) -> str | None:
            try:
                cursor = connection.execute("SELECT version_num FROM alembic_version")
                row = cursor.fetchone()
                cursor.close()
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):
                    return None
                raise
            return None if row is None else str(row[0])

        result: str | None = await self._call(read)
        return result

    async def execute(self, sql: str, *params: Any) -> int:
        rowcount: int = await self._call(lambda c: _closed(c.execute(sql, params)).rowcount)
        return rowcount

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._call(lambda c: _closed(c.executemany(sql, rows)))

    async def fetch_column(self, sql: str, *params: Any) -> list[Any]:
        def fetch(connection: sqlite3.Connection) -> list[Any]:
            cursor = connection.execute(sql, params)
            try:
                return [row[0] for row in cursor.fetchall()]
            finally:
                cursor.close()

        rows: list[Any] = await self._call(fetch)
        return rows

    def timestamp(self, value: datetime) -> Any:
        return value.astimezone(UTC).strftime(SQLITE_DATETIME_FORMAT)

    async def close(self) -> None:
        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close)
        self._thread.shutdown(wait=True)


def _numbered(sql: str) -> str:
    """`?` placeholders as asyncpg's `$1, $2, ...`."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], start=1)) + parts[-1]


class PostgresBackend:
    """One asyncpg connection, opened again after it is lost. Every treadmill's recorder
    writes through it, one call at a time (asyncpg refuses a second operation while one is in
    progress on a connection)."""

    def __init__(self, dsn: str, where: str) -> None:
        self.where = where
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None
        self._turn = asyncio.Lock()

    async def _connected(self) -> asyncpg.Connection:
        import asyncpg  # noqa: PLC0415 - only a PostgreSQL url needs it

        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn,
                timeout=POSTGRES_CONNECT_TIMEOUT_S,
                command_timeout=POSTGRES_COMMAND_TIMEOUT_S,
            )
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    @contextlib.asynccontextmanager
    async def _using(self) -> Any:
        async with self._turn:
            try:
                with reachability(self.where):
                    yield await self._connected()
            except Exception:
                # Whatever went wrong, the next call starts from a fresh connection: asyncpg's
                # connection may be mid-protocol after a timeout.
                await self._drop()
                raise

    async def revision(self) -> str | None:
        async with self._using() as connection:
            exists = await connection.fetchval("SELECT to_regclass('alembic_version')")
            if exists is None:
                return None
            value = await connection.fetchval("SELECT version_num FROM alembic_version")
            return None if value is None else str(value)

    async def execute(self, sql: str, *params: Any) -> int:
        async with self._using() as connection:
            status: str = await connection.execute(_numbered(sql), *params)
            # asyncpg answers the command tag, e.g. "UPDATE 3".
            count = status.rsplit(" ", 1)[-1]
            return int(count) if count.isdigit() else 0

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._using() as connection, connection.transaction():
            await connection.executemany(_numbered(sql), rows)

    async def fetch_column(self, sql: str, *params: Any) -> list[Any]:
        async with self._using() as connection:
            return [row[0] for row in await connection.fetch(_numbered(sql), *params)]

    def timestamp(self, value: datetime) -> Any:
        return value.astimezone(UTC)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)
