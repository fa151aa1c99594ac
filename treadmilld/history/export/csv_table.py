"""A recorded workout as CSV: one row per sample (1 Hz), a header row first.

Columns (`CSV_COLUMNS`), an empty cell where the deck gave no value:

- `at_s`: seconds from the workout's start.
- `time_utc`: that instant, ISO 8601 UTC with milliseconds.
- `segment`: the index (from 0) of the segment in force, the last one started at or before
  this second, as in the FIT and TCX laps; empty when the workout recorded no segment.
- `direction`: forward, backward or rest, as the sample recorded it.
- `speed_kmh`: measured belt speed, never negative (`direction` says which way).
- `incline_pct`: measured incline.
- `distance_forward_m`, `distance_backward_m`: cumulative since the start, each way.
- `distance_m`: their sum, the figure FIT and TCX call distance.
- `heart_rate_bpm`.

Figures are written as Python writes floats (`repr`), so they read back exactly.
"""

from __future__ import annotations

import csv
import io

from treadmilld.history.export.laps import iso_utc, laps, wall_time
from treadmilld.history.records import WorkoutRecord

CSV_COLUMNS = (
    "at_s",
    "time_utc",
    "segment",
    "direction",
    "speed_kmh",
    "incline_pct",
    "distance_forward_m",
    "distance_backward_m",
    "distance_m",
    "heart_rate_bpm",
)


def workout_to_csv(record: WorkoutRecord) -> str:
    """The workout's samples as CSV text (RFC 4180 line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for lap in laps(record):
        segment = "" if lap.segment is None else str(lap.segment.index)
        for sample in lap.samples:
            writer.writerow(
                (
                    repr(sample.at_s),
                    iso_utc(wall_time(record, sample.at_s)),
                    segment,
                    sample.direction.value,
                    repr(sample.speed_kmh),
                    "" if sample.incline_pct is None else repr(sample.incline_pct),
                    repr(sample.distance_forward_m),
                    repr(sample.distance_backward_m),
                    repr(sample.distance_forward_m + sample.distance_backward_m),
                    "" if sample.heart_rate_bpm is None else str(sample.heart_rate_bpm),
                )
            )
    return out.getvalue()
