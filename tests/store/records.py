"""Workouts and riders as the tests write them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from treadmilld.engine.api import Direction
from treadmilld.history.records import Sample, WorkoutOutcome, WorkoutRecord
from treadmilld.history.riders import Rider

STARTED = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def rider(rider_id: str = "r-17", **changes: Any) -> Rider:
    base = Rider(rider_id=rider_id, display_name="Rider Seventeen", body_weight_kg=72.5)
    return dataclasses.replace(base, **changes)


def running(
    workout_id: str, rider_id: str | None = "r-17", started_at: datetime = STARTED
) -> WorkoutRecord:
    return WorkoutRecord(
        workout_id=workout_id,
        treadmill_id="tm01",
        profile_name="p1-seed-steps",
        started_at=started_at,
        outcome=WorkoutOutcome.RUNNING,
        rider_id=rider_id,
    )


def seconds(start: int, count: int, heart_rate: bool = True) -> list[Sample]:
    """`count` 1 Hz samples walking backward at 2 km/h from second `start`."""
    return [
        Sample(
            at_s=float(second),
            speed_kmh=2.0,
            incline_pct=0.0,
            direction=Direction.BACKWARD,
            distance_forward_m=0.0,
            distance_backward_m=round(second * 2.0 / 3.6, 3),
            heart_rate_bpm=100 + second % 20 if heart_rate else None,
        )
        for second in range(start, start + count)
    ]
