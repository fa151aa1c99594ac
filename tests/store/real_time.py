"""The real history writer used from a virtual-time test.

A workout runs in virtual time (a 15-minute profile in about a second), but a database is real
I/O: on the VirtualTimeEventLoop a socket's answer arrives "late" and asyncpg's own timeouts
would fire at once (treadmilld/runtime/clock.py). So the writer lives on a real-time event loop
in a thread of its own, and the recorder's sink hands each call over to it, which is what the
daemon's recorder sees too: a write that takes real time while the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from treadmilld.engine.api import AbortReason
from treadmilld.history.records import (
    PhaseChange,
    Sample,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
    WorkoutSummary,
)
from treadmilld.store.writer import HistoryWriter

T = TypeVar("T")


class RealTimeLoop:
    """An event loop on real time, in a thread; `run` from any thread, `call` from a loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """From synchronous code: the coroutine's result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=120)

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """From another event loop: awaited there, run here."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))


@contextlib.contextmanager
def real_time_loop() -> Iterator[RealTimeLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="real-time-db", daemon=True)
    thread.start()
    try:
        yield RealTimeLoop(loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


class WritesInRealTime:
    """A history sink that writes through a real `HistoryWriter` on the real-time loop."""

    def __init__(self, writer: HistoryWriter, loop: RealTimeLoop) -> None:
        self._writer = writer
        self._loop = loop

    async def begin_workout(self, record: WorkoutRecord) -> str:
        return await self._loop.call(self._writer.begin_workout(record))

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        await self._loop.call(self._writer.append_samples(workout_id, list(batch)))

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        await self._loop.call(self._writer.add_segment(workout_id, segment))

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        await self._loop.call(self._writer.update_segment(workout_id, segment))

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None:
        await self._loop.call(self._writer.add_phase(workout_id, phase))

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None:
        await self._loop.call(
            self._writer.end_workout(
                workout_id, outcome, summary, abort_reason=abort_reason, abort_detail=abort_detail
            )
        )
