"""A recorded workout as a FIT activity file (Garmin's Flexible and Interoperable Data Transfer
protocol), written with Garmin's own FIT SDK for Python (`garmin-fit-sdk`, its `Encoder`). This
is the only module of the daemon that imports `garmin_fit_sdk`.

What goes in, in the order the FIT SDK's "Activity File" guide lists: file_id; the developer data
id and field descriptions; the workout and one workout_step per segment; a timer start event;
one record per sample; one lap per segment; a timer stop event; the session; the activity.

FIT laps have no name. A lap says its direction three ways, each from the profile:
`wkt_step_index` points at its workout_step, whose `wkt_step_name` is the lap's label
("2: backward 2.0 km/h"); `intensity` is `rest` for a rest segment and `active` otherwise; and
a developer field `direction` (forward, backward, rest) carries it for readers that show
developer fields. The session carries the distances each way as developer fields too, since
the profile's `total_distance` has no direction.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from garmin_fit_sdk import FIT_EPOCH_S, Encoder, Profile

from treadmilld.history.export.laps import (
    Lap,
    Totals,
    heart_rate,
    heart_rates,
    is_running,
    laps,
    speed_m_s,
    totals,
    wall_time,
)
from treadmilld.history.records import Sample, WorkoutRecord

if TYPE_CHECKING:
    # Type stubs only: the SDK's messages are plain dicts at run time.
    from garmin_fit_sdk.mesgs import DeveloperDataIdMesg, FieldDescriptionMesg

# Ours, random, fixed for good: readers key developer fields on it (FIT SDK, "Developer Data").
APPLICATION_ID = bytes.fromhex("da9c5ba4fbfb4eb79e6c1d57d4576d7e")
APPLICATION_VERSION = 1
_DEV_INDEX = 0
# Developer field numbers (and the SDK's keys for them), fixed for good like the application id.
FIELD_LAP_DIRECTION = 0
FIELD_FORWARD_DISTANCE = 1
FIELD_BACKWARD_DISTANCE = 2

# FIT profile, type fit_base_type: the ids a field description gives its value's type.
_FIT_STRING = 0x07
_FIT_FLOAT32 = 0x88

_MESG_NUM: dict[str, int] = Profile["mesg_num"]


def workout_to_fit(record: WorkoutRecord) -> bytes:
    """The workout as the bytes of a FIT activity file."""
    whole = totals(record)
    record_laps = laps(record)
    sport, sub_sport = (
        ("running", "treadmill") if is_running(record) else ("walking", "indoor_walking")
    )
    start = _fit_time(record.started_at)
    end = _fit_time(wall_time(record, whole.duration_s))

    encoder = Encoder()
    _write(
        encoder,
        "FILE_ID",
        type="activity",
        manufacturer="development",
        product=0,
        # Stable per treadmill, so two decks' files started in the same second differ.
        serial_number=zlib.crc32(record.treadmill_id.encode()),
        time_created=start,
    )
    _write_developer_fields(encoder)
    segments = [lap.segment for lap in record_laps if lap.segment is not None]
    if segments:
        _write(
            encoder,
            "WORKOUT",
            wkt_name=record.profile_name,
            sport=sport,
            sub_sport=sub_sport,
            num_valid_steps=len(segments),
        )
        for lap in record_laps:
            if lap.segment is None:
                continue
            _write(
                encoder,
                "WORKOUT_STEP",
                message_index=lap.segment.index,
                wkt_step_name=lap.label,
                duration_type="time",
                # The `duration_time` sub-field: milliseconds (FIT profile, scale 1000).
                duration_value=round(lap.segment.planned_duration_s * 1000),
                target_type="open",
                intensity="rest" if lap.is_rest else "active",
            )
    _write(encoder, "EVENT", timestamp=start, event="timer", event_type="start")
    for sample in record.samples:
        _write_record(encoder, record, sample)
    for position, lap in enumerate(record_laps):
        _write_lap(encoder, record, lap, position, sport=sport, sub_sport=sub_sport)
    _write(encoder, "EVENT", timestamp=end, event="timer", event_type="stop_all")
    _write(
        encoder,
        "SESSION",
        message_index=0,
        timestamp=end,
        start_time=start,
        event="session",
        event_type="stop",
        sport=sport,
        sub_sport=sub_sport,
        total_elapsed_time=whole.duration_s,
        total_timer_time=whole.duration_s,
        total_distance=whole.distance_m,
        total_calories=whole.kcal,
        first_lap_index=0,
        num_laps=len(record_laps),
        trigger="activity_end",
        **_speed_and_heart_rate(record.samples, whole),
        developer_fields={
            FIELD_FORWARD_DISTANCE: whole.distance_forward_m,
            FIELD_BACKWARD_DISTANCE: whole.distance_backward_m,
        },
    )
    _write(
        encoder,
        "ACTIVITY",
        timestamp=end,
        total_timer_time=whole.duration_s,
        num_sessions=1,
        type="manual",
        event="activity",
        event_type="stop",
    )
    return encoder.close()


def _write_developer_fields(encoder: Encoder) -> None:
    developer: DeveloperDataIdMesg = {
        "developer_data_index": _DEV_INDEX,
        "application_id": list(APPLICATION_ID),
        "application_version": APPLICATION_VERSION,
    }
    _write(encoder, "DEVELOPER_DATA_ID", **developer)
    for number, name, base_type, units, native_mesg in (
        (FIELD_LAP_DIRECTION, "direction", _FIT_STRING, None, "LAP"),
        (FIELD_FORWARD_DISTANCE, "forward_distance", _FIT_FLOAT32, "m", "SESSION"),
        (FIELD_BACKWARD_DISTANCE, "backward_distance", _FIT_FLOAT32, "m", "SESSION"),
    ):
        description: FieldDescriptionMesg = {
            "developer_data_index": _DEV_INDEX,
            "field_definition_number": number,
            "fit_base_type_id": base_type,
            "field_name": name,
            "native_mesg_num": _MESG_NUM[native_mesg],
        }
        if units is not None:
            description["units"] = units
        _write(encoder, "FIELD_DESCRIPTION", **description)
        encoder.add_developer_field(number, developer, description)


def _write_record(encoder: Encoder, record: WorkoutRecord, sample: Sample) -> None:
    _write(
        encoder,
        "RECORD",
        timestamp=_fit_time(wall_time(record, sample.at_s)),
        speed=speed_m_s(sample),
        distance=sample.distance_forward_m + sample.distance_backward_m,
        heart_rate=heart_rate(sample),
        grade=sample.incline_pct,  # a treadmill's incline is its grade, in %
    )


def _write_lap(
    encoder: Encoder, record: WorkoutRecord, lap: Lap, position: int, *, sport: str, sub_sport: str
) -> None:
    direction = lap.direction
    _write(
        encoder,
        "LAP",
        message_index=position,
        timestamp=_fit_time(wall_time(record, lap.end_s)),
        start_time=_fit_time(wall_time(record, lap.start_s)),
        event="lap",
        event_type="stop",
        total_elapsed_time=lap.duration_s,
        total_timer_time=lap.duration_s,
        total_distance=lap.distance_m,
        total_calories=lap.kcal,
        intensity="rest" if lap.is_rest else "active",
        lap_trigger=_lap_trigger(lap),
        sport=sport,
        sub_sport=sub_sport,
        wkt_step_index=None if lap.segment is None else lap.segment.index,
        **_speed_and_heart_rate(lap.samples, lap),
        developer_fields={} if direction is None else {FIELD_LAP_DIRECTION: direction.value},
    )


def _speed_and_heart_rate(samples: Iterable[Sample], span: Totals | Lap) -> dict[str, Any]:
    pieces = tuple(samples)
    rates = heart_rates(pieces)
    return {
        "avg_speed": span.distance_m / span.duration_s if span.duration_s > 0 else None,
        "max_speed": max((speed_m_s(s) for s in pieces), default=None),
        "avg_heart_rate": round(sum(rates) / len(rates)) if rates else None,
        "max_heart_rate": max(rates, default=None),
    }


def _lap_trigger(lap: Lap) -> str:
    if lap.completed:
        return "time"  # the segment ran its planned time
    if lap.ended_by_workout_end:
        return "session_end"  # stopped, aborted or interrupted inside it
    return "manual"  # skipped on command


def _fit_time(instant: datetime) -> int:
    """FIT's date_time: whole seconds since 1989-12-31 00:00 UTC, to the nearest second (a
    sample at 0.6 s is written at 1 s, not 0 s)."""
    return round(instant.timestamp()) - FIT_EPOCH_S


# Each message's field names in the SDK's profile, found once per message kind.
_FIELD_NAMES: dict[str, frozenset[str]] = {}


def _write(encoder: Encoder, message: str, **fields: Any) -> None:
    """Encode `message` with `fields`, leaving out those that are None. The SDK's encoder skips
    a field name its profile does not know, silently: a misspelt field would be missing from
    every file, so it is refused here."""
    number = _MESG_NUM[message]
    known = _FIELD_NAMES.get(message)
    if known is None:
        profile_fields = Profile["messages"][number]["fields"].values()
        known = frozenset(f["name"] for f in profile_fields) | {"developer_fields"}
        _FIELD_NAMES[message] = known
    unknown = fields.keys() - known
    if unknown:
        raise AttributeError(f"FIT message {message} has no field {sorted(unknown)}")
    present = {name: value for name, value in fields.items() if value is not None}
    if not present.get("developer_fields", True):
        del present["developer_fields"]
    encoder.on_mesg(number, present)
