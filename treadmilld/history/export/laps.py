"""The one reading of a `WorkoutRecord` that every export format shares: its laps and totals.

A lap is a segment. Laps tile the workout without gaps, so every format's laps add up to the
workout's totals (TCX has no session totals of its own: Garmin Connect and Strava add up its
laps): lap 0 starts at the workout's start, lap i at segment i's start, and each lap ends where
the next begins, the last at the workout's end. Time between two segments (waiting for a turn's
confirmation, a pause) is therefore in the lap of the segment before it. A lap's distance is
the recorded cumulative distance (forward plus backward) at its end less that at its start.

The record carries kcal only for the whole workout. A lap's share is the calorie model's energy
for that lap's samples (`treadmilld.engine.calories.mets`; body weight cancels out of a share),
rounded to whole kcal by largest remainder so the laps add up to the rounded total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from treadmilld.engine.api import Direction
from treadmilld.engine.calories import BACKWARD_JOG_FROM_KMH, FORWARD_RUN_FROM_KMH, mets
from treadmilld.history.records import Sample, SegmentRecord, WorkoutRecord

KMH_PER_M_S = 3.6


class WorkoutExportError(ValueError):
    """A record that cannot be exported as it stands; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Totals:
    """The workout as a whole, from its summary; from its samples when it has none (a workout
    still running, or interrupted by a power loss before its summary was written)."""

    duration_s: float
    distance_forward_m: float
    distance_backward_m: float
    kcal: int | None  # None: no summary, so no energy figure; formats leave it out or write 0

    @property
    def distance_m(self) -> float:
        return self.distance_forward_m + self.distance_backward_m


@dataclass(frozen=True, slots=True)
class Lap:
    index: int  # the segment's index; 0 for the one lap of a workout with no segment
    segment: SegmentRecord | None  # None only for a workout that recorded no segment
    start_s: float
    end_s: float
    distance_m: float
    kcal: int | None
    samples: tuple[Sample, ...]  # the samples whose `at_s` falls in [start_s, end_s)
    ended_by_workout_end: bool  # the last lap, cut by the workout's end rather than its plan

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def direction(self) -> Direction | None:
        return None if self.segment is None else self.segment.direction

    @property
    def completed(self) -> bool:
        return self.segment is not None and self.segment.completed

    @property
    def is_rest(self) -> bool:
        return self.direction is Direction.REST

    @property
    def label(self) -> str:
        """What the lap was, for formats that can show a name or a note: "3: backward
        2.0 km/h", "4: rest"."""
        if self.segment is None:
            return "workout"
        if self.segment.direction is Direction.REST:
            return f"{self.segment.index + 1}: rest"
        return (
            f"{self.segment.index + 1}: {self.segment.direction.value} "
            f"{self.segment.planned_speed_kmh:.1f} km/h"
        )


def check_exportable(record: WorkoutRecord) -> None:
    if record.started_at.tzinfo is None or record.started_at.utcoffset() != timedelta(0):
        raise WorkoutExportError(
            f"workout {record.workout_id} has started_at {record.started_at.isoformat()}, not "
            "in UTC; the recorder must store started_at as an aware UTC datetime"
        )


def wall_time(record: WorkoutRecord, at_s: float) -> datetime:
    """The UTC instant `at_s` seconds into the workout."""
    return record.started_at.astimezone(UTC) + timedelta(seconds=at_s)


def iso_utc(instant: datetime) -> str:
    """`instant` as ISO 8601 UTC with milliseconds, e.g. 2026-11-30T12:00:01.250Z."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# A heart rate every format can carry: FIT's uint8 keeps 255 for "invalid", TCX's positiveByte
# starts at 1, and 0 is a strap with no reading.
_HEART_RATE_RANGE = range(1, 255)


def heart_rates(samples: Iterable[Sample]) -> list[int]:
    return [bpm for s in samples if (bpm := heart_rate(s)) is not None]


def heart_rate(sample: Sample) -> int | None:
    bpm = sample.heart_rate_bpm
    return bpm if bpm is not None and bpm in _HEART_RATE_RANGE else None


def speed_m_s(sample: Sample) -> float:
    return max(sample.speed_kmh, 0.0) / KMH_PER_M_S


def distance_at(samples: tuple[Sample, ...], at_s: float) -> float:
    """Cumulative distance (both directions) recorded at `at_s`: the last sample's at or before
    it, 0 before the first sample."""
    distance = 0.0
    for sample in samples:
        if sample.at_s > at_s:
            break
        distance = sample.distance_forward_m + sample.distance_backward_m
    return distance


def totals(record: WorkoutRecord) -> Totals:
    if record.summary is not None:
        summary = record.summary
        return Totals(
            duration_s=summary.duration_s,
            distance_forward_m=summary.distance_forward_m,
            distance_backward_m=summary.distance_backward_m,
            kcal=_round_half_up(summary.kcal),
        )
    ends = [s.at_s for s in record.samples[-1:]]
    for segment in record.segments:
        ends.append(segment.started_at_s)
        if segment.ended_at_s is not None:
            ends.append(segment.ended_at_s)
    last = record.samples[-1] if record.samples else None
    return Totals(
        duration_s=max(ends, default=0.0),
        distance_forward_m=0.0 if last is None else last.distance_forward_m,
        distance_backward_m=0.0 if last is None else last.distance_backward_m,
        kcal=None,
    )


def is_running(record: WorkoutRecord) -> bool:
    """Whether any second was at running pace for its direction: the calorie model's walk-run
    transitions (ACSM 8.0 km/h forward; 5.9 km/h backward, Hreljac et al. 2005)."""
    for sample in record.samples:
        if sample.direction is Direction.BACKWARD and sample.speed_kmh >= BACKWARD_JOG_FROM_KMH:
            return True
        if sample.direction is Direction.FORWARD and sample.speed_kmh >= FORWARD_RUN_FROM_KMH:
            return True
    return False


def laps(record: WorkoutRecord) -> tuple[Lap, ...]:
    """One lap per segment (one for the whole workout when it recorded no segment), tiling
    [0, duration]."""
    check_exportable(record)
    whole = totals(record)
    end = whole.duration_s
    ordered = sorted(record.segments, key=lambda s: s.index)
    segments: list[SegmentRecord | None] = list(ordered) if ordered else [None]
    # A boundary never goes back in time nor past the end, whatever the record says.
    bounds = [0.0]
    for segment in ordered[1:]:
        bounds.append(min(max(segment.started_at_s, bounds[-1]), end))
    bounds.append(max(end, bounds[-1]))
    weights = [0.0] * len(segments)
    grouped: list[list[Sample]] = [[] for _ in segments]
    for position, sample in enumerate(record.samples):
        lap_no = _lap_of(bounds, sample.at_s)
        grouped[lap_no].append(sample)
        following = record.samples[position + 1] if position + 1 < len(record.samples) else None
        weights[lap_no] += _energy_weight(sample, following, end)
    kcal = _apportion(whole.kcal, weights, [b - a for a, b in pairwise(bounds)])
    # Lap 0 counts from nothing and the last lap to the total, so the laps add up to it.
    inner = [distance_at(record.samples, b) for b in bounds[1:-1]]
    distances = [0.0, *inner, whole.distance_m]
    return tuple(
        Lap(
            index=0 if segment is None else segment.index,
            segment=segment,
            start_s=bounds[i],
            end_s=bounds[i + 1],
            distance_m=max(distances[i + 1] - distances[i], 0.0),
            kcal=None if kcal is None else kcal[i],
            samples=tuple(grouped[i]),
            ended_by_workout_end=i == len(segments) - 1,
        )
        for i, segment in enumerate(segments)
    )


def _lap_of(bounds: list[float], at_s: float) -> int:
    """The lap whose [start, end) holds `at_s`; the last lap takes its end and anything after
    it, the first anything before 0."""
    last = len(bounds) - 2
    for lap_no in range(last, 0, -1):
        if at_s >= bounds[lap_no]:
            return lap_no
    return 0


def _energy_weight(sample: Sample, following: Sample | None, end_s: float) -> float:
    """The calorie model's energy (per kg, per MET-second) of the time from `sample` to the
    next, at `sample`'s measured speed and grade, as `WorkoutTotals` integrates it."""
    until = following.at_s if following is not None else end_s
    dt = max(until - sample.at_s, 0.0)
    if sample.speed_kmh <= 0 or dt <= 0:
        return 0.0
    facing = Direction.BACKWARD if sample.direction is Direction.BACKWARD else Direction.FORWARD
    return mets(sample.speed_kmh, sample.incline_pct or 0.0, facing) * dt


def _apportion(total: int | None, weights: list[float], fallback: list[float]) -> list[int] | None:
    """`total` split in proportion to `weights` (to `fallback` when they are all 0), in whole
    numbers that add up to `total` (largest remainder)."""
    if total is None:
        return None
    if sum(weights) <= 0:
        weights = fallback if sum(fallback) > 0 else [1.0] * len(weights)
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _round_half_up(value: float) -> int:
    return max(math.floor(value + 0.5), 0)
