"""`treadmilld scan` over the Bumble-backed simulator: one scan, both tables, and what to check
when a table is empty."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from treadmilld_sim import SimulatedFleet, SimulatedStrapConfig, SimulatedTreadmillConfig

from treadmilld.app.scan_and_diagnose import format_scan
from treadmilld.ble.discovery import scan_nearby
from treadmilld.runtime.clock import VirtualTimeEventLoop

T = TypeVar("T")


def in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


def scan_output(*, treadmill: bool, strap: bool) -> str:
    async def main() -> str:
        async with SimulatedFleet() as fleet:
            if treadmill:
                await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01"))
            if strap:
                await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01"))
            return format_scan(await scan_nearby(1.0, backend=fleet.scanner_backend))

    return in_virtual_time(main)


def test_no_strap_heard_says_to_wear_it_and_free_it_and_still_lists_the_treadmill() -> None:
    output = scan_output(treadmill=True, strap=False)
    treadmills, straps = output.split("Heart-rate straps")
    assert "SIM-TM01" in treadmills
    assert "No heart-rate straps heard" in straps
    assert "skin contact" in straps
    assert "watch or phone app" in straps
    assert "--timeout" in straps
    assert "heart_rate_strap = {" not in straps


def test_a_strap_alone_is_listed_and_no_treadmill_heard_says_what_to_check() -> None:
    output = scan_output(treadmill=False, strap=True)
    treadmills, straps = output.split("Heart-rate straps")
    assert "No FTMS treadmills heard" in treadmills
    assert "SIM-HR01" not in treadmills
    (row,) = [line.split() for line in straps.splitlines() if "SIM-HR01" in line]
    assert row[2:] == ["-50", "dBm"]
    assert 'heart_rate_strap = { address = "..." }' in straps
