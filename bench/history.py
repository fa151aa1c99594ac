"""History's cost: setpoint lateness with recording on and off, the time a 45-minute workout's
writes take, and the database's size per workout hour.

1. Setpoint lateness (as bench/timeliness.py: 8 simulated treadmills at once, real time, one
   process), once without history and once with every session recorded by the daemon's
   `WorkoutRecorder` through the daemon's `HistoryWriter` into a real SQLite file (WAL,
   synchronous=FULL): both distributions and the ratio of their medians and p99s.
2. A 45-minute interval workout (bench/timewarp.py's, 14 turns) run in virtual time on the
   simulator with a recorder taking down every write; those writes are then made, in order, on
   a real SQLite file in real time: the wall time of each (one a second in the daemon, a sample
   each) and their total.
3. That file's growth per workout hour (after the writer closes, so the WAL is folded in).

    uv run python bench/history.py [--seconds S] [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _sim_walk import walk_profile
from _stats import Figure, Summary, argument_parser, emit, fmt_ratio, not_available, quiet_logs
from timeliness import interval_profile, measure
from timewarp import INTERVALS_45

if TYPE_CHECKING:
    from treadmilld.engine.api import AbortReason
    from treadmilld.engine.session import WorkoutSession
    from treadmilld.history.records import (
        PhaseChange,
        Sample,
        SegmentRecord,
        WorkoutOutcome,
        WorkoutRecord,
        WorkoutSummary,
    )
    from treadmilld.runtime.clock import Clock
    from treadmilld.store.writer import HistoryWriter

REQUIRED = ("treadmilld_sim", "treadmilld.store.writer", "treadmilld.history.recorder")
HOUR_S = 3600.0


class TakesDownWrites:
    """A history sink that keeps each call (the writer's method and arguments) to make later."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def begin_workout(self, record: WorkoutRecord) -> str:
        self.calls.append(("begin_workout", (record,), {}))
        return record.workout_id

    async def append_samples(self, workout_id: str, batch: Sequence[Sample]) -> None:
        self.calls.append(("append_samples", (workout_id, list(batch)), {}))

    async def add_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        self.calls.append(("add_segment", (workout_id, segment), {}))

    async def update_segment(self, workout_id: str, segment: SegmentRecord) -> None:
        self.calls.append(("update_segment", (workout_id, segment), {}))

    async def add_phase(self, workout_id: str, phase: PhaseChange) -> None:
        self.calls.append(("add_phase", (workout_id, phase), {}))

    async def end_workout(
        self,
        workout_id: str,
        outcome: WorkoutOutcome,
        summary: WorkoutSummary | None,
        *,
        abort_reason: AbortReason | None = None,
        abort_detail: str | None = None,
    ) -> None:
        self.calls.append(
            (
                "end_workout",
                (workout_id, outcome, summary),
                {"abort_reason": abort_reason, "abort_detail": abort_detail},
            )
        )


async def lateness(seconds: float, profiles_dir: Path, database: Path | None) -> list[float]:
    """Steady-state lateness (ms) of every treadmill's ramp ends; recorded into `database`."""
    if database is None:
        _, later, _ = await measure(seconds, profiles_dir)
        return later
    from treadmilld.history.recorder import WorkoutRecorder
    from treadmilld.store.config import sqlite_url
    from treadmilld.store.writer import open_history_writer

    writer = await open_history_writer(sqlite_url(database))

    async def record(session: WorkoutSession, clock: Clock) -> None:
        await WorkoutRecorder(session, writer, clock).run()

    try:
        _, later, _ = await measure(seconds, profiles_dir, beside=record)
    finally:
        await writer.close()
    return later


async def take_down_45_minutes(profiles_dir: Path) -> tuple[TakesDownWrites, float]:
    """The 45-minute workout in virtual time, its recorder's writes taken down; and its
    length in seconds."""
    sink = TakesDownWrites()
    _, length = await walk_profile(
        "bench-intervals-45", profiles_dir, deck_name="SIM-HIST", recorded_to=sink
    )
    return sink, length


async def write_for_real(writer: HistoryWriter, sink: TakesDownWrites) -> list[float]:
    """Each taken-down write made on `writer`; the wall time of each, ms."""
    times: list[float] = []
    for name, args, kwargs in sink.calls:
        started = time.perf_counter()
        await getattr(writer, name)(*args, **kwargs)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="profile length for the lateness runs"
    )
    args = parser.parse_args()
    quiet_logs()
    seconds = 12.0 if args.quick else args.seconds
    for module in REQUIRED:
        if importlib.util.find_spec(module) is None:
            return not_available(f"{module} is not importable yet")
    from treadmilld.runtime.clock import VirtualTimeEventLoop

    with tempfile.TemporaryDirectory(prefix="treadmilld-bench-history-") as tmp:
        folder = Path(tmp)
        (folder / "bench-timeliness.toml").write_text(interval_profile(seconds), "utf-8")
        (folder / "bench-intervals-45.toml").write_text(INTERVALS_45, "utf-8")
        off = asyncio.run(lateness(seconds, folder, None))
        on = asyncio.run(lateness(seconds, folder, folder / "lateness" / "treadmilld.db"))
        loop = VirtualTimeEventLoop()
        try:
            sink, length = loop.run_until_complete(take_down_45_minutes(folder))
        finally:
            loop.close()
        (folder / "sized").mkdir()
        times, length, growth = asyncio.run(_written(folder / "sized", sink, length))
    off_summary, on_summary = Summary.of(off), Summary.of(on)
    samples = sum(len(args[1]) for name, args, _ in sink.calls if name == "append_samples")
    lateness_note = "8 treadmills at once, real time, as bench/timeliness.py"
    emit(
        [
            Figure(
                "history",
                "setpoint lateness, history off (steady state)",
                "ms",
                off_summary,
                note=lateness_note,
            ),
            Figure(
                "history",
                "setpoint lateness, history on: every workout recorded into SQLite",
                "ms",
                on_summary,
                note=f"{lateness_note}; on/off: median "
                f"{fmt_ratio(on_summary.median / off_summary.median)}, p99 "
                f"{fmt_ratio(on_summary.p99 / off_summary.p99)}",
            ),
            Figure(
                "history",
                "one history write of a 45-min workout (a sample a second), SQLite",
                "ms",
                Summary.of(times),
                note=f"{len(times)} writes ({samples} samples) of a {length / 60:.0f}-min workout "
                f"with 14 turns: {sum(times) / 1000:.2f} s in all; WAL, synchronous=FULL",
            ),
            Figure(
                "history",
                "SQLite database growth per workout hour",
                "MiB",
                Summary.of([growth / (length / HOUR_S) / 2**20]),
                note=f"{growth / 1024:.0f} KiB for {length / 60:.0f} min: 1 Hz samples, "
                "segments, phases",
            ),
        ],
        as_json=args.json,
    )
    return 0


async def _written(
    folder: Path, sink: TakesDownWrites, length: float
) -> tuple[list[float], float, int]:
    from treadmilld.store.config import DATABASE_FILE_NAME, sqlite_url
    from treadmilld.store.writer import open_history_writer

    url = sqlite_url(folder)
    writer = await open_history_writer(url)
    await writer.close()  # the empty schema's size, WAL folded in
    empty = (folder / DATABASE_FILE_NAME).stat().st_size
    writer = await open_history_writer(url)
    try:
        times = await write_for_real(writer, sink)
    finally:
        await writer.close()
    return times, length, (folder / DATABASE_FILE_NAME).stat().st_size - empty


if __name__ == "__main__":
    sys.exit(main())
