"""What a recorded workout is, as plain frozen values: the contract between the recorder (fed by
the engine's events), the store (SQLAlchemy), the exporters (FIT, TCX, CSV) and the programs
(which read outcomes and feedback to choose the next session).

No I/O here and nothing of SQLAlchemy: the store maps these to rows, the exporters read them.
Times inside a workout are seconds from its start (`at_s`), so a record replays the same in
virtual and real time; `started_at` is the one wall-clock instant (UTC), for exports and weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from treadmilld.engine.api import AbortReason, Direction


class HistoryUnavailableError(Exception):
    """The place history is kept cannot be reached now (a database restarting, a network
    down); the write may succeed if tried again. Raised by the store, retried by the
    recorder."""


class WorkoutOutcome(StrEnum):
    RUNNING = "running"  # being recorded now
    FINISHED = "finished"  # the plan ran to its end
    STOPPED = "stopped"  # the person ended it with the `stop` command
    ABORTED = "aborted"  # a safety stop; `abort_reason` says which
    # Found still RUNNING when the daemon started again: power loss, SIGKILL, a crash. The
    # samples written before are kept.
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Sample:
    """One second of a workout, from the deck's own measurements."""

    at_s: float
    speed_kmh: float  # measured belt speed, never negative; `direction` says which way
    incline_pct: float | None
    direction: Direction
    distance_forward_m: float  # cumulative since the workout's start
    distance_backward_m: float
    heart_rate_bpm: int | None = None


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A segment as planned and as done."""

    index: int  # position in the plan, from 0
    direction: Direction
    planned_duration_s: float
    planned_speed_kmh: float
    planned_incline_pct: float
    started_at_s: float
    ended_at_s: float | None = None  # None while it runs, or when the workout ended inside it
    # Moved during this segment, either way (a turn's ramp-down counts in the turn segment),
    # so the segments add up to the workout's distance.
    distance_m: float = 0.0
    completed: bool = False  # ran to its planned end (not skipped, not cut by an abort)


@dataclass(frozen=True, slots=True)
class PhaseChange:
    at_s: float
    phase: str  # treadmilld.engine.api.Phase value; a string so old records stay readable


@dataclass(frozen=True, slots=True)
class WorkoutSummary:
    duration_s: float
    distance_forward_m: float
    distance_backward_m: float
    kcal: float


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the rider reported after a workout: effort and pain, each 0 to 10."""

    effort: int
    pain: int
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class WorkoutRecord:
    workout_id: str
    treadmill_id: str
    profile_name: str
    started_at: datetime  # UTC
    outcome: WorkoutOutcome
    rider_id: str | None = None
    abort_reason: AbortReason | None = None
    abort_detail: str | None = None
    segments: tuple[SegmentRecord, ...] = ()
    samples: tuple[Sample, ...] = ()
    phases: tuple[PhaseChange, ...] = ()
    summary: WorkoutSummary | None = None
    feedback: Feedback | None = None
    # The program stage this workout was run for, when started for a rider on a program.
    program_name: str | None = None
    program_stage: int | None = None
