"""A recorded workout leaves the daemon as a file (docs/history.md says what each format holds).

Pure functions of a `WorkoutRecord`: no I/O, no clock. The CLI and MQTT wiring pick a format
and write the bytes where they belong.
"""

from __future__ import annotations

from treadmilld.history.export.fit import workout_to_fit
from treadmilld.history.export.laps import WorkoutExportError
from treadmilld.history.export.tcx import workout_to_tcx

__all__ = ["WorkoutExportError", "workout_to_fit", "workout_to_tcx"]
