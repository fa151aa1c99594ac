"""`treadmilld history list | show ID | export ID | prune`: recorded workouts, read from the
database the daemon writes (the same settings: the config file, `TREADMILLD_*` variables).

Plain functions over an open `Store` writing to `out`, each returning the exit code;
`history_command` opens the store from the settings and maps its errors to messages that say
what to do. Exports are CPU work (FIT, TCX) and run in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from treadmilld.app.settings import ConfigError, load_settings
from treadmilld.history.export import ExportFormat, export_workout
from treadmilld.history.records import (
    HistoryUnavailableError,
    SegmentRecord,
    WorkoutOutcome,
    WorkoutRecord,
)
from treadmilld.store.api import (
    SchemaTooNewError,
    Store,
    StoreError,
    UnknownWorkoutError,
    database_url,
    open_store,
)

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_UNKNOWN = 2
LIST_HINT = "`treadmilld history list` shows the workouts' ids"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60:d}:{whole % 60:02d}"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


async def list_workouts(
    out: TextIO, store: Store, *, rider_id: str | None = None, limit: int = 20
) -> int:
    workouts = await store.list_workouts(rider_id=rider_id, limit=limit)
    if not workouts:
        whose = f" for rider {rider_id}" if rider_id is not None else ""
        out.write(f"no workouts recorded{whose}\n")
        return EXIT_OK
    width = max(len(w.workout_id) for w in workouts)
    out.write(
        f"{'ID':<{width}}  {'STARTED (UTC)':<16}  {'TREADMILL':<9}  {'RIDER':<8}  "
        f"{'OUTCOME':<11}  {'TIME':>6}  {'FWD m':>6}  {'BACK m':>6}  PROFILE\n"
    )
    for w in workouts:
        summary = w.summary
        out.write(
            f"{w.workout_id:<{width}}  {w.started_at:%Y-%m-%d %H:%M}  {w.treadmill_id:<9}  "
            f"{w.rider_id or '-':<8}  {w.outcome.value:<11}  "
            f"{_clock(summary.duration_s if summary else None):>6}  "
            f"{_number(summary.distance_forward_m if summary else None):>6}  "
            f"{_number(summary.distance_backward_m if summary else None):>6}  "
            f"{w.profile_name}\n"
        )
    return EXIT_OK


def _segment_state(segment: SegmentRecord, workout: WorkoutRecord) -> str:
    if segment.completed:
        return "done"
    if segment.ended_at_s is None and workout.outcome is WorkoutOutcome.RUNNING:
        return "running"
    return "cut short"


def _workout_end(workout: WorkoutRecord) -> float | None:
    """Where a segment the workout ended inside ends: the summary's time, else the last
    sample's (an interrupted workout has no summary)."""
    if workout.summary is not None:
        return workout.summary.duration_s
    return workout.samples[-1].at_s if workout.samples else None


def render_workout(out: TextIO, w: WorkoutRecord) -> None:
    out.write(f"workout {w.workout_id}: {w.profile_name} on {w.treadmill_id}")
    out.write(f", rider {w.rider_id}\n" if w.rider_id else "\n")
    out.write(f"started {w.started_at:%Y-%m-%d %H:%M:%S} UTC, {w.outcome.value}\n")
    if w.abort_reason is not None:
        detail = f": {w.abort_detail}" if w.abort_detail else ""
        out.write(f"aborted: {w.abort_reason.value}{detail}\n")
    if w.program_name is not None:
        out.write(f"program {w.program_name}, stage {w.program_stage}\n")
    if w.summary is not None:
        s = w.summary
        out.write(
            f"time {_clock(s.duration_s)}, forward {s.distance_forward_m:.0f} m, backward "
            f"{s.distance_backward_m:.0f} m, {s.kcal:.1f} kcal\n"
        )
    if w.feedback is not None:
        out.write(f"reported effort {w.feedback.effort}/10, pain {w.feedback.pain}/10\n")
    out.write(f"{len(w.samples)} samples, {len(w.phases)} phase changes\n")
    if not w.segments:
        return
    out.write(
        f"\n{'#':>3}  {'DIR':<8}  {'PLANNED':>6}  {'km/h':>5}  {'INCL%':>5}  "
        f"{'DONE':>6}  {'METRES':>6}  STATE\n"
    )
    end = _workout_end(w)
    for seg in w.segments:
        ended = seg.ended_at_s if seg.ended_at_s is not None else end
        done = None if ended is None else max(ended - seg.started_at_s, 0.0)
        out.write(
            f"{seg.index + 1:>3}  {seg.direction.value:<8}  {_clock(seg.planned_duration_s):>6}  "
            f"{seg.planned_speed_kmh:>5.1f}  {seg.planned_incline_pct:>5.1f}  "
            f"{_clock(done):>6}  {seg.distance_m:>6.0f}  "
            f"{_segment_state(seg, w)}\n"
        )


async def show_workout(out: TextIO, store: Store, workout_id: str) -> int:
    render_workout(out, await store.get_workout(workout_id))
    return EXIT_OK


async def export_to_file(
    out: TextIO, store: Store, workout_id: str, export_format: ExportFormat, path: Path | None
) -> int:
    record = await store.get_workout(workout_id)
    # FIT and TCX encoding is CPU work: off the event loop, as the daemon would do it.
    data = await asyncio.to_thread(export_workout, record, export_format)
    target = path if path is not None else Path(f"{workout_id}{export_format.suffix}")
    try:
        target.write_bytes(data)
    except OSError as error:
        raise ConfigError(
            f"-o {target}: cannot write the file ({error.strerror}); give a path in a folder "
            "you may write to"
        ) from None
    out.write(f"wrote {target} ({export_format.value}, {len(data)} bytes)\n")
    return EXIT_OK


async def prune(out: TextIO, store: Store, retention_days: int | None) -> int:
    if retention_days is None:
        raise ConfigError(
            "no retention is configured, so nothing is old enough to delete; set "
            "[database] retention_days (e.g. 365) in the configuration"
        )
    deleted = await store.apply_retention(retention_days)
    out.write(f"deleted {deleted} workout(s) older than {retention_days} days\n")
    return EXIT_OK


async def _run(args: argparse.Namespace, url: str, retention_days: int | None) -> int:
    store = await open_store(url)
    try:
        match args.history_command:
            case "list":
                return await list_workouts(sys.stdout, store, rider_id=args.rider, limit=args.limit)
            case "show":
                return await show_workout(sys.stdout, store, args.id)
            case "export":
                return await export_to_file(
                    sys.stdout, store, args.id, ExportFormat(args.format), args.output
                )
            case _:
                return await prune(sys.stdout, store, retention_days)
    finally:
        await store.close()


def history_command(args: argparse.Namespace) -> int:
    settings, path = load_settings(args.config)
    url = database_url(settings.database)
    try:
        return asyncio.run(_run(args, url, settings.database.retention_days))
    except UnknownWorkoutError as error:
        sys.stderr.write(f"treadmilld: {error}; {LIST_HINT}\n")
        return EXIT_UNKNOWN
    except HistoryUnavailableError as error:
        sys.stderr.write(
            f"treadmilld: {error}\nThe database comes from [database] url in {path} (or "
            "TREADMILLD_DATABASE__URL); unset, it is SQLite in the state directory "
            "($STATE_DIRECTORY, else /var/lib/treadmilld)\n"
        )
        return EXIT_UNREACHABLE
    except (SchemaTooNewError, StoreError) as error:
        raise ConfigError(f"[database]: {error}") from None
