"""Fixtures for the simulator's tests: a fleet on a fresh in-process link per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from treadmilld_sim import SimulatedFleet, SimulatedTreadmill, SimulatedTreadmillConfig


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    async with SimulatedFleet() as simulated_fleet:
        yield simulated_fleet


@pytest.fixture
async def treadmill(fleet: SimulatedFleet) -> SimulatedTreadmill:
    # 20 Hz data so tests that wait for a record do not wait a real second.
    return await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01", data_rate_hz=20.0))
