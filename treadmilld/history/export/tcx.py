"""A recorded workout as a TCX file: Garmin's Training Center Database v2 schema
(http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2), with the per-point speed in
Garmin's Activity Extension v2 (`TPX/Speed`), as Garmin Connect and Strava read it.

TCX has no session totals: readers add up the laps, so the laps tile the workout (see
`laps.py`). `Sport` is `Running` when any second was at running pace, else `Other` (the schema
knows only Running, Biking and Other). A lap's direction is in its `Notes` ("2: backward
2.0 km/h") and its `Intensity` (`Resting` for a rest segment, else `Active`).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, indent, tostring

from treadmilld.history.export.laps import (
    Lap,
    heart_rate,
    heart_rates,
    is_running,
    iso_utc,
    laps,
    speed_m_s,
    wall_time,
)
from treadmilld.history.records import Sample, WorkoutRecord

TCX_NAMESPACE = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
ACTIVITY_EXTENSION_NAMESPACE = "http://www.garmin.com/xmlschemas/ActivityExtension/v2"
_XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA_LOCATION = f"{TCX_NAMESPACE} http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"
# Tags are written as literal names under declared prefixes, as Garmin Connect's own exports
# are (TCX unprefixed, the extension as `ns3:`): some readers look for unprefixed TCX tags.
_AX = "ns3:"


def workout_to_tcx(record: WorkoutRecord) -> bytes:
    """The workout as the UTF-8 bytes of a TCX document."""
    root = Element(
        "TrainingCenterDatabase",
        {
            "xmlns": TCX_NAMESPACE,
            "xmlns:ns3": ACTIVITY_EXTENSION_NAMESPACE,
            "xmlns:xsi": _XSI_NAMESPACE,
            "xsi:schemaLocation": _SCHEMA_LOCATION,
        },
    )
    activities = SubElement(root, "Activities")
    activity = SubElement(
        activities, "Activity", Sport="Running" if is_running(record) else "Other"
    )
    _text(activity, "Id", iso_utc(record.started_at))
    for lap in laps(record):
        _lap(activity, record, lap)
    _text(activity, "Notes", f"treadmilld: {record.profile_name}, {record.outcome.value}")
    indent(root)
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def _lap(activity: Element, record: WorkoutRecord, lap: Lap) -> None:
    element = SubElement(activity, "Lap", StartTime=iso_utc(wall_time(record, lap.start_s)))
    # The schema's order: TotalTimeSeconds, DistanceMeters, MaximumSpeed, Calories,
    # AverageHeartRateBpm, MaximumHeartRateBpm, Intensity, Cadence, TriggerMethod, Track, Notes,
    # Extensions.
    _text(element, "TotalTimeSeconds", _number(lap.duration_s))
    _text(element, "DistanceMeters", _number(lap.distance_m))
    if lap.samples:
        _text(element, "MaximumSpeed", _number(max(speed_m_s(s) for s in lap.samples)))
    # Required by the schema; a workout without a summary has no energy figure: 0.
    _text(element, "Calories", str(lap.kcal or 0))
    rates = heart_rates(lap.samples)
    if rates:
        _heart_rate(element, "AverageHeartRateBpm", round(sum(rates) / len(rates)))
        _heart_rate(element, "MaximumHeartRateBpm", max(rates))
    _text(element, "Intensity", "Resting" if lap.is_rest else "Active")
    _text(element, "TriggerMethod", "Time" if lap.completed else "Manual")
    if lap.samples:
        track = SubElement(element, "Track")
        for sample in lap.samples:
            _trackpoint(track, record, sample)
    _text(element, "Notes", lap.label)
    if lap.duration_s > 0:
        extensions = SubElement(element, "Extensions")
        lx = SubElement(extensions, f"{_AX}LX")
        SubElement(lx, f"{_AX}AvgSpeed").text = _number(lap.distance_m / lap.duration_s)


def _trackpoint(track: Element, record: WorkoutRecord, sample: Sample) -> None:
    point = SubElement(track, "Trackpoint")
    _text(point, "Time", iso_utc(wall_time(record, sample.at_s)))
    _text(point, "DistanceMeters", _number(sample.distance_forward_m + sample.distance_backward_m))
    bpm = heart_rate(sample)
    if bpm is not None:
        _heart_rate(point, "HeartRateBpm", bpm)
    extensions = SubElement(point, "Extensions")
    tpx = SubElement(extensions, f"{_AX}TPX")
    SubElement(tpx, f"{_AX}Speed").text = _number(speed_m_s(sample))


def _heart_rate(parent: Element, name: str, bpm: int) -> None:
    _text(SubElement(parent, name), "Value", str(bpm))


def _text(parent: Element, name: str, text: str) -> Element:
    child = SubElement(parent, name)
    child.text = text
    return child


def _number(value: float) -> str:
    """Millimetres, milliseconds: finer than any deck measures, and short."""
    return f"{value:.3f}"
