"""Straps wired to sessions: a configured simulated strap's readings reach its treadmill's
session through `heart_rate_received`, a lost strap as no reading; a session that takes no heart
rate yet leaves the strap running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

import structlog
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from treadmilld.app.heart_rate_wiring import HeartRateSink, heart_rate_services
from treadmilld.app.settings import Settings
from treadmilld.runtime.clock import LoopClock, VirtualTimeEventLoop

T = TypeVar("T")
Reading = tuple[int | None, bool | None, float]
WAIT_BOUND_S = 120.0


def in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


class RecordsHeartRate:
    """A session that keeps every heart rate handed to it."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.changed = asyncio.Event()

    def heart_rate_received(self, bpm: int | None, contact: bool | None, at: float) -> None:
        self.readings.append((bpm, contact, at))
        self.changed.set()

    async def until(
        self, check: Callable[[list[tuple[int | None, bool | None, float]]], bool]
    ) -> None:
        async with asyncio.timeout(WAIT_BOUND_S):
            while not check(self.readings):
                self.changed.clear()
                await self.changed.wait()


class TakesNoHeartRate:
    """A session from before the engine took heart rates."""


def settings_with_simulated_strap() -> Settings:
    return Settings.model_validate(
        {
            "treadmills": [
                {
                    "id": "sim01",
                    "simulated": {"name": "SIM-TM01"},
                    "heart_rate_strap": {"simulated": {"resting_bpm": 64}},
                }
            ]
        }
    )


def test_a_simulated_straps_readings_reach_its_treadmills_session() -> None:
    async def main() -> list[Reading]:
        settings = settings_with_simulated_strap()
        session = RecordsHeartRate()
        assert isinstance(session, HeartRateSink)
        async with SimulatedFleet(LoopClock()) as fleet:
            deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01"))
            services = await heart_rate_services(
                settings,
                clock=fleet.clock,
                sessions={"sim01": session},
                fleet=fleet,
                decks={"sim01": deck},
            )
            ((name, service),) = services
            assert name == "strap:sim01"
            (strap,) = fleet.straps
            assert strap.name == "SIM-HR-SIM01"
            task: asyncio.Future[None] = asyncio.ensure_future(service())
            await session.until(lambda r: len(r) >= 3)
            # The wearer walks on the treadmill's own deck.
            deck.model.press_start()
            deck.model.set_speed_at_console(3.0)
            await session.until(lambda r: (r[-1][0] or 0) > 70)
            await strap.drop_link()
            await session.until(lambda r: r[-1][0] is None)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return session.readings

    readings = in_virtual_time(main)
    assert readings[0][:2] == (64, True)
    assert readings[-1][:2] == (None, None)


def test_a_session_without_heart_rate_leaves_the_strap_running() -> None:
    async def main() -> list[MutableMapping[str, Any]]:
        settings = settings_with_simulated_strap()
        async with SimulatedFleet(LoopClock()) as fleet:
            deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01"))
            with structlog.testing.capture_logs() as logs:
                ((_, service),) = await heart_rate_services(
                    settings,
                    clock=fleet.clock,
                    sessions={"sim01": TakesNoHeartRate()},
                    fleet=fleet,
                    decks={"sim01": deck},
                )
                task: asyncio.Future[None] = asyncio.ensure_future(service())
                await fleet.clock.sleep(10)
                assert not task.done()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return logs

    logs = in_virtual_time(main)
    events = [entry["event"] for entry in logs]
    assert "heart_rate_unused" in events
    assert "strap_connected" in events
    assert events.count("heart_rate") >= 5
