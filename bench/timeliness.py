"""Setpoint timeliness: how late each planned setpoint reaches the treadmill, in real time.

Eight simulated treadmills each run the same short interval profile at once, in real time,
through the real client and engine in one process. The matched writes are the final speed of
each ramp, which the executor writes exactly when the ramp ends in plan time (writes inside a
ramp lead the plan by design and are not matched). The actual moment is when the Set Target
Speed request with the ramp's final speed reaches that treadmill's Control Point; lateness =
actual - planned, so it includes the engine's scheduling, the governor, the client's
one-procedure-at-a-time channel and the GATT write.

Plan time: the executor's, read from the session when the write arrives (its origin is set
when the belt is measured moving and moves only with pauses), so the steady-state figure is
how far each setpoint is from the instant the plan gives it. The first ramp is measured from
the workout's start instead (`WorkoutStarted`): it includes starting the belt (Start, then
waiting for Treadmill Data showing movement), reported apart as before.

    uv run python bench/timeliness.py [--seconds S] [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _stats import Figure, Summary, argument_parser, emit, not_available, quiet_logs

if TYPE_CHECKING:
    from treadmilld.engine.session import WorkoutSession
    from treadmilld.runtime.clock import Clock

REQUIRED = ("treadmilld_sim", "treadmilld.ble.client", "treadmilld.engine.session")
TREADMILLS = 8
# Matching window: a write up to one second before its planned moment still counts (and is
# reported as negative lateness): the executor holds a ramp's final speed for the ramp's end,
# and this is what would show it if it did not.
EARLY_TOLERANCE_S = 1.0


def interval_profile(seconds: float) -> str:
    """Forward-only 6-second blocks alternating between two speeds: many planned steps per
    minute, no turns (turn pauses would only add idle time)."""
    blocks = max(2, int(seconds // 6))
    lines = [
        'name = "bench-timeliness"',
        'title = "Bench: short forward intervals"',
        'description = "Benchmark profile: 6-second blocks alternating 3.0 and 3.6 km/h."',
        'suits = "benchmarks only"',
        'sources = ["bench/timeliness.py"]',
        "clinical = false",
    ]
    for index in range(blocks):
        speed = 3.0 if index % 2 == 0 else 3.6
        lines += [
            "",
            "[[segments]]",
            'direction = "forward"',
            "duration_s = 6",
            f"speed_kmh = {speed}",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Treadmill:
    # (clock time, speed, the executor's plan origin then) of every Set Target Speed request
    # that reached the treadmill.
    speed_writes: list[tuple[float, float, float | None]] = field(default_factory=list)
    started_at: float | None = None
    # (plan offset, speed) at the end of each ramp: the executor writes the ramp's final speed
    # exactly when the ramp ends, so that moment is the write's planned time.
    planned: list[tuple[float, float]] = field(default_factory=list)


async def measure(
    seconds: float,
    profiles_dir: Path,
    beside: Callable[[WorkoutSession, Clock], Coroutine[Any, Any, None]] | None = None,
) -> tuple[list[float], list[float], int]:
    """`beside(session, clock)`, when given, runs alongside each session (bench/history.py
    records every workout with it)."""
    from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

    from treadmilld.ble.api import LinkConnected
    from treadmilld.ble.client import BleTreadmillLink
    from treadmilld.ble.config import LinkSettings, TargetSelector
    from treadmilld.engine.api import WorkoutAborted, WorkoutFinished, WorkoutStarted
    from treadmilld.engine.library import ProfileLibrary
    from treadmilld.engine.limits import SafetyLimits
    from treadmilld.engine.planner import StepKind
    from treadmilld.engine.session import WorkoutSession
    from treadmilld.ftms import SetTargetSpeed
    from treadmilld.runtime.clock import LoopClock

    clock = LoopClock()
    library = ProfileLibrary([profiles_dir])
    records = [Treadmill() for _ in range(TREADMILLS)]
    async with SimulatedFleet(clock) as fleet, asyncio.TaskGroup() as group:
        background: list[asyncio.Task[None]] = []
        sessions: list[WorkoutSession] = []
        links: list[BleTreadmillLink] = []
        for index, record in enumerate(records):
            treadmill = await fleet.add(SimulatedTreadmillConfig(name=f"SIM-T{index:02d}"))
            link = BleTreadmillLink(
                f"t{index:02d}",
                TargetSelector(address=treadmill.address),
                LinkSettings(),
                clock=clock,
                scanner_backend=fleet.scanner_backend,
                client_backend=fleet.client_backend,
            )
            session = WorkoutSession(link, library=library, limits=SafetyLimits(), clock=clock)

            def on_request(
                request: object,
                at: float,
                record: Treadmill = record,
                session: WorkoutSession = session,
            ) -> None:
                if isinstance(request, SetTargetSpeed):
                    record.speed_writes.append((at, request.speed_kmh, session.plan_origin))

            treadmill.add_control_listener(on_request)
            links.append(link)
            sessions.append(session)

        async def walk(link: BleTreadmillLink, session: WorkoutSession, record: Treadmill) -> None:
            link_events = link.events()
            session_events = session.events()
            background.append(group.create_task(link.run()))
            background.append(group.create_task(session.run()))
            if beside is not None:  # its first step (subscribing) runs while the link connects
                background.append(group.create_task(beside(session, clock)))
            async for link_event in link_events:
                if isinstance(link_event, LinkConnected):
                    break
            await session.start_profile("bench-timeliness")
            plan = session.plan
            if plan is None:
                raise RuntimeError("the session has no plan after start_profile")
            record.planned = [
                (step.start_s + step.duration_s, step.speed_kmh)
                for segment in plan.segments
                for step in segment.steps
                if step.kind is StepKind.RAMP
            ]
            async for event in session_events:
                if isinstance(event, WorkoutStarted):
                    record.started_at = event.at
                if isinstance(event, WorkoutFinished | WorkoutAborted):
                    break

        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(
                *(walk(link, s, r) for link, s, r in zip(links, sessions, records, strict=True))
            )
        for link in links:
            await link.close()
        for task in background:
            task.cancel()
    return lateness_of(records)


def _planned_at(record: Treadmill, index: int, offset: float, origin: float | None) -> float:
    """The clock time a ramp end at plan `offset` is due: on the executor's plan time, except
    the first ramp, measured from the workout's start (it includes starting the belt)."""
    assert record.started_at is not None
    if index == 0 or origin is None:
        return record.started_at + offset
    return origin + offset


def lateness_of(records: list[Treadmill]) -> tuple[list[float], list[float], int]:
    """(first ramp's lateness ms per treadmill, every later ramp's lateness ms, missed).

    The first ramp includes starting the belt (Start, then waiting for the treadmill's data
    to show the belt moving), so it is reported apart from the steady-state ramps. The plan's
    last ramp (down to the restart speed, just before the belt stops) is not matched: the
    executor may end the workout with Stop instead of writing that speed.
    """
    first_ramp: list[float] = []
    later_ramps: list[float] = []
    missed = 0
    for record in records:
        if record.started_at is None:
            raise RuntimeError("a workout never reported WorkoutStarted")
        for index, (offset, speed) in enumerate(record.planned[:-1]):
            actual, planned = next(
                (
                    (at, planned)
                    for at, written, origin in record.speed_writes
                    if abs(written - speed) < 0.01
                    and at
                    >= (planned := _planned_at(record, index, offset, origin)) - EARLY_TOLERANCE_S
                ),
                (None, 0.0),
            )
            if actual is None or actual - planned > 6.0:
                missed += 1
                continue
            late_ms = (actual - planned) * 1000.0
            (first_ramp if index == 0 else later_ramps).append(late_ms)
    return first_ramp, later_ramps, missed


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--seconds", type=float, default=36.0, help="profile length (real time)")
    args = parser.parse_args()
    quiet_logs()
    seconds = 18.0 if args.quick else args.seconds
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            return not_available(f"{module} is not importable yet")
    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-timeliness-") as tmp:
        (Path(tmp) / "bench-timeliness.toml").write_text(
            interval_profile(seconds), encoding="utf-8"
        )
        first_ramp, later_ramps, missed = asyncio.run(measure(seconds, Path(tmp)))
    note = (
        f"{TREADMILLS} treadmills at once, real time, 6 s blocks; negative = early; against the"
        " executor's plan time"
    )
    if missed:
        note += f"; {missed} planned ramp ends had no matching write within 6 s"
    emit(
        [
            Figure(
                "timeliness",
                "setpoint lateness vs plan, steady state (ramp ends after the first)",
                "ms",
                Summary.of(later_ramps),
                note=note,
            ),
            Figure(
                "timeliness",
                "setpoint lateness vs plan, first ramp (includes starting the belt)",
                "ms",
                Summary.of(first_ramp),
                note="Start, then the belt start gate waits for Treadmill Data showing movement",
            ),
        ],
        as_json=args.json,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
