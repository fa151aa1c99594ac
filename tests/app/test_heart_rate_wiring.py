"""Straps wired to sessions: a configured simulated strap's readings reach its treadmill's
session through `heart_rate_received`, a lost strap as no reading; a session that takes no heart
rate yet leaves the strap running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

import pytest
import structlog
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.engine.sim_rig import sim_rig
from treadmilld.app.heart_rate_wiring import HeartRateSink, heart_rate_wiring
from treadmilld.app.settings import ConfigError, Settings
from treadmilld.app.simulation import check_simulated
from treadmilld.engine.api import Phase
from treadmilld.engine.limits import ProfileLimits
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
            services = (
                await heart_rate_wiring(
                    settings,
                    clock=fleet.clock,
                    sessions={"sim01": session},
                    fleet=fleet,
                    decks={"sim01": deck},
                )
            ).services
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
                ((_, service),) = (
                    await heart_rate_wiring(
                        settings,
                        clock=fleet.clock,
                        sessions={"sim01": TakesNoHeartRate()},
                        fleet=fleet,
                        decks={"sim01": deck},
                    )
                ).services
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


def test_a_strap_that_loses_contact_pauses_a_workout_that_requires_heart_rate() -> None:
    """End to end over Bumble, in virtual time: the real session takes the simulated strap's
    readings as its heart rate, walks the heart-rate profile, and pauses it (turn-safe, belt
    measured standing) when the strap loses skin contact; it does not resume by itself."""

    async def main() -> tuple[list[str], float | None, str | None, Phase, float]:
        settings = Settings.model_validate(
            {
                "treadmills": [
                    {
                        "id": "tm1",
                        "simulated": {"name": "SIM-TM01"},
                        "heart_rate_strap": {"simulated": {"resting_bpm": 64}},
                    }
                ]
            }
        )
        async with sim_rig(SimulatedTreadmillConfig(name="SIM-TM01"), sample_belt=False) as rig:
            services = (
                await heart_rate_wiring(
                    settings,
                    clock=rig.fleet.clock,
                    sessions={"tm1": rig.session},
                    fleet=rig.fleet,
                    decks={"tm1": rig.deck},
                )
            ).services
            ((_, service),) = services
            strap_task: asyncio.Future[None] = asyncio.ensure_future(service())
            (strap,) = rig.fleet.straps
            async with asyncio.timeout(WAIT_BOUND_S):
                while rig.session.snapshot().heart_rate_bpm is None:  # noqa: ASYNC110 - virtual time
                    await asyncio.sleep(1.0)
            first = rig.session.snapshot()
            await rig.session.start_profile(
                "hr-zone-retro", rider_limits=ProfileLimits(hr_max_bpm=180)
            )
            await rig.wait_for("segment_started", count=2)
            strap.faults.contact_lost = True
            await rig.wait_for("heart_rate_missing")
            await rig.wait_for("workout_paused")
            await asyncio.sleep(120.0)  # the rider has not resumed: it stays paused
            paused = rig.session.snapshot()
            strap_task.cancel()
            await asyncio.gather(strap_task, return_exceptions=True)
            return (
                [e.type for e in rig.events],
                first.heart_rate_bpm,
                first.heart_rate_source,
                paused.phase,
                rig.deck.model.belt_speed_kmh,
            )

    types, first_bpm, source, phase, belt_kmh = in_virtual_time(main)
    assert first_bpm is not None
    assert 55 <= first_bpm <= 75  # the simulated rider at rest (64 bpm resting)
    assert source == "strap"
    assert types.index("heart_rate_missing") < types.index("workout_paused")
    assert "workout_aborted" not in types
    assert "workout_resumed" not in types
    assert phase is Phase.PAUSED
    assert belt_kmh == 0.0


@pytest.mark.parametrize(
    ("treadmill", "field", "says"),
    [
        # A wearer on a deck that is not there would crash the daemon as it assembles.
        (
            {
                "id": "sim01",
                "simulated": {"name": "SIM-TM01"},
                "heart_rate_strap": {"simulated": {"treadmill": "SIM-TM09"}},
            },
            "treadmills[0].heart_rate_strap.simulated.treadmill: 'SIM-TM09'",
            "the simulated decks: 'SIM-TM01'",
        ),
    ],
)
def test_a_strap_table_run_could_not_start_is_refused_by_the_config_check(
    treadmill: dict[str, Any], field: str, says: str
) -> None:
    settings = Settings.model_validate({"treadmills": [treadmill]})
    with pytest.raises(ConfigError) as refused:
        check_simulated(settings)
    assert field in str(refused.value)
    assert says in str(refused.value)


def test_a_simulated_strap_on_its_simulated_deck_passes_the_config_check() -> None:
    check_simulated(settings_with_simulated_strap())
