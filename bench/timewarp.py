"""Time warp: wall time to run a 45-minute profile in virtual time against the simulator.

The real client (`BleTreadmillLink` over bleak, on the simulator's Bumble backend) and the real
engine (`WorkoutSession`) run on a `VirtualTimeEventLoop`: whenever every task waits on a timer,
the loop jumps to it. What remains is the real work: every Treadmill Data notification (2,700
of them at 1 Hz), every Control Point procedure, every plan step.

    uv run python bench/timewarp.py [--runs N] [--quick] [--json]
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from _sim_walk import walk_profile
from _stats import (
    Figure,
    PartMissingError,
    Summary,
    argument_parser,
    emit,
    not_available,
    quiet_logs,
)

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
    return await walk_profile(profile, profiles_dir, deck_name="SIM-WARP")


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
