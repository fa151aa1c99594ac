"""One broker connection's received messages, in arrival order, ended by how the connection
ended.

`treadmilld.mqtt.link` fills an inbox from the client for the whole connection (so a drop is
noticed whether or not anyone reads) and hands its messages out through `messages()`. Each
connection gets a fresh inbox: what an old one still holds is stale and never handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """Messages of one connection; after `end`, every read reports how it ended."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[T | _Ended] = asyncio.Queue()
        self._unread = 0

    @property
    def unread(self) -> int:
        """Messages put in and not yet taken out."""
        return self._unread

    def put(self, message: T) -> None:
        self._queue.put_nowait(message)
        self._unread += 1

    def end(self, reason: BaseException) -> None:
        """The connection is over: reads return `reason` once the messages before it are
        taken."""
        self._queue.put_nowait(_Ended(reason))

    async def fill(self, source: AsyncIterable[T], *, ended: BaseException) -> None:
        """Put `source`'s messages in as they arrive, then end with the error that ended it
        (re-raised), or with `ended` if it just stopped or this was cancelled."""
        try:
            async for message in source:
                self.put(message)
        except Exception as error:
            ended = error
            raise
        finally:
            self.end(ended)  # so readers end with the connection

    async def take(self) -> T | BaseException:
        """The next message, or (from the end on, to every later read too) why the connection
        ended."""
        item = await self._queue.get()
        if isinstance(item, _Ended):
            self._queue.put_nowait(item)  # a later read of this connection ends the same way
            return item.reason
        self._unread -= 1
        return item


class _Ended:
    __slots__ = ("reason",)

    def __init__(self, reason: BaseException) -> None:
        self.reason = reason
