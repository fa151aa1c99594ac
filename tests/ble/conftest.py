"""BLE link tests run in virtual time: liveness, backoff and start gates take seconds of clock
time, which a VirtualTimeEventLoop skips whenever every task is waiting on a timer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
from treadmilld_sim import SimulatedFleet

from treadmilld.runtime.clock import LoopClock, VirtualTimeEventLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    del config, item
    return {"virtual_time": VirtualTimeEventLoop}


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    async with SimulatedFleet(LoopClock()) as simulated_fleet:
        yield simulated_fleet
