"""The CSV export is a row per sample under a header, and reads back to the recorded figures."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from hypothesis import given, settings

from tests.history.workouts import interval_workout, recorded_workouts
from treadmilld.history.export import CSV_COLUMNS, workout_to_csv
from treadmilld.history.records import WorkoutRecord


def rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def optional(cell: str) -> float | None:
    return None if cell == "" else float(cell)


@settings(max_examples=100, deadline=None)
@given(recorded_workouts())
def test_every_sample_reads_back_exactly(record: WorkoutRecord) -> None:
    table = rows(workout_to_csv(record))
    assert len(table) == len(record.samples)
    for row, sample in zip(table, record.samples, strict=True):
        assert float(row["at_s"]) == sample.at_s
        assert row["direction"] == sample.direction.value
        assert float(row["speed_kmh"]) == sample.speed_kmh
        assert optional(row["incline_pct"]) == sample.incline_pct
        assert float(row["distance_forward_m"]) == sample.distance_forward_m
        assert float(row["distance_backward_m"]) == sample.distance_backward_m
        assert float(row["distance_m"]) == sample.distance_forward_m + sample.distance_backward_m
        assert optional(row["heart_rate_bpm"]) == sample.heart_rate_bpm
        shown = datetime.fromisoformat(row["time_utc"])
        at = record.started_at + timedelta(seconds=sample.at_s)
        assert abs((shown - at).total_seconds()) < 0.001
        if not record.segments:
            assert row["segment"] == ""


def test_each_row_names_the_segment_in_force() -> None:
    record = interval_workout()
    table = rows(workout_to_csv(record))
    # Segments start at 0, 30, 60 and 70 s; a sample each second to 75 s.
    assert [row["segment"] for row in table] == ["0"] * 30 + ["1"] * 30 + ["2"] * 10 + ["3"] * 5
    assert {row["direction"] for row in table[30:60]} == {"backward"}


def test_a_workout_with_no_samples_is_a_header_alone() -> None:
    record = interval_workout()
    empty = WorkoutRecord(
        workout_id=record.workout_id,
        treadmill_id=record.treadmill_id,
        profile_name=record.profile_name,
        started_at=record.started_at,
        outcome=record.outcome,
    )
    assert workout_to_csv(empty) == ",".join(CSV_COLUMNS) + "\r\n"
