"""Waiting on an event, a future or a deadline of the injected clock."""

from __future__ import annotations

import asyncio
import math

import pytest

from treadmilld.runtime.clock import LoopClock
from treadmilld.runtime.waiting import (
    sleep_until_set,
    until_set,
    wait_all,
    wait_any,
    wait_for_on_clock,
)

# Virtual time jumps to each timer, plus a nanosecond so the timer is due (clock.py).
EPSILON = 1e-6


async def set_after(event: asyncio.Event, seconds: float) -> None:
    await asyncio.sleep(seconds)
    event.set()


async def test_an_event_set_before_the_deadline_ends_the_wait_when_it_is_set() -> None:
    clock = LoopClock()
    event = asyncio.Event()
    setter = asyncio.create_task(set_after(event, 2.0))
    started = clock.now()
    assert await sleep_until_set(event, 10.0, clock)
    assert clock.now() - started == pytest.approx(2.0, abs=EPSILON)
    await setter


async def test_the_deadline_ends_the_wait_when_the_event_comes_later() -> None:
    clock = LoopClock()
    event = asyncio.Event()
    setter = asyncio.create_task(set_after(event, 20.0))
    started = clock.now()
    assert not await sleep_until_set(event, 10.0, clock)
    assert clock.now() - started == pytest.approx(10.0, abs=EPSILON)
    assert not event.is_set()
    setter.cancel()


async def test_an_event_already_set_returns_at_once() -> None:
    clock = LoopClock()
    event = asyncio.Event()
    event.set()
    started = clock.now()
    assert await sleep_until_set(event, 10.0, clock)
    assert clock.now() == started


async def test_a_done_future_ends_the_wait_and_is_neither_cancelled_nor_consumed() -> None:
    clock = LoopClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(3.0, future.set_result, 7)
    started = clock.now()
    await wait_any(events=(asyncio.Event(),), futures=(future,), seconds=60.0, clock=clock)
    assert clock.now() - started == pytest.approx(3.0, abs=EPSILON)
    assert future.result() == 7


async def test_a_watched_future_is_not_cancelled_when_the_deadline_wins() -> None:
    clock = LoopClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    await wait_any(futures=(future,), seconds=1.0, clock=clock)
    assert not future.done()
    future.cancel()


async def test_no_deadline_waits_for_the_event_however_long() -> None:
    clock = LoopClock()
    event = asyncio.Event()
    setter = asyncio.create_task(set_after(event, 86_400.0))
    await wait_any(events=(event,))
    assert clock.now() == pytest.approx(86_400.0, abs=EPSILON)
    await setter


async def test_a_wait_on_nothing_or_a_deadline_without_a_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an event"):
        await wait_any()
    with pytest.raises(ValueError, match="needs the clock"):
        await wait_any(events=(asyncio.Event(),), seconds=1.0)
    # Infinite: no deadline, so no clock needed; the event ends it.
    event = asyncio.Event()
    event.set()
    await wait_any(events=(event,), seconds=math.inf)


async def test_a_cancelled_wait_leaves_no_helper_running() -> None:
    clock = LoopClock()
    event = asyncio.Event()
    before = asyncio.all_tasks()
    waiter = asyncio.create_task(sleep_until_set(event, 100.0, clock))
    await asyncio.sleep(1.0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)  # cancelled helpers finish on the next loop iteration
    assert asyncio.all_tasks() - before == set()


async def test_until_set_gives_the_result_or_none_after_cancelling_the_work() -> None:
    closing = asyncio.Event()

    async def work(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    assert await until_set(work(1.0), closing) == "done"
    cancelled = False

    async def slow() -> str:
        nonlocal cancelled
        try:
            await asyncio.sleep(100.0)
        except asyncio.CancelledError:
            cancelled = True
            raise
        return "late"

    setter = asyncio.create_task(set_after(closing, 5.0))
    assert await until_set(slow(), closing) is None
    assert cancelled
    await setter


async def test_wait_for_on_clock_hands_over_a_result_that_comes_after_the_timeout() -> None:
    clock = LoopClock()
    late: list[str] = []

    async def connect_that_ignores_cancel() -> str:
        # Like a BLE stack that completes a connect while it is being cancelled.
        try:
            await asyncio.sleep(5.0)
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)
            return "connection"
        return "connection"

    with pytest.raises(TimeoutError):
        await wait_for_on_clock(
            connect_that_ignores_cancel(), 2.0, clock, on_late_result=late.append
        )
    await asyncio.sleep(1.0)
    assert late == ["connection"]


class HandMovedClock:
    """A clock a test moves forward at will, on top of the loop's own time."""

    def __init__(self) -> None:
        self._loop_clock = LoopClock()
        self.moved_s = 0.0

    def now(self) -> float:
        return self._loop_clock.now() + self.moved_s

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_a_deadline_is_fixed_when_the_wait_is_asked_for() -> None:
    """The clock passes the deadline after the wait was asked for but before its timer task
    first runs: the wait ends then, not a whole delay later (a hand-moved test clock, or a
    publisher whose heartbeat would otherwise slip by one interval)."""
    clock = HandMovedClock()
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.create_task(sleep_until_set(asyncio.Event(), 5.0, clock))
    await asyncio.sleep(0)  # the wait is asked for; its timer task has not run yet
    clock.moved_s = 5.0
    assert not await waiting
    assert loop.time() - started < 1.0


async def test_wait_all_returns_when_the_last_future_is_done() -> None:
    clock = LoopClock()
    started = clock.now()
    quick = asyncio.ensure_future(asyncio.sleep(1.0))
    slow = asyncio.ensure_future(asyncio.sleep(3.0))
    assert await wait_all([quick, slow], seconds=10.0, clock=clock) == set()
    assert clock.now() - started == pytest.approx(3.0, abs=EPSILON)


async def test_wait_all_gives_back_what_is_still_pending_at_the_deadline_uncancelled() -> None:
    clock = LoopClock()
    started = clock.now()
    quick = asyncio.ensure_future(asyncio.sleep(1.0))
    late = asyncio.ensure_future(asyncio.sleep(30.0))
    assert await wait_all([quick, late], seconds=10.0, clock=clock) == {late}
    assert clock.now() - started == pytest.approx(10.0, abs=EPSILON)
    assert quick.done()
    assert not late.done()
    late.cancel()
