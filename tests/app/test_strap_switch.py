"""A rider's own strap: a workout started for a rider hears the strap they wear, not the
treadmill's, and the treadmill's again once that workout has ended; an ending that belongs to
an earlier workout changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import structlog
from treadmilld_sim import SimulatedStrapConfig, SimulatedTreadmillConfig

from tests.engine.sim_rig import sim_rig
from tests.support.snapshots import idle_snapshot
from treadmilld.app.heart_rate_wiring import heart_rate_wiring
from treadmilld.app.settings import Settings
from treadmilld.app.strap_switch import StrapSwitch
from treadmilld.ble.api import ConnectionState
from treadmilld.ble.config import TargetSelector
from treadmilld.ble.strap_api import HeartRateReceived, StrapEvent
from treadmilld.engine.api import (
    Phase,
    SessionEvent,
    SessionSnapshot,
    WorkoutFinished,
    WorkoutStopped,
)
from treadmilld.history.riders import StrapChoice
from treadmilld.runtime.clock import VirtualTimeEventLoop
from treadmilld.runtime.fanout import FanOut

T = TypeVar("T")
WAIT_BOUND_S = 300.0


def in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


def test_a_riders_strap_is_heard_for_their_workout_then_the_treadmills_again() -> None:
    """Over Bumble, in virtual time, with the real session: the treadmill's strap (its walker
    rests at 60 bpm) is heard until a workout is started for a rider whose own strap reads
    about 100; then theirs, with the treadmill's link closed; after the workout, the
    treadmill's again."""

    async def main() -> tuple[list[int | None], list[int | None], list[int | None], list[str]]:
        settings = Settings.model_validate(
            {
                "treadmills": [
                    {
                        "id": "tm1",
                        "simulated": {"name": "SIM-TM01"},
                        "heart_rate_strap": {"simulated": {"resting_bpm": 60}},
                    }
                ]
            }
        )
        async with sim_rig(SimulatedTreadmillConfig(name="SIM-TM01"), sample_belt=False) as rig:
            # The rider's own strap, somewhere in the gym (the simulated world).
            await rig.fleet.add_strap(
                SimulatedStrapConfig(name="H10 R17", treadmill="SIM-TM01", resting_bpm=100)
            )
            wiring = await heart_rate_wiring(
                settings,
                clock=rig.fleet.clock,
                sessions={"tm1": rig.session},
                fleet=rig.fleet,
                decks={"tm1": rig.deck},
            )
            switch = wiring.switches["tm1"]
            ((_, service),) = wiring.services

            def heard() -> int | None:
                return rig.session.snapshot().heart_rate_bpm

            async def hear(check: Callable[[int], bool]) -> list[int | None]:
                seen: list[int | None] = []
                async with asyncio.timeout(WAIT_BOUND_S):
                    while not ((bpm := heard()) is not None and check(bpm)):
                        seen.append(bpm)
                        await asyncio.sleep(1.0)
                return [*seen, heard()]

            with structlog.testing.capture_logs() as logs:
                task: asyncio.Future[None] = asyncio.ensure_future(service())
                before = await hear(lambda bpm: bpm < 75)
                await rig.session.start_profile("p1-starter-a")
                switch.assign(StrapChoice(name_match="h10 r17"))  # any case
                during = await hear(lambda bpm: bpm >= 90)
                assert switch.target == TargetSelector(name_contains="h10 r17")
                await rig.session.stop()
                await rig.wait_for("workout_stopped")
                after = await hear(lambda bpm: bpm < 80)
                (own,) = [s for s in rig.fleet.straps if s.name == "SIM-HR-TM1"]
                assert switch.target == TargetSelector(address=own.address)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            events = [entry["event"] for entry in logs]
            return before, during, after, events

    before, during, after, events = in_virtual_time(main)
    assert before[-1] is not None
    assert 50 <= before[-1] < 75
    assert during[-1] is not None
    assert during[-1] >= 90
    assert after[-1] is not None
    assert after[-1] < 80
    # The switch closed one link before opening the next: the treadmill's, the rider's, and
    # the treadmill's again.
    assert [e for e in events if e in ("strap_assigned", "strap_returned")] == [
        "strap_assigned",
        "strap_returned",
    ]
    assert events.count("strap_connected") == 3
    assert events.count("strap_link_closed") >= 2


class SilentStrap:
    """A strap link that connects to nothing and sends nothing until closed."""

    def __init__(self, target: TargetSelector) -> None:
        self.target = target
        self._events: FanOut[StrapEvent] = FanOut("silent", maxsize=10)
        self._closed = asyncio.Event()

    @property
    def strap_id(self) -> str:
        return "silent"

    @property
    def connection_state(self) -> ConnectionState:
        return ConnectionState.CONNECTING

    @property
    def latest(self) -> HeartRateReceived | None:
        return None

    def events(self) -> AsyncIterator[StrapEvent]:
        return self._events.subscribe()

    async def run(self) -> None:
        await self._closed.wait()

    async def close(self) -> None:
        self._closed.set()
        self._events.close()


class ScriptedSession:
    """A session whose phase and events the test sets; it takes heart rates and drops them."""

    def __init__(self) -> None:
        self.phase = Phase.IDLE
        self._events: FanOut[SessionEvent] = FanOut("session", maxsize=100)

    def heart_rate_received(self, bpm: int | None, contact: bool | None, at: float) -> None:
        pass

    def events(self) -> AsyncIterator[SessionEvent]:
        return self._events.subscribe()

    def snapshot(self) -> SessionSnapshot:
        return idle_snapshot("tm1", phase=self.phase)

    def emit(self, event: SessionEvent) -> None:
        self._events.publish(event)


def ending(*, at: float) -> dict[str, Any]:
    return {
        "treadmill_id": "tm1",
        "at": at,
        "profile": "p1-starter-a",
        "elapsed_s": 600.0,
        "distance_forward_m": 400.0,
        "distance_backward_m": 110.0,
        "calories_kcal": 30.0,
    }


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_an_ending_heard_after_the_next_workout_began_keeps_the_riders_strap() -> None:
    session = ScriptedSession()
    opened: list[TargetSelector] = []

    def open_link(target: TargetSelector, worn_by_rider: bool) -> SilentStrap:
        opened.append(target)
        return SilentStrap(target)

    own = TargetSelector(address="AA:BB:CC:DD:EE:01")
    switch = StrapSwitch("tm1", configured=own, open_link=open_link, session=session)
    task = asyncio.create_task(switch.run())
    await settle()
    # The previous workout stopped; before its ending is read, the next is started for r-17.
    session.phase = Phase.RUNNING
    session.emit(WorkoutStopped(**ending(at=1.0)))
    switch.assign(StrapChoice(address="AA:BB:CC:DD:EE:17"))
    await settle()
    assert switch.target == TargetSelector(address="AA:BB:CC:DD:EE:17")
    # Their workout ends: the treadmill's own strap again.
    session.phase = Phase.FINISHED
    session.emit(WorkoutFinished(**ending(at=2.0)))
    await settle()
    assert switch.target == own
    assert opened == [own, TargetSelector(address="AA:BB:CC:DD:EE:17"), own]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
