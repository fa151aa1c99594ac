"""History in the running daemon: the database opened at start, a recorder per treadmill, the
daily retention, and the one object the MQTT side (riders, feedback, progress) uses.

What happens at start (docs/database.md): the database in `[database] url` (SQLite in the state
directory by default) is opened and migrated when its schema is older; a schema newer than this
treadmilld is a configuration error (exit 2, which systemd does not restart in a loop); this
daemon's treadmills' workouts still `running` become `interrupted`; then the recorders run. A
database that does not answer does not hold the treadmills up: the daemon starts, and history
follows once it answers (`history_pending.WriterOnceReachable`).

The daemon writes history through `HistoryWriter` (plain SQL through the driver): SQLAlchemy is
loaded only when something asks for the full store (`store()`: riders, reading history), so a
daemon that only records stays inside issue 13's memory budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from treadmilld.app.history_pending import WriterOnceReachable
from treadmilld.app.settings import ConfigError
from treadmilld.history.recorder import RecordedSession, WorkoutRecorder
from treadmilld.history.records import HistoryUnavailableError
from treadmilld.programs.library import ProgramLibrary
from treadmilld.runtime.clock import Clock, LoopClock
from treadmilld.store.config import DatabaseSettings, database_url
from treadmilld.store.errors import SchemaTooNewError, StoreError
from treadmilld.store.writer import HistoryWriter, open_history_writer

if TYPE_CHECKING:
    from treadmilld.store.repository import Store

_log = structlog.get_logger(__name__)

# Retention runs at start and then once a day: workouts age by days.
RETENTION_INTERVAL_S = 24 * 3600.0


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


class HistoryService:
    """The daemon's history: `writer` (what recorders write through), `recorders` by treadmill
    id (`recorder(id).for_rider(...)` before a start makes the workout a rider's), `programs`,
    and `store()` for everything else the riders code needs (SQLAlchemy, loaded on first use).
    """

    def __init__(
        self,
        writer: HistoryWriter | WriterOnceReachable,
        *,
        url: str,
        programs: ProgramLibrary,
        retention_days: int | None,
        clock: Clock,
        retention_clock: Clock | None = None,
    ) -> None:
        self.writer = writer
        self.url = url
        self.programs = programs
        self.retention_days = retention_days
        self._clock = clock
        # Retention counts days a person lives, even when the demo speeds the profile clock up.
        self._retention_clock = retention_clock or LoopClock()
        self._recorders: dict[str, WorkoutRecorder] = {}
        self._store: Store | None = None
        self._store_lock = asyncio.Lock()

    @property
    def recorders(self) -> Mapping[str, WorkoutRecorder]:
        return self._recorders

    def recorder(self, treadmill_id: str) -> WorkoutRecorder:
        return self._recorders[treadmill_id]

    def record(self, sessions: Iterable[RecordedSession]) -> None:
        """A recorder for each session (not started: `tasks()` runs them)."""
        for session in sessions:
            self._recorders[session.treadmill_id] = WorkoutRecorder(
                session, self.writer, self._clock
            )

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Named tasks for the supervisor: each recorder, and retention when it is set."""
        named: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (f"history:{treadmill_id}", recorder.run)
            for treadmill_id, recorder in self._recorders.items()
        ]
        if isinstance(self.writer, WriterOnceReachable):
            named.append(("history-connect", self._connect))
        if self.retention_days is not None:
            named.append(("history-retention", self.keep_retention))
        return named

    async def drained(self) -> None:
        """Until every recorder has written what it was handed (the workouts' endings)."""
        await asyncio.gather(*(recorder.drained() for recorder in self._recorders.values()))

    async def _connect(self) -> None:
        """The database that did not answer at start, opened once it does; then nothing more
        to do (the task stays, so the supervisor does not start it again)."""
        assert isinstance(self.writer, WriterOnceReachable)
        await self.writer.connect()
        await asyncio.Event().wait()

    async def keep_retention(self) -> None:
        """`apply_retention(retention_days)` now and then once a day, until cancelled."""
        assert self.retention_days is not None  # only scheduled when set
        if isinstance(self.writer, WriterOnceReachable):
            await self.writer.opened.wait()
        while True:
            try:
                await self.writer.apply_retention(self.retention_days, now=datetime.now(UTC))
            except HistoryUnavailableError as error:
                _log.warning(
                    "retention_postponed",
                    error=str(error),
                    action="it is tried again tomorrow; check the database",
                )
            await self._retention_clock.sleep(RETENTION_INTERVAL_S)

    async def any_riders(self) -> bool:
        """Whether the database holds a rider, in plain SQL (no SQLAlchemy)."""
        return await self.writer.any_riders()

    async def store(self) -> Store:
        """The full store (riders, reading history), opened on first use and kept. It loads
        SQLAlchemy: about 14 MiB more resident memory from then on."""
        async with self._store_lock:
            if self._store is None:
                from treadmilld.store.repository import open_store  # noqa: PLC0415

                self._store = await open_store(self.url)
            return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
        await self.writer.close()


async def start_history(
    database: DatabaseSettings,
    treadmill_ids: Iterable[str],
    *,
    programs: ProgramLibrary,
    clock: Clock,
    url: str | None = None,
) -> HistoryService:
    """The database opened (and migrated), this daemon's workouts left `running` marked
    `interrupted`; the caller closes it. `url` overrides the settings' (the demo's temporary
    file).

    Raises ConfigError for a schema newer than this treadmilld or an unusable URL. A database
    that does not answer is tried again in the background (the service's `history-connect`
    task): the treadmills do not wait for it."""
    where = url or database_url(database)
    ids = list(treadmill_ids)
    writer: HistoryWriter | WriterOnceReachable
    try:
        writer = await _open_and_mark(where, ids)
    except SchemaTooNewError as error:
        raise ConfigError(f"[database]: {error}") from None
    except HistoryUnavailableError as error:
        writer = WriterOnceReachable(
            _redacted(where),
            open_writer=lambda: _open_and_mark(where, ids),
            clock=LoopClock(),  # a person waits for the database in real time, even in a demo
            first_error=str(error),
        )
    except StoreError as error:
        raise ConfigError(f"[database]: {error}") from None
    return HistoryService(
        writer,
        url=where,
        programs=programs,
        retention_days=database.retention_days,
        clock=clock,
    )


async def _open_and_mark(where: str, treadmill_ids: list[str]) -> HistoryWriter:
    writer = await open_history_writer(where)
    try:
        interrupted = await writer.mark_interrupted_on_start(treadmill_ids)
    except BaseException:
        await writer.close()
        raise
    _log.info("history_opened", database=writer.where, interrupted=len(interrupted))
    return writer


@contextlib.asynccontextmanager
async def open_history(
    database: DatabaseSettings,
    treadmill_ids: Iterable[str],
    *,
    programs: ProgramLibrary,
    clock: Clock,
    url: str | None = None,
) -> AsyncIterator[HistoryService]:
    """`start_history`, closed on exit."""
    service = await start_history(database, treadmill_ids, programs=programs, clock=clock, url=url)
    try:
        yield service
    finally:
        await service.close()


async def close_when_done(opening: asyncio.Task[HistoryService]) -> None:
    """For an exit stack: the history opened by `opening` closed, or its opening cancelled if
    it is still under way (the start failed elsewhere first)."""
    if not opening.done():
        opening.cancel()
    try:
        service = await opening
    except BaseException:  # noqa: BLE001 - its error, if any, was the caller's to see
        return
    await service.close()
