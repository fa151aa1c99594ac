"""`WriterOnceReachable`: history for a daemon whose database did not answer at start.

A gym's Pis share one PostgreSQL server. When it is down as a Pi boots (a power cut brings
everything back at once, and the Pis are quicker), the treadmills must still run: history is
never what stops a belt, and a daemon that exits until the database answers leaves the whole
floor without treadmills. So the daemon starts without it, and this writer stands in:

- every write is refused with `HistoryUnavailableError` until the database has been opened
  (migrated if need be) and this daemon's workouts a crash left `running` have been marked
  `interrupted`; the recorders retry refused writes with their backoff and keep what they hold
  (up to `MAX_PENDING_SAMPLES` per workout), so a workout walked meanwhile is written once the
  database answers;
- rider requests, which need the database, are answered `database_unavailable`;
- `connect` (a task under the supervisor) tries again with a capped, jittered backoff, and says
  at each try what to check.

A database found newer than this treadmilld once it answers is logged as critical and history
stays off: a configuration problem, which at start is exit status 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

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
from treadmilld.runtime.backoff import Backoff
from treadmilld.runtime.clock import Clock
from treadmilld.store.errors import SchemaTooNewError, StoreError
from treadmilld.store.writer import HistoryWriter

_log = structlog.get_logger(__name__)

# A database restarting answers within seconds to a minute; a Pi trying every minute at most
# costs the server nothing.
FIRST_RETRY_S = 2.0
LONGEST_RETRY_S = 60.0


class WriterOnceReachable:
    """A `HistoryWriter` stand-in: refuses every call until `connect` has opened the real
    one, then hands every call to it."""

    def __init__(
        self,
        where: str,
        *,
        open_writer: Callable[[], Awaitable[HistoryWriter]],
        clock: Clock,
        first_error: str,
    ) -> None:
        """`where` names the database in messages (its URL without a password);
        `open_writer` opens it as a start does, this daemon's interrupted workouts marked
        (`history_service._open_and_mark`), or raises HistoryUnavailableError."""
        self._where = where
        self._open_writer = open_writer
        self._clock = clock
        self._writer: HistoryWriter | None = None
        self._last_error = first_error
        self._backoff = Backoff(
            initial_s=FIRST_RETRY_S, maximum_s=LONGEST_RETRY_S, jitter=(0.8, 1.2)
        )
        self.opened = asyncio.Event()

    @property
    def where(self) -> str:
        return self._where

    async def connect(self) -> None:
        """Open the database (its interrupted workouts marked), trying again until it answers;
        then every call goes to it. Returns once history is on (or off for good)."""
        attempt = 0
        while self._writer is None:
            attempt += 1
            delay = self._backoff.next_delay()
            _log.warning(
                "history_waiting_for_database",
                database=self._where,
                error=self._last_error,
                attempt=attempt,
                retry_in_s=round(delay, 1),
                action="treadmills run meanwhile and their workouts are kept to be written; "
                "check [database] url, that the server runs and this machine may connect",
            )
            await self._clock.sleep(delay)
            try:
                writer = await self._open_writer()
            except HistoryUnavailableError as error:
                self._last_error = str(error)
                continue
            except (SchemaTooNewError, StoreError) as error:
                _log.critical(
                    "history_off",
                    database=self._where,
                    error=str(error),
                    action="fix [database] (upgrade treadmilld on this Pi if its schema is "
                    "newer) and restart treadmilld; workouts are not recorded until then",
                )
                return
            self._writer = writer
            self.opened.set()

    def _ready(self) -> HistoryWriter:
        if self._writer is None:
            raise HistoryUnavailableError(
                f"the history database {self._where} has not answered since this daemon "
                f"started ({self._last_error})"
            )
        return self._writer

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()

    async def begin_workout(self, record: WorkoutRecord) -> str:
        return await self._ready().begin_workout(record)

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        await self._ready().append_samples(workout_id, batch)

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        await self._ready().add_segment(workout_id, segment)

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        await self._ready().update_segment(workout_id, segment)

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None:
        await self._ready().add_phase(workout_id, phase)

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None:
        await self._ready().end_workout(
            workout_id, outcome, summary, abort_reason=abort_reason, abort_detail=abort_detail
        )

    async def any_riders(self) -> bool:
        return await self._ready().any_riders()

    async def apply_retention(self, older_than_days: int, *, now: datetime | None = None) -> int:
        return await self._ready().apply_retention(older_than_days, now=now)
