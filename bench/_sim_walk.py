"""One profile walked from start to finish on a simulated treadmill, through the real link and
session (and, when asked, the real recorder beside them): what `timewarp.py` times and what
`history.py` records. Imports are inside: benches check their modules are importable first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from treadmilld.history.recorder import HistorySink

# Virtual seconds a walk may take: generous for a 45-minute profile, yet a hang still ends.
WALK_BOUND_S = 4 * 3600.0


class WorkoutAbortedError(RuntimeError):
    """The profile was aborted: a bench figure would measure the wrong thing."""


async def walk_profile(
    profile: str,
    profiles_dir: Path,
    *,
    deck_name: str,
    recorded_to: HistorySink | None = None,
) -> tuple[float, float]:
    """(wall seconds, virtual seconds) from the start of `profile` to its finish, on a fresh
    simulated deck; with `recorded_to`, a recorder writes the workout there and has written
    all of it before this returns."""
    from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

    from treadmilld.ble.api import LinkConnected
    from treadmilld.ble.client import BleTreadmillLink
    from treadmilld.ble.config import LinkSettings, TargetSelector
    from treadmilld.engine.api import WorkoutAborted, WorkoutFinished
    from treadmilld.engine.library import ProfileLibrary
    from treadmilld.engine.limits import SafetyLimits
    from treadmilld.engine.session import WorkoutSession
    from treadmilld.history.recorder import WorkoutRecorder
    from treadmilld.runtime.clock import LoopClock

    clock = LoopClock()
    async with SimulatedFleet(clock) as fleet:
        treadmill = await fleet.add(SimulatedTreadmillConfig(name=deck_name))
        link = BleTreadmillLink(
            deck_name.lower(),
            TargetSelector(address=treadmill.address),
            LinkSettings(),
            clock=clock,
            scanner_backend=fleet.scanner_backend,
            client_backend=fleet.client_backend,
        )
        session = WorkoutSession(
            link, library=ProfileLibrary([profiles_dir]), limits=SafetyLimits(), clock=clock
        )
        recorder = None if recorded_to is None else WorkoutRecorder(session, recorded_to, clock)
        link_events = link.events()
        session_events = session.events()
        async with asyncio.TaskGroup() as group:
            link_task = group.create_task(link.run())
            others = [group.create_task(session.run())]
            if recorder is not None:
                others.append(group.create_task(recorder.run()))
            async with asyncio.timeout(WALK_BOUND_S):
                async for link_event in link_events:
                    if isinstance(link_event, LinkConnected):
                        break
                wall_start, virtual_start = time.perf_counter(), clock.now()
                await session.start_profile(profile)
                async for event in session_events:
                    if isinstance(event, WorkoutFinished):
                        break
                    if isinstance(event, WorkoutAborted):
                        raise WorkoutAbortedError(f"{event.reason}: {event.detail}")
                wall = time.perf_counter() - wall_start
                virtual = clock.now() - virtual_start
                if recorder is not None:
                    await recorder.drained()
            # The session and recorder go first: a link closing under a session that still
            # runs would have it try to stop a belt that already stands.
            for task in others:
                task.cancel()
            await link.close()
            link_task.cancel()
    return wall, virtual
