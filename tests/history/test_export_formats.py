"""One entry point for the CLI and MQTT wiring: a format's name gives its file."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.history.workouts import interval_workout
from treadmilld.history.export import (
    ExportFormat,
    export_workout,
    workout_to_csv,
    workout_to_fit,
    workout_to_tcx,
)
from treadmilld.history.records import WorkoutRecord


def csv_bytes(record: WorkoutRecord) -> bytes:
    return workout_to_csv(record).encode("utf-8")


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [("fit", ".fit", workout_to_fit), ("tcx", ".tcx", workout_to_tcx), ("csv", ".csv", csv_bytes)],
)
def test_a_format_named_by_its_suffix_gives_that_file(
    name: str, suffix: str, expected: Callable[[WorkoutRecord], bytes]
) -> None:
    record = interval_workout()
    export_format = ExportFormat(name)
    assert export_format.suffix == suffix
    assert export_workout(record, export_format) == expected(record)
