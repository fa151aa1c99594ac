"""A profile's models: strict, frozen pydantic classes for the TOML format, what a profile
unrolls to (checked from the repeat counts before anything is unrolled), and `ProfileError`,
which lists every problem of a file with a hint.

A profile is metadata plus a list of segments. A segment walks forward or backward, or rests
(belt paused), for a duration; a repeat block repeats its nested segments. A change of direction
is written as two plain segments: the planner inserts the turn protocol between them.
docs/profiles.md describes the format for people writing profiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from treadmilld.engine.api import Direction, ProfileIssue
from treadmilld.engine.limits import (
    HARD_CAP_BACKWARD_INCLINE_PCT,
    HARD_CAP_BACKWARD_JOG_KMH,
    ProfileLimits,
)
from treadmilld.engine.toml_files import FileProblemsError

PROFILE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Consumer decks top out around 20 km/h and -10..+40 % incline; anything beyond is a typo.
MAX_SEGMENT_SPEED_KMH = 20.0
MIN_SEGMENT_INCLINE_PCT = -10.0
MAX_SEGMENT_INCLINE_PCT = 40.0
MAX_SEGMENT_S = 4 * 3600.0
MAX_REPEAT = 100
# A heart-rate zone is given in % of the rider's maximum heart rate (HRmax). ACSM grades
# intensity from "very light" below 57 % to near-maximal from 96 % (Garber et al. 2011, Med Sci
# Sports Exerc 43:1334, Table 4); a zone outside 40-95 % is a typo.
MIN_ZONE_PCT = 40.0
MAX_ZONE_PCT = 95.0

# What a whole profile may unroll to. Nested repeat blocks multiply (100 x 100 x 100 would be a
# million segments and seconds of CPU to unroll), so both are computed from the repeat counts
# before anything is unrolled. For comparison, the largest built-in profile unrolls to 18
# segments (p1-starter-*) and the longest runs 45 min (forward-walk).
# Segments: the 30-min backward budget in 10-s minimum bouts allows at most 180 backward bouts
# a session, about 360 segments with a walk or rest between each two; 2,000 leaves room for
# forward-only interval work and still plans in milliseconds.
MAX_EXPANDED_SEGMENTS = 2_000
# Time (the segments' own durations; the turns the planner inserts come on top): 4 h is the
# longest one segment may be, 8x the 30-min backward budget and 5x the longest built-in. Longer
# is a typo, such as an extra zero on a repeat count.
MAX_EXPANDED_S = 4 * 3600.0


class Ramp(BaseModel):
    """Change speed and/or incline linearly across the segment, ending at these values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to_speed_kmh: float | None = Field(default=None, gt=0, le=MAX_SEGMENT_SPEED_KMH)
    to_incline_pct: float | None = Field(
        default=None, ge=MIN_SEGMENT_INCLINE_PCT, le=MAX_SEGMENT_INCLINE_PCT
    )

    @model_validator(mode="after")
    def _says_something(self) -> Ramp:
        if self.to_speed_kmh is None and self.to_incline_pct is None:
            raise ValueError("a ramp needs to_speed_kmh, to_incline_pct or both")
        return self


class Segment(BaseModel):
    """Walk forward or backward, or rest with the belt paused, for `duration_s`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Direction
    duration_s: float = Field(gt=0, le=MAX_SEGMENT_S)
    speed_kmh: float = Field(default=0.0, ge=0, le=MAX_SEGMENT_SPEED_KMH)
    incline_pct: float = Field(default=0.0, ge=MIN_SEGMENT_INCLINE_PCT, le=MAX_SEGMENT_INCLINE_PCT)
    ramp: Ramp | None = None
    cue: str | None = Field(default=None, min_length=1, max_length=200)
    # Heart-rate guided: [low, high] in % of the rider's HRmax instead of a fixed speed. The
    # walk starts at speed_kmh and incline_pct; the zone controller then moves the incline
    # between 0 and max_incline_pct first, the speed between min_speed_kmh and max_speed_kmh
    # second (both default to speed_kmh: incline only).
    heart_rate_zone: tuple[float, float] | None = None
    min_speed_kmh: float | None = Field(default=None, gt=0, le=MAX_SEGMENT_SPEED_KMH)
    max_speed_kmh: float | None = Field(default=None, gt=0, le=MAX_SEGMENT_SPEED_KMH)
    max_incline_pct: float | None = Field(default=None, ge=0, le=MAX_SEGMENT_INCLINE_PCT)

    @model_validator(mode="after")
    def _consistent(self) -> Segment:
        if self.direction is Direction.REST:
            if self.speed_kmh != 0 or self.ramp is not None:
                raise ValueError(
                    "a rest segment pauses the belt: remove speed_kmh and ramp from it"
                )
            if self.heart_rate_zone is not None:
                raise ValueError(
                    "a rest segment pauses the belt and holds no heart-rate zone: remove "
                    "heart_rate_zone from it"
                )
            return self
        self._zone_consistent()
        if self.speed_kmh <= 0:
            raise ValueError(
                f"a {self.direction.value} segment needs speed_kmh above 0; "
                'use direction = "rest" to pause the belt'
            )
        if self.direction is Direction.BACKWARD:
            speeds = [
                self.speed_kmh,
                self.ramp.to_speed_kmh if self.ramp else None,
                self.max_speed_kmh,
            ]
            inclines = [
                self.incline_pct,
                self.ramp.to_incline_pct if self.ramp else None,
                self.max_incline_pct,
            ]
            if any(s is not None and s > HARD_CAP_BACKWARD_JOG_KMH for s in speeds):
                raise ValueError(
                    f"backward speed above the {HARD_CAP_BACKWARD_JOG_KMH:g} km/h hard cap; "
                    "lower speed_kmh"
                )
            if any(i is not None and i > HARD_CAP_BACKWARD_INCLINE_PCT for i in inclines):
                raise ValueError(
                    f"backward incline above the {HARD_CAP_BACKWARD_INCLINE_PCT:g} % hard cap; "
                    "lower incline_pct"
                )
        return self

    def _zone_consistent(self) -> None:
        bounds = (self.min_speed_kmh, self.max_speed_kmh, self.max_incline_pct)
        if self.heart_rate_zone is None:
            if any(bound is not None for bound in bounds):
                raise ValueError(
                    "min_speed_kmh, max_speed_kmh and max_incline_pct bound a heart-rate "
                    "zone: add heart_rate_zone = [low, high] or remove them"
                )
            return
        low, high = self.heart_rate_zone
        if not MIN_ZONE_PCT <= low < high <= MAX_ZONE_PCT:
            raise ValueError(
                f"heart_rate_zone [{low:g}, {high:g}] must be [low, high] in % of the rider's "
                f"maximum heart rate, {MIN_ZONE_PCT:g} <= low < high <= {MAX_ZONE_PCT:g}"
            )
        if self.ramp is not None:
            raise ValueError(
                "a heart-rate zone segment is steered by the heart rate: remove its ramp"
            )
        lowest = self.min_speed_kmh if self.min_speed_kmh is not None else self.speed_kmh
        highest = self.max_speed_kmh if self.max_speed_kmh is not None else self.speed_kmh
        if not lowest <= self.speed_kmh <= highest:
            raise ValueError(
                "speed_kmh is where a zone segment starts: it must lie between min_speed_kmh "
                "and max_speed_kmh"
            )
        if self.max_incline_pct is not None and self.incline_pct > self.max_incline_pct:
            raise ValueError(
                "incline_pct is where a zone segment starts: lower it to max_incline_pct or below"
            )

    def zone_speed_bounds(self) -> tuple[float, float]:
        """The speeds a zone segment's controller may use (the start speed by default)."""
        low = self.min_speed_kmh if self.min_speed_kmh is not None else self.speed_kmh
        high = self.max_speed_kmh if self.max_speed_kmh is not None else self.speed_kmh
        return low, high


def _segment_kind(item: Any) -> str:
    if isinstance(item, dict):
        return "repeat" if "repeat" in item else "segment"
    return "repeat" if isinstance(item, RepeatBlock) else "segment"


class RepeatBlock(BaseModel):
    """Its nested segments, `repeat` times in a row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repeat: int = Field(ge=1, le=MAX_REPEAT)
    segments: list[SegmentItem] = Field(min_length=1)


SegmentItem = Annotated[
    Annotated[Segment, Tag("segment")] | Annotated[RepeatBlock, Tag("repeat")],
    Discriminator(_segment_kind),
]
RepeatBlock.model_rebuild()


@dataclass(frozen=True, slots=True)
class FlatSegment:
    """One segment as it will run, after repeat blocks are unrolled."""

    segment: Segment
    origin: str  # where it came from, e.g. "segments[1] (repeat 2/8) > segments[0]"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROFILE_NAME_PATTERN)
    title: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1)
    suits: str = Field(min_length=1)
    sessions_per_week: int | None = Field(default=None, ge=1, le=14)
    sources: list[str] = Field(min_length=1)
    clinical: bool = False
    limits: ProfileLimits = Field(default_factory=ProfileLimits)
    segments: list[SegmentItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounded_and_moves_at_some_point(self) -> Profile:
        # Neither check unrolls the repeat blocks, so refusing a hostile profile costs microseconds.
        too_long = expansion_issues(self.segments, file=f"profile {self.name!r}")
        if too_long:
            raise ProfileTooLongError(too_long)
        if not _moves(self.segments):
            raise ValueError("the profile only rests; add a forward or backward segment")
        if self.limits.hr_max_bpm is not None:
            raise ValueError(
                "limits.hr_max_bpm is a rider's own maximum heart rate, not a profile's: remove "
                "it and give a ceiling as max_heart_rate_pct or max_heart_rate_bpm"
            )
        return self

    def expansion(self) -> Expansion:
        """What the profile unrolls to, computed without unrolling it."""
        return _expansion(self.segments)

    def flat_segments(self) -> list[FlatSegment]:
        """The segments as they will run, repeat blocks unrolled. Raises `ProfileTooLongError`
        before unrolling anything if the profile exceeds `MAX_EXPANDED_SEGMENTS` or
        `MAX_EXPANDED_S`: validation refuses such a profile, but `model_construct` and
        `model_copy(update=...)` skip validation."""
        too_long = expansion_issues(self.segments, file=f"profile {self.name!r}")
        if too_long:
            raise ProfileTooLongError(too_long)
        return list(_flatten(self.segments, ""))


def _moves(items: Sequence[Segment | RepeatBlock]) -> bool:
    return any(
        item.direction is not Direction.REST if isinstance(item, Segment) else _moves(item.segments)
        for item in items
    )


def _flatten(items: Sequence[Segment | RepeatBlock], prefix: str) -> Iterator[FlatSegment]:
    for index, item in enumerate(items):
        here = f"{prefix}segments[{index}]"
        if isinstance(item, Segment):
            yield FlatSegment(segment=item, origin=here)
        else:
            for round_no in range(1, item.repeat + 1):
                yield from _flatten(item.segments, f"{here} (repeat {round_no}/{item.repeat}) > ")


@dataclass(frozen=True, slots=True)
class Expansion:
    """What a list of segments unrolls to."""

    segments: int
    seconds: float  # the segments' own durations; the planner's turns come on top


def _expansion(items: Sequence[Segment | RepeatBlock]) -> Expansion:
    # Arithmetic on the repeat counts: linear in the size of the file, not of the unrolled list.
    segments = 0
    seconds = 0.0
    for item in items:
        if isinstance(item, Segment):
            segments += 1
            seconds += item.duration_s
        else:
            inner = _expansion(item.segments)
            segments += item.repeat * inner.segments
            seconds += item.repeat * inner.seconds
    return Expansion(segments, seconds)


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "longer than a float can count"
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def expansion_issues(items: Sequence[Segment | RepeatBlock], *, file: str) -> list[ProfileIssue]:
    """Problems with what `items` (a profile's top-level segments) would unroll to, found from
    the repeat counts alone. Each names the top-level item where the running total crosses the
    limit: for a hostile file that is the repeat block to fix."""
    per_item = [_expansion([item]) for item in items]
    total = Expansion(sum(e.segments for e in per_item), sum(e.seconds for e in per_item))
    issues: list[ProfileIssue] = []
    if total.segments > MAX_EXPANDED_SEGMENTS:
        index = _crossing([e.segments for e in per_item], MAX_EXPANDED_SEGMENTS)
        item = items[index]
        if isinstance(item, RepeatBlock):
            issues.append(
                ProfileIssue(
                    file,
                    f"segments[{index}].repeat",
                    f"the profile would unroll to {total.segments:,} segments, more than the "
                    f"{MAX_EXPANDED_SEGMENTS:,} a profile may have; this repeat block unrolls to "
                    f"{per_item[index].segments:,} of them (repeat {item.repeat} x "
                    f"{_expansion(item.segments).segments:,} segments)",
                    "lower `repeat` here or in the repeat blocks nested in it (nested counts "
                    "multiply), or split the workout into several profiles",
                )
            )
        else:
            issues.append(
                ProfileIssue(
                    file,
                    "segments",
                    f"the profile would unroll to {total.segments:,} segments, more than the "
                    f"{MAX_EXPANDED_SEGMENTS:,} a profile may have",
                    "write fewer segments, or split the workout into several profiles",
                )
            )
    if total.seconds > MAX_EXPANDED_S:
        index = _crossing([e.seconds for e in per_item], MAX_EXPANDED_S)
        item = items[index]
        limit = f"the {_hms(MAX_EXPANDED_S)} (h:mm:ss) a profile may last"
        if isinstance(item, RepeatBlock):
            issues.append(
                ProfileIssue(
                    file,
                    f"segments[{index}].repeat",
                    f"the profile's segments would last {_hms(total.seconds)}, more than {limit}; "
                    f"this repeat block lasts {_hms(per_item[index].seconds)} of it (repeat "
                    f"{item.repeat} x {_hms(_expansion(item.segments).seconds)})",
                    "lower `repeat` here or in the repeat blocks nested in it (nested counts "
                    "multiply), shorten the segments, or split the workout into several profiles",
                )
            )
        else:
            issues.append(
                ProfileIssue(
                    file,
                    f"segments[{index}].duration_s",
                    f"the profile's segments would last {_hms(total.seconds)}, more than {limit}; "
                    "the total crosses the limit at this segment",
                    "shorten the segments, or split the workout into several profiles",
                )
            )
    return issues


def _crossing(sizes: Sequence[float], limit: float) -> int:
    """Index of the item at which the running total of `sizes` first exceeds `limit`."""
    running = 0.0
    for index, size in enumerate(sizes):
        running += size
        if running > limit:
            return index
    raise AssertionError("the total exceeds the limit, so some item crosses it")


class ProfileError(FileProblemsError[ProfileIssue]):
    """A profile file is invalid; `issues` lists every problem found, each with a hint."""

    noun = "profile"


class ProfileTooLongError(ProfileError):
    """The profile's repeat blocks would unroll past `MAX_EXPANDED_SEGMENTS` segments or
    `MAX_EXPANDED_S` seconds. Raised from the repeat counts, before anything is unrolled."""
