"""Every FIT export decodes through Garmin's official FIT SDK for Python without an error, as
an activity whose session, laps and records show the recorded workout."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest
from garmin_fit_sdk import Decoder, Stream
from hypothesis import HealthCheck, given, settings

from tests.history.expected import expected_lap_directions, expected_totals, heart_rate_shown
from tests.history.workouts import STARTED_AT, interval_workout, recorded_workouts, walk
from treadmilld.engine.api import Direction
from treadmilld.history.export import WorkoutExportError, workout_to_fit
from treadmilld.history.records import WorkoutRecord

# FIT stores distance in cm and times in ms (FIT profile: scale 100 and 1000).
DISTANCE_STEP_M = 0.01
TIME_STEP_S = 0.001

Messages = dict[str, list[dict[str, Any]]]


def decode(data: bytes) -> Messages:
    """The messages Garmin's decoder reads, after it checked the header and the CRC."""
    checker = Decoder(Stream.from_byte_array(bytearray(data)))
    assert checker.is_fit()
    assert checker.check_integrity()
    messages, errors = Decoder(Stream.from_byte_array(bytearray(data))).read()
    assert errors == []
    # The SDK's stubs type enum values by the profile's camelCase names; at run time they are
    # the snake_case strings this test compares with, so the messages are read as plain dicts.
    return cast(Messages, messages)


def developer_fields(message: dict[str, Any], fit: Messages) -> dict[str, Any]:
    """A message's developer fields by the names their field descriptions give them."""
    names = {d["key"]: d["field_name"] for d in fit["field_description_mesgs"]}
    return {names[key]: value for key, value in message.get("developer_fields", {}).items()}


def check_matches_record(record: WorkoutRecord, fit: Messages) -> None:
    totals = expected_totals(record)
    directions = expected_lap_directions(record)
    (file_id,) = fit["file_id_mesgs"]
    assert file_id["type"] == "activity"
    (session,) = fit["session_mesgs"]
    (activity,) = fit["activity_mesgs"]
    assert activity["num_sessions"] == 1
    assert session["start_time"] == record.started_at.replace(microsecond=0) + timedelta(
        seconds=round(record.started_at.microsecond / 1e6)
    )
    assert session["total_elapsed_time"] == pytest.approx(totals.duration_s, abs=TIME_STEP_S)
    assert session["total_distance"] == pytest.approx(totals.distance_m, abs=DISTANCE_STEP_M)
    assert session.get("total_calories") == totals.kcal
    distances = developer_fields(session, fit)
    assert distances["forward_distance"] == pytest.approx(totals.distance_forward_m, rel=1e-6)
    assert distances["backward_distance"] == pytest.approx(totals.distance_backward_m, rel=1e-6)

    laps = fit["lap_mesgs"]
    assert session["num_laps"] == len(laps) == len(directions)
    n = len(laps)
    assert sum(lap["total_elapsed_time"] for lap in laps) == pytest.approx(
        totals.duration_s, abs=TIME_STEP_S * n
    )
    assert sum(lap["total_distance"] for lap in laps) == pytest.approx(
        totals.distance_m, abs=DISTANCE_STEP_M * n
    )
    if totals.kcal is None:
        assert all("total_calories" not in lap for lap in laps)
    else:
        assert sum(lap["total_calories"] for lap in laps) == totals.kcal
    steps = {step["message_index"]: step for step in fit.get("workout_step_mesgs", [])}
    for lap, direction in zip(laps, directions, strict=True):
        if direction is None:
            assert "direction" not in developer_fields(lap, fit)
            continue
        assert developer_fields(lap, fit)["direction"] == direction.value
        assert direction.value in steps[lap["wkt_step_index"]]["wkt_step_name"]
        assert lap["intensity"] == ("rest" if direction is Direction.REST else "active")

    records = fit.get("record_mesgs", [])
    assert len(records) == len(record.samples)
    for message, sample in zip(records, record.samples, strict=True):
        instant = record.started_at + timedelta(seconds=sample.at_s)
        assert abs((message["timestamp"] - instant).total_seconds()) <= 0.5
        assert message["speed"] == pytest.approx(sample.speed_kmh / 3.6, abs=0.0005)
        assert message["distance"] == pytest.approx(
            sample.distance_forward_m + sample.distance_backward_m, abs=DISTANCE_STEP_M / 2
        )
        assert message.get("heart_rate") == heart_rate_shown(sample.heart_rate_bpm)
        if sample.incline_pct is None:
            assert "grade" not in message
        else:
            assert message["grade"] == pytest.approx(sample.incline_pct, abs=0.005)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recorded_workouts())
def test_any_recorded_workout_decodes_and_shows_its_figures(record: WorkoutRecord) -> None:
    check_matches_record(record, decode(workout_to_fit(record)))


def test_an_interval_workout_has_a_lap_per_segment_named_with_its_direction() -> None:
    record = interval_workout()
    fit = decode(workout_to_fit(record))
    check_matches_record(record, fit)
    steps = {s["message_index"]: s["wkt_step_name"] for s in fit["workout_step_mesgs"]}
    names = [steps[lap["wkt_step_index"]] for lap in fit["lap_mesgs"]]
    assert names == [
        "1: forward 3.0 km/h",
        "2: backward 2.0 km/h",
        "3: rest",
        "4: backward 2.5 km/h",
    ]
    # Three segments ran their time; the workout was stopped inside the fourth.
    assert [lap["lap_trigger"] for lap in fit["lap_mesgs"]] == [
        "time",
        "time",
        "time",
        "session_end",
    ]
    (session,) = fit["session_mesgs"]
    assert (session["sport"], session["sub_sport"]) == ("walking", "indoor_walking")
    assert session["start_time"] == STARTED_AT
    assert session["total_distance"] == pytest.approx(25.0 + 16.667 + 3.472, abs=0.01)
    assert session["total_calories"] == 6


def test_a_backward_jog_is_a_treadmill_run() -> None:
    # 5.9 km/h backward is the walk-run transition the calorie model uses (Hreljac et al. 2005).
    record = walk(((Direction.BACKWARD, 20, 6.0, 0.0),))
    (session,) = decode(workout_to_fit(record))["session_mesgs"]
    assert (session["sport"], session["sub_sport"]) == ("running", "treadmill")


def test_the_rest_lap_takes_no_energy_and_the_laps_add_up_to_the_total() -> None:
    record = interval_workout()
    laps = decode(workout_to_fit(record))["lap_mesgs"]
    assert laps[2]["total_calories"] == 0
    assert all(lap["total_calories"] > 0 for i, lap in enumerate(laps) if i != 2)


def test_time_spent_between_segments_stays_in_the_laps() -> None:
    record = walk(((Direction.FORWARD, 10, 3.0, 0.0), (Direction.BACKWARD, 10, 2.0, 0.0)), gap_s=4)
    laps = decode(workout_to_fit(record))["lap_mesgs"]
    assert [lap["total_elapsed_time"] for lap in laps] == [14.0, 10.0]


def test_a_workout_without_heart_rate_has_none_in_its_records() -> None:
    fit = decode(workout_to_fit(interval_workout(heart_rate=False)))
    assert all("heart_rate" not in r for r in fit["record_mesgs"])
    assert "avg_heart_rate" not in fit["session_mesgs"][0]


def test_a_start_time_not_in_utc_is_refused_with_what_to_fix() -> None:
    record = interval_workout()
    naive = WorkoutRecord(**{**_fields(record), "started_at": datetime(2026, 11, 30, 9, 15)})  # noqa: DTZ001
    with pytest.raises(WorkoutExportError, match="aware UTC"):
        workout_to_fit(naive)
    shifted = datetime(2026, 11, 30, 10, 15, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(WorkoutExportError, match="not in UTC"):
        workout_to_fit(WorkoutRecord(**{**_fields(record), "started_at": shifted}))


def _fields(record: WorkoutRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def test_a_second_independent_reader_reads_the_same_figures() -> None:
    """fit-tool shares no code with Garmin's SDK: a scale or a field number that the SDK's
    encoder and decoder got wrong the same way would show here."""
    from fit_tool import FitFile
    from fit_tool.profile.messages.lap_message import LapMessage
    from fit_tool.profile.messages.record_message import RecordMessage
    from fit_tool.profile.messages.session_message import SessionMessage

    record = interval_workout()
    assert record.summary is not None
    messages = [r.message for r in FitFile.from_bytes(workout_to_fit(record)).records]
    (session,) = [m for m in messages if isinstance(m, SessionMessage)]
    laps = [m for m in messages if isinstance(m, LapMessage)]
    records = [m for m in messages if isinstance(m, RecordMessage)]
    assert session.total_elapsed_time == pytest.approx(record.summary.duration_s)
    assert session.total_distance == pytest.approx(
        record.summary.distance_forward_m + record.summary.distance_backward_m, abs=0.01
    )
    assert session.total_calories == 6
    assert [lap.total_distance for lap in laps] == pytest.approx([25.0, 16.67, 0.0, 3.47])
    assert [lap.total_elapsed_time for lap in laps] == [30.0, 30.0, 10.0, 5.0]
    assert [lap.workout_step_index for lap in laps] == [0, 1, 2, 3]
    assert len(records) == len(record.samples)
    for message, sample in zip(records, record.samples, strict=True):
        # fit-tool gives Unix milliseconds.
        at = record.started_at.timestamp() + sample.at_s
        assert message.timestamp == round(at) * 1000
        assert message.speed == pytest.approx(sample.speed_kmh / 3.6, abs=0.0005)
        assert message.distance == pytest.approx(
            sample.distance_forward_m + sample.distance_backward_m, abs=0.005
        )
        assert message.heart_rate == sample.heart_rate_bpm
