"""What every export must show for a record, read from the record itself (not from the
exporters' own helpers): its totals, its laps' count and directions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from treadmilld.engine.api import Direction
from treadmilld.history.records import WorkoutRecord


@dataclass(frozen=True)
class ExpectedTotals:
    duration_s: float
    distance_m: float
    distance_forward_m: float
    distance_backward_m: float
    kcal: int | None


def expected_totals(record: WorkoutRecord) -> ExpectedTotals:
    """The summary's figures; without a summary (a workout interrupted before it was written),
    the last sample's distances and the latest instant the record knows of, and no kcal."""
    if record.summary is not None:
        s = record.summary
        return ExpectedTotals(
            duration_s=s.duration_s,
            distance_m=s.distance_forward_m + s.distance_backward_m,
            distance_forward_m=s.distance_forward_m,
            distance_backward_m=s.distance_backward_m,
            kcal=math.floor(s.kcal + 0.5),
        )
    instants = [s.at_s for s in record.samples]
    instants += [s.started_at_s for s in record.segments]
    instants += [s.ended_at_s for s in record.segments if s.ended_at_s is not None]
    last = record.samples[-1] if record.samples else None
    forward = last.distance_forward_m if last else 0.0
    backward = last.distance_backward_m if last else 0.0
    return ExpectedTotals(
        duration_s=max(instants, default=0.0),
        distance_m=forward + backward,
        distance_forward_m=forward,
        distance_backward_m=backward,
        kcal=None,
    )


def expected_lap_directions(record: WorkoutRecord) -> list[Direction | None]:
    """One lap per segment, in plan order; one lap without a direction when there is none."""
    if not record.segments:
        return [None]
    return [s.direction for s in sorted(record.segments, key=lambda s: s.index)]


def heart_rate_shown(bpm: int | None) -> int | None:
    """A heart rate as FIT and TCX can carry it: 1-254 bpm (0 is no reading)."""
    return bpm if bpm is not None and 1 <= bpm <= 254 else None
