"""The bounded fan-out: every subscriber gets every event until its queue is full; then the
oldest droppable event goes, counted and logged, and the publisher never waits."""

from __future__ import annotations

import asyncio
import gc

import pytest
from structlog.testing import capture_logs

from treadmilld.runtime.fanout import FanOut, Subscription


async def drain(subscription: Subscription[int]) -> list[int]:
    """Everything queued, up to and including the end of the subscription."""
    return [item async for item in subscription]


async def test_every_subscriber_gets_every_event_in_order() -> None:
    fanout: FanOut[int] = FanOut("numbers", maxsize=10)
    first, second = fanout.subscribe(), fanout.subscribe()
    for n in range(5):
        fanout.publish(n)
    fanout.close()
    assert await drain(first) == [0, 1, 2, 3, 4]
    assert await drain(second) == [0, 1, 2, 3, 4]


async def test_a_full_queue_drops_its_oldest_events_counts_and_logs_them() -> None:
    fanout: FanOut[int] = FanOut("numbers", maxsize=3)
    slow = fanout.subscribe()
    fast = fanout.subscribe()
    seen: list[int] = []

    async def keep_up() -> None:
        async for item in fast:
            seen.append(item)

    reader = asyncio.create_task(keep_up())
    with capture_logs() as logs:
        for n in range(10):
            fanout.publish(n)  # never waits, whoever lags
            await asyncio.sleep(0)
    fanout.close()
    await reader
    assert seen == list(range(10))  # the reader that keeps up loses nothing
    assert slow.dropped == 7
    assert await drain(slow) == [7, 8, 9]  # the newest survive
    lagging = [entry for entry in logs if entry["event"] == "subscriber_lagging"]
    # The first drop, then one line per queue's worth of drops (7 = 1 + 3 + 3).
    assert [entry["dropped"] for entry in lagging] == [1, 4, 7]
    assert all(entry["stream"] == "numbers" for entry in lagging)


async def test_events_the_publisher_keeps_are_never_dropped() -> None:
    # Odd numbers stand for the events that must arrive (a safety key), even ones for telemetry.
    fanout: FanOut[int] = FanOut("mixed", maxsize=3, keep=lambda n: n % 2 == 1)
    slow = fanout.subscribe()
    for n in [0, 1, 2, 3, 4, 6, 8]:
        fanout.publish(n)
    fanout.close()
    assert await drain(slow) == [1, 3, 8]
    assert slow.dropped == 4


async def test_a_queue_of_kept_events_goes_over_its_bound_rather_than_lose_one() -> None:
    fanout: FanOut[int] = FanOut("kept", maxsize=2, keep=lambda n: True)
    slow = fanout.subscribe()
    for n in range(5):
        fanout.publish(n)
    assert len(slow) == 5
    assert slow.dropped == 0
    fanout.close()
    assert await drain(slow) == [0, 1, 2, 3, 4]


async def test_a_reader_waiting_wakes_for_each_event_and_ends_with_the_stream() -> None:
    fanout: FanOut[int] = FanOut("numbers", maxsize=10)
    subscription = fanout.subscribe()
    reader = asyncio.create_task(drain(subscription))
    await asyncio.sleep(1.0)
    fanout.publish(1)
    await asyncio.sleep(1.0)
    fanout.publish(2)
    fanout.end_subscriptions()
    assert await reader == [1, 2]


async def test_ending_subscriptions_leaves_later_ones_live_and_closing_ends_them_all() -> None:
    fanout: FanOut[int] = FanOut("numbers", maxsize=10)
    early = fanout.subscribe()
    fanout.end_subscriptions()
    later = fanout.subscribe()
    fanout.publish(1)
    assert await drain(early) == []
    fanout.close()
    assert await drain(later) == [1]
    assert await drain(fanout.subscribe()) == []  # closed: a new subscription ends at once


async def test_a_subscription_nobody_holds_is_forgotten() -> None:
    fanout: FanOut[int] = FanOut("numbers", maxsize=10)
    held = fanout.subscribe()
    fanout.subscribe()  # dropped at once by its caller
    gc.collect()
    assert len(fanout) == 1
    await held.aclose()
    assert len(fanout) == 0


def test_a_queue_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="maxsize=0"):
        FanOut[int]("none", maxsize=0)
