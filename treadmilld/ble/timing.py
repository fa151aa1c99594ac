"""Waiting on the injected clock, and the reconnect backoff.

All link timeouts are measured on the link's `Clock`, so they run in virtual time in tests and
scale with the demo's `ScaledClock` exactly like the rest of the daemon.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from treadmilld.ble.config import BackoffSettings
from treadmilld.runtime.clock import Clock

T = TypeVar("T")

# After a timeout the losing awaitable is cancelled; this bounds how long we wait for it to
# finish cancelling (some BLE stacks are slow to unwind a pending connect).
_CANCEL_GRACE_S = 1.0


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
    grace = asyncio.ensure_future(clock.sleep(_CANCEL_GRACE_S))
    racers: set[asyncio.Future[Any]] = {task, grace}
    try:
        await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        grace.cancel()


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
    timer = asyncio.ensure_future(clock.sleep(seconds))
    racers: set[asyncio.Future[Any]] = {task, timer}
    try:
        await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        timer.cancel()
        await _cancel_and_wait(task, clock, on_late_result)
        raise
    if task.done():
        timer.cancel()
        return task.result()
    await _cancel_and_wait(task, clock, on_late_result)
    raise TimeoutError(f"no result within {seconds:g} s")


async def sleep_until_set(event: asyncio.Event, seconds: float, clock: Clock) -> bool:
    """Sleep `seconds` of clock time or until `event` is set; True if the event was set."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        timer.cancel()
    return event.is_set()


class ReconnectBackoff:
    """Capped, jittered exponential delays; `reset()` after a long healthy session."""

    def __init__(self, settings: BackoffSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        # Jitter only spreads retries out; it needs no cryptographic randomness.
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failed attempts counted since the last reset (stops growing at the cap)."""
        return self._failures

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        settings = self._settings
        base = min(settings.maximum_s, settings.initial_s * settings.multiplier**self._failures)
        if base < settings.maximum_s:
            # Stop counting once capped, so a treadmill off for a week cannot overflow the power.
            self._failures += 1
        factor = 1.0 + self._rng.uniform(-settings.jitter, settings.jitter)
        return min(settings.maximum_s, base * factor)

    def reset(self) -> None:
        self._failures = 0
