"""Time warp: wall time to run a 45-minute profile in virtual time against the simulator.

The real client (`BleTreadmillLink` over bleak, on the simulator's Bumble backend) and the real
engine (`WorkoutSession`) run on a `VirtualTimeEventLoop`: whenever every task waits on a timer,
the loop jumps to it. What remains is the real work: every Treadmill Data notification (2,700
of them at 1 Hz), every Control Point procedure, every plan step.

    uv run python bench/timewarp.py [--runs N] [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from _stats import (
    Figure,
    PartMissingError,
    Summary,
    argument_parser,
    emit,
    not_available,
    quiet_logs,
)


class WorkoutAbortedError(RuntimeError):
    """The benchmark's workout aborted; its reason says which part misbehaved."""


REQUIRED = ("treadmilld_sim", "treadmilld.ble.client", "treadmilld.engine.session")

# 45 minutes with a direction change every three minutes: the turn protocol (ramp down, pause,
# countdown, restart, ramp up) runs 14 times, on top of the plain forward walk's 45 minutes.
INTERVALS_45 = """
name = "bench-intervals-45"
title = "Bench: 45 min of forward/backward intervals"
description = "Benchmark profile: alternating 3-minute forward and backward blocks."
suits = "benchmarks only"
sources = ["bench/timewarp.py"]
clinical = false

[[segments]]
repeat = 7

  [[segments.segments]]
  direction = "forward"
  duration_s = 180
  speed_kmh = 4.0

  [[segments.segments]]
  direction = "backward"
  duration_s = 180
  speed_kmh = 2.5

[[segments]]
direction = "forward"
duration_s = 180
speed_kmh = 3.5
"""


async def run_profile(profile: str, profiles_dir: Path) -> tuple[float, float]:
    """(wall seconds, virtual seconds) for one run of `profile` from start to finish."""
    from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

    from treadmilld.ble.api import LinkConnected
    from treadmilld.ble.client import BleTreadmillLink
    from treadmilld.ble.config import LinkSettings, TargetSelector
    from treadmilld.engine.api import WorkoutAborted, WorkoutFinished
    from treadmilld.engine.library import ProfileLibrary
    from treadmilld.engine.limits import SafetyLimits
    from treadmilld.engine.session import WorkoutSession
    from treadmilld.runtime.clock import LoopClock

    clock = LoopClock()
    async with SimulatedFleet(clock) as fleet:
        treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-WARP"))
        link = BleTreadmillLink(
            "warp",
            TargetSelector(address=treadmill.address),
            LinkSettings(),
            clock=clock,
            scanner_backend=fleet.scanner_backend,
            client_backend=fleet.client_backend,
        )
        session = WorkoutSession(
            link, library=ProfileLibrary([profiles_dir]), limits=SafetyLimits(), clock=clock
        )
        link_events = link.events()
        session_events = session.events()
        async with asyncio.TaskGroup() as group:
            link_task = group.create_task(link.run())
            session_task = group.create_task(session.run())
            # Virtual seconds: generous for a 45-minute profile, yet a hang still ends.
            async with asyncio.timeout(4 * 3600):
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
            await link.close()
            session_task.cancel()
            link_task.cancel()
    return wall, virtual


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--runs", type=int, default=5, help="runs per profile")
    args = parser.parse_args()
    quiet_logs()
    runs = 1 if args.quick else args.runs
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            return not_available(f"{module} is not importable yet")
    from treadmilld.runtime.clock import VirtualTimeEventLoop

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-warp-") as tmp:
        (Path(tmp) / "bench-intervals-45.toml").write_text(INTERVALS_45, encoding="utf-8")
        for profile, label in (
            ("forward-walk", "45-min forward walk"),
            ("bench-intervals-45", "45-min intervals with 14 turns"),
        ):
            walls: list[float] = []
            virtuals: list[float] = []
            for _ in range(runs):
                loop = VirtualTimeEventLoop()
                try:
                    wall, virtual = loop.run_until_complete(run_profile(profile, Path(tmp)))
                except PartMissingError as exc:
                    return not_available(str(exc))
                finally:
                    loop.close()
                walls.append(wall)
                virtuals.append(virtual)
            speedup = (sum(virtuals) / len(virtuals)) / (sum(walls) / len(walls))
            figures.append(
                Figure(
                    "timewarp",
                    f"{label}, virtual time, real client + engine + simulator",
                    "s",
                    Summary.of(walls),
                    note=f"virtual {min(virtuals) / 60:.1f} min each; x{speedup:.0f} real time",
                )
            )
    emit(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
