"""Riders, programs and recorded workouts as the rider tests need them: two small programs
that advance after one good session (one of them clinical), and workouts written to the store
the way the recorder writes them (begun, then ended)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from treadmilld.engine.api import AbortReason
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.history.records import WorkoutOutcome, WorkoutRecord, WorkoutSummary
from treadmilld.programs import ProgramLibrary
from treadmilld.riders.service import RiderService
from treadmilld.store.api import Store

MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

_PROGRAM = """
name = "{name}"
title = "{name}"
description = "A test program: one good session advances."
sources = ["tests/support/riders.py: a program made small for tests"]
clinical = {clinical}

[[stages]]
profile = "p1-starter-a"
sessions_per_week = 2
[stages.advance]
sessions = 1
within_days = 7
max_effort = 5
max_pain = 2
[stages.step_back]
pain_above = 4

[[stages]]
profile = "p1-starter-b"
sessions_per_week = 3
[stages.step_back]
pain_above = 4
"""


def quick_programs(folder: Path) -> Path:
    """`quick` and `quick-clinical` in `folder`: stage 0 (p1-starter-a) advances to stage 1
    (p1-starter-b) after one completed session at effort <= 5 and pain <= 2."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, clinical in (("quick", "false"), ("quick-clinical", "true")):
        (folder / f"{name}.toml").write_text(_PROGRAM.format(name=name, clinical=clinical))
    return folder


class WallClock:
    """The service's `now`, moved by hand (program weeks are calendar days)."""

    def __init__(self, start: datetime = MONDAY) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def rider_service(
    store: Store, programs_dir: Path, now: WallClock, limits: SafetyLimits | None = None
) -> RiderService:
    profiles = ProfileLibrary()
    programs = ProgramLibrary(profiles, [quick_programs(programs_dir)])
    return RiderService(store, programs, profiles, limits or SafetyLimits(), now=now)


async def record_workout(
    store: Store,
    workout_id: str,
    *,
    rider_id: str | None,
    started_at: datetime,
    profile: str = "p1-starter-a",
    program: str | None = None,
    stage: int | None = None,
    outcome: WorkoutOutcome = WorkoutOutcome.FINISHED,
    abort_reason: AbortReason | None = None,
) -> None:
    """A workout as the recorder leaves it: begun running, then ended with its summary."""
    await store.begin_workout(
        WorkoutRecord(
            workout_id=workout_id,
            treadmill_id="tm01",
            profile_name=profile,
            started_at=started_at,
            outcome=WorkoutOutcome.RUNNING,
            rider_id=rider_id,
            program_name=program,
            program_stage=stage,
        )
    )
    if outcome is not WorkoutOutcome.RUNNING:
        await store.end_workout(
            workout_id,
            outcome,
            WorkoutSummary(
                duration_s=600.0, distance_forward_m=400.0, distance_backward_m=120.0, kcal=31.0
            ),
            abort_reason=abort_reason,
        )
