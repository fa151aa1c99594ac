"""Every TCX export is valid against Garmin's Training Center Database v2 schema, and its laps
and trackpoints show the recorded workout (readers take a TCX activity's totals from its laps)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings

from tests.history.expected import expected_lap_directions, expected_totals, heart_rate_shown
from tests.history.workouts import interval_workout, recorded_workouts, walk
from treadmilld.engine.api import Direction
from treadmilld.history.export import workout_to_tcx
from treadmilld.history.records import WorkoutRecord

TCX_XSD = Path(__file__).parent / "data" / "TrainingCenterDatabasev2.xsd"
NS = {
    "tc": "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2",
    "ax": "http://www.garmin.com/xmlschemas/ActivityExtension/v2",
}
# TCX figures are written to the millimetre and the millisecond.
STEP = 0.0005


@cache
def tcx_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(TCX_XSD)


def valid_activity(data: bytes) -> ET.Element:
    """The one Activity of a TCX document, after the document was validated."""
    text = data.decode("utf-8")
    tcx_schema().validate(text)
    root = ET.fromstring(text)
    (activity,) = root.findall("tc:Activities/tc:Activity", NS)
    return activity


def number(element: ET.Element, path: str) -> float:
    found = element.find(path, NS)
    assert found is not None, path
    assert found.text is not None, path
    return float(found.text)


def instant(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def check_matches_record(record: WorkoutRecord, activity: ET.Element) -> None:
    totals = expected_totals(record)
    directions = expected_lap_directions(record)
    laps = activity.findall("tc:Lap", NS)
    assert len(laps) == len(directions)
    n = len(laps)
    assert instant(activity.findtext("tc:Id", namespaces=NS)) == record.started_at.replace(
        microsecond=record.started_at.microsecond // 1000 * 1000
    )
    assert sum(number(lap, "tc:TotalTimeSeconds") for lap in laps) == pytest.approx(
        totals.duration_s, abs=STEP * n
    )
    assert sum(number(lap, "tc:DistanceMeters") for lap in laps) == pytest.approx(
        totals.distance_m, abs=STEP * n
    )
    assert sum(int(number(lap, "tc:Calories")) for lap in laps) == (totals.kcal or 0)
    for lap, direction in zip(laps, directions, strict=True):
        notes = lap.findtext("tc:Notes", namespaces=NS) or ""
        intensity = lap.findtext("tc:Intensity", namespaces=NS)
        if direction is not None:
            assert direction.value in notes
        assert intensity == ("Resting" if direction is Direction.REST else "Active")

    points = activity.findall("tc:Lap/tc:Track/tc:Trackpoint", NS)
    assert len(points) == len(record.samples)
    for point, sample in zip(points, record.samples, strict=True):
        at = record.started_at + timedelta(seconds=sample.at_s)
        shown = instant(point.findtext("tc:Time", namespaces=NS))
        assert abs((shown - at).total_seconds()) < 0.001
        assert number(point, "tc:DistanceMeters") == pytest.approx(
            sample.distance_forward_m + sample.distance_backward_m, abs=STEP
        )
        assert number(point, "tc:Extensions/ax:TPX/ax:Speed") == pytest.approx(
            sample.speed_kmh / 3.6, abs=STEP
        )
        bpm = point.findtext("tc:HeartRateBpm/tc:Value", namespaces=NS)
        assert (None if bpm is None else int(bpm)) == heart_rate_shown(sample.heart_rate_bpm)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recorded_workouts())
def test_any_recorded_workout_is_valid_tcx_and_shows_its_figures(record: WorkoutRecord) -> None:
    check_matches_record(record, valid_activity(workout_to_tcx(record)))


def test_an_interval_workout_has_a_lap_per_segment_noted_with_its_direction() -> None:
    record = interval_workout()
    activity = valid_activity(workout_to_tcx(record))
    check_matches_record(record, activity)
    laps = activity.findall("tc:Lap", NS)
    assert [lap.findtext("tc:Notes", namespaces=NS) for lap in laps] == [
        "1: forward 3.0 km/h",
        "2: backward 2.0 km/h",
        "3: rest",
        "4: backward 2.5 km/h",
    ]
    # The first three ran their planned time; the fourth was cut by the stop.
    assert [lap.findtext("tc:TriggerMethod", namespaces=NS) for lap in laps] == [
        "Time",
        "Time",
        "Time",
        "Manual",
    ]
    assert activity.get("Sport") == "Other"
    assert [int(number(lap, "tc:Calories")) for lap in laps][2] == 0


def test_a_backward_jog_is_a_run() -> None:
    record = walk(((Direction.BACKWARD, 20, 6.0, 0.0),))
    assert valid_activity(workout_to_tcx(record)).get("Sport") == "Running"


def test_a_workout_interrupted_before_its_summary_still_validates_with_no_energy() -> None:
    interrupted = walk(
        ((Direction.FORWARD, 30, 3.0, 0.0), (Direction.BACKWARD, 30, 2.0, 1.0)),
        stopped_after_s=40.0,
        kcal=None,
    )
    activity = valid_activity(workout_to_tcx(interrupted))
    check_matches_record(interrupted, activity)
    assert [number(lap, "tc:Calories") for lap in activity.findall("tc:Lap", NS)] == [0, 0]


def test_the_schema_refuses_a_lap_without_calories() -> None:
    """The schema kept in tests/history/data is Garmin's strict one, not a loosened copy."""
    activity_text = workout_to_tcx(interval_workout()).decode("utf-8")
    root = ET.fromstring(activity_text)
    lap = root.find("tc:Activities/tc:Activity/tc:Lap", NS)
    assert lap is not None
    calories = lap.find("tc:Calories", NS)
    assert calories is not None
    lap.remove(calories)
    assert not tcx_schema().is_valid(ET.tostring(root, encoding="unicode"))
