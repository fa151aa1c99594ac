"""Fan-out of events to any number of subscribers, each with a bounded queue.

Overflow policy: **drop the oldest droppable event, count it, log it.** A subscriber that
stops reading must never block or slow the publisher (the engine and the link publish from
the code that keeps the belt safe), and must never make the daemon's memory grow without
bound (an abandoned dashboard stream on a Pi that runs for months). Closing the slow
subscriber instead was rejected: the engine's own consumer of link events is such a
subscriber, and closing it would end its watch over the belt. Which events are never dropped
is the publisher's call (`keep`): the link keeps every event but telemetry (a safety key or a
lost link must reach the engine however far behind it is; a telemetry record is superseded by
the next one), so its queue can go over the bound only by events a deck sends rarely.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

T = TypeVar("T")

_log = structlog.get_logger(__name__)


class Subscription(Generic[T]):
    """One subscriber's queue, iterated with `async for`; it ends when the publisher ends it.

    Registered when created, so nothing published after `subscribe()` is missed.
    """

    def __init__(self, owner: FanOut[T]) -> None:
        self._owner = owner
        self._items: deque[T] = deque()
        self._ending = False
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0  # events dropped from this queue by the overflow policy

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._ending:
                self._owner.unsubscribe(self)
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    async def aclose(self) -> None:
        """Stop receiving (what is queued is dropped with the subscription)."""
        self._owner.unsubscribe(self)

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        owner = self._owner
        if len(self._items) >= owner.maxsize and self._drop_one(owner.keep):
            self.dropped += 1
            # The first drop and then one line per queue's worth: visible, never a flood.
            if self.dropped % owner.maxsize == 1 or owner.maxsize == 1:
                _log.warning(
                    "subscriber_lagging",
                    stream=owner.name,
                    dropped=self.dropped,
                    queued=len(self._items),
                    hint="a reader of this stream is not keeping up; the oldest events are dropped",
                )
        self._items.append(item)
        self._wake()

    def end(self) -> None:
        """No more events: iteration stops once the queued ones are read."""
        self._ending = True
        self._wake()

    def _drop_one(self, keep: Callable[[T], bool] | None) -> bool:
        if keep is None:
            self._items.popleft()
            return True
        for index, item in enumerate(self._items):
            if not keep(item):
                del self._items[index]
                return True
        return False  # everything queued must be kept: the queue goes over its bound

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class FanOut(Generic[T]):
    """Publishes each event to every current subscriber's bounded queue (see the module doc for
    the overflow policy). Subscribers are held weakly: one nobody iterates any more is
    forgotten, not fed for ever."""

    def __init__(self, name: str, *, maxsize: int, keep: Callable[[T], bool] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"a subscriber queue needs room for an event, got maxsize={maxsize}")
        self.name = name
        self.maxsize = maxsize
        self.keep = keep
        self._subscribers: weakref.WeakSet[Subscription[T]] = weakref.WeakSet()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription[T]:
        """A new subscription; already ended if the fan-out is closed."""
        subscription = Subscription(self)
        if self._closed:
            subscription.end()
        else:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription[T]) -> None:
        self._subscribers.discard(subscription)

    def publish(self, item: T) -> None:
        for subscription in list(self._subscribers):
            subscription.put(item)

    def end_subscriptions(self) -> None:
        """End every current subscription; later ones receive what is published after."""
        for subscription in list(self._subscribers):
            subscription.end()
        self._subscribers.clear()

    def close(self) -> None:
        """End every subscription, current and later: nothing more will be published."""
        self._closed = True
        self.end_subscriptions()
