"""Operations that must finish even when whoever started them stops waiting.

A GATT request or a Control Point procedure cannot be taken back once it is on the air: the
deck answers it, and cancelling it half-way leaves the stack (or the deck, FTMS §4.16.3) busy or
a late answer landing on a cancelled future. So the caller awaits it through a shield, and if
the caller is cancelled the operation goes on in the background with a strong reference held
(asyncio keeps only weak ones) and its outcome retrieved, so asyncio never reports it as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """Owns operations nobody may be awaiting; `on_error` hears the failures nobody received."""

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._on_error = on_error
        self._running: set[asyncio.Future[Any]] = set()
        self._abandoned: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        """Operations still running."""
        return len(self._running)

    def spawn(self, aw: Awaitable[T]) -> asyncio.Future[T]:
        """Start `aw` and let it finish on its own; nobody awaits it, so a failure goes to
        `on_error`."""
        future = self._start(aw)
        self._abandoned.add(future)
        return future

    async def shielded(self, aw: Awaitable[T], *, wait_when_cancelled: bool = False) -> T:
        """`aw`'s result; if the caller is cancelled, `aw` still finishes in the background.

        With `wait_when_cancelled` the caller's first cancellation waits for the operation to
        finish before it propagates (a lock the caller holds stays held until the deck has
        answered); a second cancellation stops waiting. If `aw` itself is cancelled, the
        caller gets that `CancelledError` as it would from awaiting `aw` directly.
        """
        future = self._start(aw)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                raise  # the operation itself was cancelled (or ended as we were)
            if wait_when_cancelled:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(future)
            if not future.done():
                self._abandoned.add(future)
            raise

    def _start(self, aw: Awaitable[T]) -> asyncio.Future[T]:
        future = asyncio.ensure_future(aw)
        self._running.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._running.discard(future)
        abandoned = future in self._abandoned
        self._abandoned.discard(future)
        if future.cancelled():
            return
        # Retrieved in any case (an awaiting caller gets it as well), so asyncio never logs
        # "exception was never retrieved" for an operation whose caller left.
        error = future.exception()
        if error is not None and abandoned and self._on_error is not None:
            self._on_error(error)
