"""Waiting on an event, a future or a deadline on the injected clock.

Every layer waits this way: timeouts are measured on a `Clock`, so they run in virtual time in
tests and scale with the demo's `ScaledClock` like the rest of the daemon. `asyncio.timeout` and
`asyncio.wait_for` measure the event loop's own time, which is not the injected clock.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from treadmilld.runtime.clock import Clock

T = TypeVar("T")

# After a timeout the losing awaitable is cancelled; this bounds how long we wait for it to
# finish cancelling (some BLE stacks are slow to unwind a pending connect).
CANCEL_GRACE_S = 1.0


async def wait_any(
    *,
    events: Iterable[asyncio.Event] = (),
    futures: Iterable[asyncio.Future[Any]] = (),
    seconds: float = math.inf,
    clock: Clock | None = None,
) -> None:
    """Return once any of `events` is set, any of `futures` is done, or `seconds` of `clock`
    time have passed (`math.inf`, the default: no deadline), whichever comes first.

    The futures are the caller's: they are watched, never cancelled. The helpers this starts
    are cancelled before it returns (or is cancelled itself).
    """
    watched = list(futures)
    helpers: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait()) for e in events]
    if math.isfinite(seconds):
        if clock is None:
            raise ValueError("a deadline needs the clock it is measured on")
        helpers.append(asyncio.ensure_future(_sleep_until(clock, clock.now() + seconds)))
    if not helpers and not watched:
        raise ValueError("wait_any needs an event, a future or a finite deadline")
    try:
        await asyncio.wait([*helpers, *watched], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for helper in helpers:
            helper.cancel()


async def wait_all(
    futures: Iterable[asyncio.Future[Any]], *, seconds: float, clock: Clock
) -> set[asyncio.Future[Any]]:
    """Wait until every one of `futures` is done or `seconds` of `clock` time have passed,
    whichever comes first; the ones still pending. They are the caller's: never cancelled."""
    deadline = clock.now() + seconds
    pending = {future for future in futures if not future.done()}
    while pending and (left := deadline - clock.now()) > 0:
        await wait_any(futures=pending, seconds=left, clock=clock)
        pending = {future for future in pending if not future.done()}
    return pending


async def _sleep_until(clock: Clock, deadline: float) -> None:
    """Sleep until `deadline` on `clock`. The deadline is fixed when the wait is asked for, not
    when this task first runs: a clock that moved in between (a test's hand-moved clock, a busy
    loop) must not push it later."""
    left = deadline - clock.now()
    if left > 0:
        await clock.sleep(left)


async def sleep_until_set(event: asyncio.Event, seconds: float, clock: Clock) -> bool:
    """Sleep `seconds` of clock time or until `event` is set; True if the event was set."""
    if event.is_set():
        return True
    await wait_any(events=(event,), seconds=seconds, clock=clock)
    return event.is_set()


async def until_set(aw: Awaitable[T], event: asyncio.Event) -> T | None:
    """`aw`'s result, or None (after cancelling it and waiting for it) if `event` is set first."""
    task: asyncio.Future[T] = asyncio.ensure_future(aw)
    try:
        await wait_any(events=(event,), futures=(task,))
    finally:
        if not task.done():
            task.cancel()
            # Not `await task`: that would also swallow our own cancellation.
            await asyncio.wait({task})
    if task.cancelled():
        return None
    return task.result()


async def _cancel_and_wait(
    task: asyncio.Future[T], clock: Clock, on_late_result: Callable[[T], None] | None
) -> None:
    def settle(done: asyncio.Future[T]) -> None:
        if done.cancelled():
            return
        error = done.exception()  # retrieved, so asyncio never reports it as lost
        if error is None and on_late_result is not None:
            # It succeeded after all (a connect completing as the timeout fired): hand the
            # result over so it can be released instead of leaking.
            on_late_result(done.result())

    task.add_done_callback(settle)
    task.cancel()
    await wait_any(futures=(task,), seconds=CANCEL_GRACE_S, clock=clock)


async def wait_for_on_clock(
    aw: Awaitable[T],
    seconds: float,
    clock: Clock,
    *,
    on_late_result: Callable[[T], None] | None = None,
) -> T:
    """Like `asyncio.wait_for`, but the timeout is `seconds` of `clock` time.

    Raises `TimeoutError` (the awaitable is cancelled) when the clock runs out first. If the
    awaitable still produces a result after losing, `on_late_result` receives it.
    """
    task: asyncio.Future[T] = asyncio.ensure_future(aw)
    try:
        await wait_any(futures=(task,), seconds=seconds, clock=clock)
    except asyncio.CancelledError:
        await _cancel_and_wait(task, clock, on_late_result)
        raise
    if task.done():
        return task.result()
    await _cancel_and_wait(task, clock, on_late_result)
    raise TimeoutError(f"no result within {seconds:g} s")
