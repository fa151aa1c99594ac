"""A workout session over the real BleTreadmillLink (real bleak client) and one simulated deck
on Bumble, in virtual time, recording what the deck was asked and what its belt did."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from treadmilld_sim import SimulatedFleet, SimulatedTreadmill, SimulatedTreadmillConfig

from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.engine.api import SessionEvent, StateChanged
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.engine.session import WorkoutSession
from treadmilld.ftms import ControlRequest
from treadmilld.runtime.clock import Clock, LoopClock

# Virtual seconds any single wait may take before the test fails with a traceback.
WAIT_BOUND_S = 4 * 3600.0
# How often the belt is sampled (virtual seconds): finer than any deck's data rate.
SAMPLE_S = 0.1


@dataclass(frozen=True, slots=True)
class BeltSample:
    at: float
    speed_kmh: float
    incline_pct: float


@dataclass
class SimRig:
    fleet: SimulatedFleet
    deck: SimulatedTreadmill
    session: WorkoutSession
    link: BleTreadmillLink
    events: list[SessionEvent] = field(default_factory=list)
    requests: list[tuple[float, ControlRequest]] = field(default_factory=list)
    belt: list[BeltSample] = field(default_factory=list)

    @property
    def clock(self) -> Clock:
        return self.fleet.clock

    def of_type(self, kind: str) -> list[SessionEvent]:
        return [e for e in self.events if e.type == kind]

    async def wait_for(self, kind: str, *, count: int = 1) -> SessionEvent:
        async with asyncio.timeout(WAIT_BOUND_S):
            while len(self.of_type(kind)) < count:  # noqa: ASYNC110 - virtual time
                await asyncio.sleep(0.1)
        return self.of_type(kind)[count - 1]

    async def connected(self) -> None:
        async with asyncio.timeout(WAIT_BOUND_S):
            while self.session.snapshot().connection != "connected":  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    async def standing(self) -> None:
        """Until the session has measured the belt standing (a second or two of records)."""
        async with asyncio.timeout(WAIT_BOUND_S):
            while self.session.snapshot().belt.value != "standing":  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    async def wait_requests(self, kind: type[ControlRequest], count: int) -> float:
        """Until the deck has been sent `count` requests of `kind`; the time of the last."""
        async with asyncio.timeout(WAIT_BOUND_S):
            while True:
                times = [at for at, r in self.requests if isinstance(r, kind)]
                if len(times) >= count:
                    return times[count - 1]
                await asyncio.sleep(0.1)

    def requests_after(self, at: float) -> list[ControlRequest]:
        return [request for when, request in self.requests if when > at]

    def last_moving_before(self, at: float) -> float:
        """Clock time of the last sample before `at` with the belt above standstill."""
        moving = [s.at for s in self.belt if s.at <= at and s.speed_kmh > 0.0]
        return moving[-1] if moving else -1.0


@contextlib.asynccontextmanager
async def sim_rig(
    config: SimulatedTreadmillConfig,
    *,
    library: ProfileLibrary | None = None,
    limits: SafetyLimits | None = None,
    sample_belt: bool = True,
) -> AsyncIterator[SimRig]:
    """`sample_belt=False` leaves `belt` empty (long profiles that sample for themselves)."""
    async with SimulatedFleet(LoopClock()) as fleet:
        deck = await fleet.add(config)
        link = BleTreadmillLink(
            "tm1",
            TargetSelector(address=deck.address),
            LinkSettings(),
            clock=fleet.clock,
            scanner_backend=fleet.scanner_backend,
            client_backend=fleet.client_backend,
        )
        session = WorkoutSession(
            link,
            library=library or ProfileLibrary(),
            limits=limits or SafetyLimits(),
            clock=fleet.clock,
        )
        rig = SimRig(fleet, deck, session, link)
        deck.add_control_listener(lambda request, at: rig.requests.append((at, request)))
        subscription = session.events()

        async def record() -> None:
            async for event in subscription:
                if not isinstance(event, StateChanged):
                    rig.events.append(event)

        async def sample() -> None:
            while True:
                model = deck.model
                rig.belt.append(
                    BeltSample(fleet.clock.now(), model.belt_speed_kmh, model.incline_pct)
                )
                await asyncio.sleep(SAMPLE_S)

        tasks = [
            asyncio.create_task(session.run(), name="session"),
            asyncio.create_task(record(), name="recorder"),
            asyncio.create_task(link.run(), name="link"),
        ]
        if sample_belt:
            tasks.append(asyncio.create_task(sample(), name="sampler"))
        try:
            await rig.connected()
            yield rig
        finally:
            async with asyncio.timeout(120.0):
                await session.shutdown()
                await link.close()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
