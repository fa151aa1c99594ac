"""A recorded workout leaves the daemon as FIT, TCX or CSV (docs/history.md says what each holds).

Pure functions of a `WorkoutRecord`: no I/O, no clock. The CLI and MQTT wiring pick a format
and write the bytes where they belong.
"""

from __future__ import annotations

from enum import StrEnum

from treadmilld.history.export.csv_table import CSV_COLUMNS, workout_to_csv
from treadmilld.history.export.fit import workout_to_fit
from treadmilld.history.export.laps import WorkoutExportError
from treadmilld.history.export.tcx import workout_to_tcx
from treadmilld.history.records import WorkoutRecord

__all__ = [
    "CSV_COLUMNS",
    "ExportFormat",
    "WorkoutExportError",
    "export_workout",
    "workout_to_csv",
    "workout_to_fit",
    "workout_to_tcx",
]


class ExportFormat(StrEnum):
    FIT = "fit"
    TCX = "tcx"
    CSV = "csv"

    @property
    def suffix(self) -> str:
        """The file name suffix readers expect, e.g. ".fit"."""
        return f".{self.value}"


def export_workout(record: WorkoutRecord, export_format: ExportFormat) -> bytes:
    """The workout in `export_format`, as the bytes of a file (CSV as UTF-8).

    Raises `WorkoutExportError` for a record that cannot be exported as it stands.
    """
    match export_format:
        case ExportFormat.FIT:
            return workout_to_fit(record)
        case ExportFormat.TCX:
            return workout_to_tcx(record)
        case ExportFormat.CSV:
            return workout_to_csv(record).encode("utf-8")
