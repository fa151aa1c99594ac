"""Run a `WorkoutSession` over a test treadmill in virtual time, and read what happened."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from treadmilld.engine.api import SessionEvent, StateChanged
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.engine.session import WorkoutSession
from treadmilld.runtime.clock import LoopClock, VirtualTimeEventLoop

from .doubles import ObedientTreadmill

T = TypeVar("T")
E = TypeVar("E", bound=SessionEvent)

# Bound on virtual seconds for one scenario: longer than any profile, so a hang (nothing ever
# finishing) fails with a clear TimeoutError instead of pytest-timeout's process kill.
SCENARIO_TIMEOUT_S = 4 * 3600.0


def run_in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """For synchronous tests (Hypothesis): run `main()` on a fresh VirtualTimeEventLoop."""
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


@dataclass
class Recorder:
    """Every session event with its clock time, StateChanged left out unless asked for."""

    events: list[SessionEvent] = field(default_factory=list)
    keep_state: bool = False
    # How many of each type were recorded: `Rig.wait_for` looks four times a virtual second,
    # and counting the whole list each time made weeks of workouts quadratic.
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, event: SessionEvent) -> None:
        self.events.append(event)
        self.counts[event.type] += 1

    def of_type(self, kind: str) -> list[SessionEvent]:
        return [e for e in self.events if e.type == kind]

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@dataclass
class Rig:
    treadmill: ObedientTreadmill
    session: WorkoutSession
    recorder: Recorder
    clock: LoopClock

    async def wait_for(self, kind: str, *, count: int = 1, within_s: float = 3600.0) -> None:
        """Wait (in virtual time) until `count` events of `kind` have been recorded."""
        async with asyncio.timeout(within_s):
            while self.recorder.counts[kind] < count:  # noqa: ASYNC110 - virtual time
                await asyncio.sleep(0.25)

    async def wait_for_event(self, kind: type[E], *, within_s: float = 3600.0) -> E:
        """The first recorded event of class `kind`, waiting (in virtual time) for it."""
        await self.wait_for(kind.type, within_s=within_s)
        return next(e for e in self.recorder.events if isinstance(e, kind))

    async def wait_until(self, at: float) -> None:
        await asyncio.sleep(max(at - self.clock.now(), 0.0))


@contextlib.asynccontextmanager
async def rig(
    make_treadmill: Callable[[LoopClock], ObedientTreadmill] = ObedientTreadmill,
    *,
    limits: SafetyLimits | None = None,
    library: ProfileLibrary | None = None,
    body_weight_kg: float = 70.0,
    within_s: float = SCENARIO_TIMEOUT_S,
) -> AsyncIterator[Rig]:
    """`within_s`: the scenario's bound in virtual seconds (weeks of workouts need more)."""
    clock = LoopClock()
    treadmill = make_treadmill(clock)
    session = WorkoutSession(
        treadmill,
        library=library or ProfileLibrary(),
        limits=limits or SafetyLimits(),
        clock=clock,
        default_body_weight_kg=body_weight_kg,
    )
    recorder = Recorder()
    subscription = session.events()

    async def record() -> None:
        async for event in subscription:
            if recorder.keep_state or not isinstance(event, StateChanged):
                recorder.add(event)

    session_task = asyncio.create_task(session.run())
    recorder_task = asyncio.create_task(record())
    link_task = asyncio.create_task(treadmill.run())
    await asyncio.sleep(0)  # let the session subscribe before the link connects
    try:
        async with asyncio.timeout(within_s):
            yield Rig(treadmill, session, recorder, clock)
    finally:
        await session.shutdown()
        await treadmill.close()
        for task in (session_task, recorder_task, link_task):
            with contextlib.suppress(asyncio.CancelledError):
                await task
