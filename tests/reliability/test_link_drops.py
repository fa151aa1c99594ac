"""The Bluetooth link dropped mid-profile, again and again.

Each round: start a profile, wait until the belt walks at the planned speed, drop the radio link
at the treadmill. The workout must end (aborted: never paused-and-resumed by itself), the link
must come back, the belt must end up stopped, and from the drop on the treadmill must never see
Start or a speed/incline setpoint that nobody asked for. Runs in virtual time: the link's
backoff and the engine's liveness checks cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.reliability.conftest import Survived
from tests.reliability.harness import run_in_virtual_time
from treadmilld.ble.api import LinkConnected, LinkEvent, LinkLost
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.engine.api import Phase
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.engine.session import WorkoutSession
from treadmilld.ftms import (
    ControlRequest,
    SetTargetInclination,
    SetTargetSpeed,
    StartOrResume,
)
from treadmilld.runtime.clock import LoopClock

DROPS = 6  # per normal run
# Virtual seconds to keep watching after each reconnect for anything starting the belt.
WATCH_AFTER_RECONNECT_S = 60.0


def test_link_dropped_mid_profile_repeatedly(survived: Survived, rounds: int) -> None:
    async def main() -> int:
        clock = LoopClock()
        async with SimulatedFleet(clock) as fleet:
            treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-DROPS"))
            requests: list[tuple[float, ControlRequest]] = []
            treadmill.add_control_listener(lambda request, at: requests.append((at, request)))
            link = BleTreadmillLink(
                "drops",
                TargetSelector(address=treadmill.address),
                LinkSettings(),
                clock=clock,
                scanner_backend=fleet.scanner_backend,
                client_backend=fleet.client_backend,
            )
            session = WorkoutSession(
                link, library=ProfileLibrary(), limits=SafetyLimits(), clock=clock
            )
            link_events = link.events()
            tasks = [asyncio.create_task(link.run()), asyncio.create_task(session.run())]
            survived_drops = 0
            try:
                async with asyncio.timeout(24 * 3600):  # virtual seconds: a hang still ends
                    await _next(link_events, LinkConnected)
                    for _ in range(DROPS * rounds):
                        await session.start_profile("forward-walk")
                        while not (
                            session.snapshot().phase is Phase.RUNNING
                            and treadmill.model.belt_speed_kmh >= 3.0
                        ):
                            await clock.sleep(0.5)
                        dropped_at = clock.now()
                        await treadmill.drop_link()
                        await _next(link_events, LinkLost)
                        await _next(link_events, LinkConnected)
                        await clock.sleep(WATCH_AFTER_RECONNECT_S)

                        snapshot = session.snapshot()
                        assert snapshot.phase is Phase.ABORTED, snapshot.phase
                        assert snapshot.abort_reason is not None
                        assert treadmill.model.belt_speed_kmh == 0.0
                        unasked = [
                            request
                            for at, request in requests
                            if at >= dropped_at
                            and isinstance(
                                request, StartOrResume | SetTargetSpeed | SetTargetInclination
                            )
                        ]
                        assert unasked == [], f"the belt was driven after the drop: {unasked}"
                        assert not any(task.done() for task in tasks), "a task ended"
                        survived_drops += 1
            finally:
                await link.close()
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            return survived_drops

    drops = run_in_virtual_time(main)
    assert drops == DROPS * rounds
    survived.add("BLE link drops mid-profile survived (aborted, reconnected, belt stopped)", drops)


async def _next(events: AsyncIterator[LinkEvent], kind: type[LinkEvent]) -> LinkEvent:
    async for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError(f"the link closed before {kind.__name__}")
