"""The profile format: TOML files validated by strict pydantic models.

A profile is metadata plus a list of segments. A segment walks forward or backward, or rests
(belt paused), for a duration; a repeat block repeats its nested segments. A change of direction
is written as two plain segments: the planner inserts the turn protocol between them.
docs/profiles.md describes the format for people writing profiles.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from treadmilld.engine.api import Direction, ProfileIssue
from treadmilld.engine.limits import (
    HARD_CAP_BACKWARD_INCLINE_PCT,
    HARD_CAP_BACKWARD_JOG_KMH,
    ProfileLimits,
)

PROFILE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Consumer decks top out around 20 km/h and -10..+40 % incline; anything beyond is a typo.
MAX_SEGMENT_SPEED_KMH = 20.0
MIN_SEGMENT_INCLINE_PCT = -10.0
MAX_SEGMENT_INCLINE_PCT = 40.0
MAX_SEGMENT_S = 4 * 3600.0
MAX_REPEAT = 100

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

    @model_validator(mode="after")
    def _consistent(self) -> Segment:
        if self.direction is Direction.REST:
            if self.speed_kmh != 0 or self.ramp is not None:
                raise ValueError(
                    "a rest segment pauses the belt: remove speed_kmh and ramp from it"
                )
            return self
        if self.speed_kmh <= 0:
            raise ValueError(
                f"a {self.direction.value} segment needs speed_kmh above 0; "
                'use direction = "rest" to pause the belt'
            )
        if self.direction is Direction.BACKWARD:
            speeds = [self.speed_kmh, self.ramp.to_speed_kmh if self.ramp else None]
            inclines = [self.incline_pct, self.ramp.to_incline_pct if self.ramp else None]
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


# ---------------------------------------------------------------------------------------------
# Loading, with every error of a file collected and explained.


class ProfileError(ValueError):
    """A profile file is invalid; `issues` lists every problem found, each with a hint."""

    def __init__(self, issues: Sequence[ProfileIssue]) -> None:
        self.issues = tuple(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid profile ({len(self.issues)} problem(s)):\n{lines}")


class ProfileTooLongError(ProfileError):
    """The profile's repeat blocks would unroll past `MAX_EXPANDED_SEGMENTS` segments or
    `MAX_EXPANDED_S` seconds. Raised from the repeat counts, before anything is unrolled."""


_MODELS_BY_TAG: dict[str, type[BaseModel]] = {"segment": Segment, "repeat": RepeatBlock}
_MODELS_BY_KEY: dict[str, type[BaseModel]] = {"limits": ProfileLimits, "ramp": Ramp}


def _field_path(loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel]]:
    """Human path for a pydantic location, and the model that holds its last element."""
    parts: list[str] = []
    model: type[BaseModel] = Profile
    previous_was_index = False
    for element in loc:
        if isinstance(element, int):
            parts.append(f"[{element}]")
            previous_was_index = True
            continue
        if previous_was_index and element in _MODELS_BY_TAG:
            model = _MODELS_BY_TAG[element]
            previous_was_index = False
            continue
        previous_was_index = False
        if element in _MODELS_BY_KEY:
            model = _MODELS_BY_KEY[element]
        parts.append(f".{element}" if parts else element)
    return "".join(parts) or "(profile)", model


def _parent_model(loc: tuple[int | str, ...]) -> type[BaseModel]:
    return _field_path(loc[:-1])[1] if loc else Profile


_HINTS_BY_TYPE: dict[str, str] = {
    "greater_than": "bring the value inside the allowed range",
    "greater_than_equal": "bring the value inside the allowed range",
    "less_than": "bring the value inside the allowed range",
    "less_than_equal": "bring the value inside the allowed range",
    "float_parsing": "write a plain number without quotes or units (units are in the field name)",
    "float_type": "write a plain number without quotes or units (units are in the field name)",
    "int_parsing": "write a whole number without quotes",
    "int_type": "write a whole number without quotes",
    "int_from_float": "write a whole number without quotes",
    "string_type": "write text in double quotes",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "list_type": 'write a list, e.g. ["first", "second"]',
    "string_pattern_mismatch": "use lowercase letters, digits and dashes, e.g. my-retro-walk",
    "too_short": "it must not be empty",
    "string_too_short": "it must not be empty",
    "value_error": "see the message; docs/profiles.md describes each rule",
}


def _hint(error: ErrorDetails) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        allowed = sorted(_parent_model(loc).model_fields)
        close = difflib.get_close_matches(name, allowed, n=1)
        suggestion = f"did you mean `{close[0]}`? " if close else ""
        return f"{suggestion}remove it or use one of: {', '.join(allowed)}"
    if kind == "missing":
        return f"add `{name} = ...` here (see docs/profiles.md for its meaning)"
    if kind == "enum":
        expected = (error.get("ctx") or {}).get("expected", "forward, backward, rest")
        return f"use one of: {expected}"
    return _HINTS_BY_TYPE.get(kind, "see docs/profiles.md")


def _issues_from_validation(file: str, error: ValidationError) -> list[ProfileIssue]:
    issues: list[ProfileIssue] = []
    for detail in error.errors(include_url=False):
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, ProfileTooLongError):
            # It already names the repeat block; only the file was unknown to the model.
            issues.extend(replace(issue, file=file) for issue in cause.issues)
            continue
        field_path, _ = _field_path(tuple(detail["loc"]))
        message = detail["msg"].removeprefix("Value error, ")
        issues.append(ProfileIssue(file, field_path, message, _hint(detail)))
    return issues


def parse_profile(text: str, *, file: str, expected_name: str | None = None) -> Profile:
    """Parse and validate one profile; raises `ProfileError` listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(
            [ProfileIssue(file, "(toml)", str(error), "fix the TOML syntax at the place shown")]
        ) from error
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as error:
        raise ProfileError(_issues_from_validation(file, error)) from error
    if expected_name is not None and profile.name != expected_name:
        raise ProfileError(
            [
                ProfileIssue(
                    file,
                    "name",
                    f"name {profile.name!r} differs from the file name {expected_name!r}",
                    f'rename the file to {profile.name}.toml or set name = "{expected_name}"',
                )
            ]
        )
    return profile


def load_profile(path: Path) -> Profile:
    """Load `path`; the profile's name must match the file name (without `.toml`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(
            [ProfileIssue(str(path), "(file)", str(error), "check the path and that it is UTF-8")]
        ) from error
    return parse_profile(text, file=str(path), expected_name=path.stem)


# ---------------------------------------------------------------------------------------------
# Writing a profile given as a JSON object (an MQTT upload) as a TOML file.

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    # TOML basic strings forbid raw control characters (DEL included) and lone surrogates.
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            raise ValueError("text with a lone surrogate cannot be written")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_scalar(value: object) -> str | None:
    """TOML for a bool, number or string; None for anything else. Raises ValueError for
    what TOML cannot hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    return None


def _toml_value(value: object, where: str, issues: list[ProfileIssue], file: str) -> str:
    try:
        scalar = _toml_scalar(value)
    except ValueError as error:
        issues.append(ProfileIssue(file, where, str(error), "write a plain number or text"))
        return '""'
    if scalar is not None:
        return scalar
    parts: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if item is not None:  # null means "left out", as TOML has no null
                text = _toml_value(item, _join(where, str(key)), issues, file)
                parts.append(f"{_toml_key(str(key))} = {text}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if item is None:
                issues.append(_null_issue(file, f"{where}[{index}]"))
            else:
                parts.append(_toml_value(item, f"{where}[{index}]", issues, file))
        return "[" + ", ".join(parts) + "]"
    issues.append(
        ProfileIssue(
            file, where, f"{type(value).__name__} is not a TOML value", "see docs/profiles.md"
        )
    )
    return '""'


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _null_issue(file: str, where: str) -> ProfileIssue:
    return ProfileIssue(file, where, "a list cannot hold null", "remove the null from the list")


def _toml_table(
    data: Mapping[str, object],
    header: str,
    where: str,
    out: tuple[list[str], list[ProfileIssue], str],
) -> None:
    """Plain values first, then sub-tables and arrays of tables, as TOML requires. `header` is
    the TOML table path (`segments.segments`), `where` the field path for problems
    (`segments[1].segments`)."""
    lines, issues, file = out
    tables: list[tuple[str, object]] = []
    for key, value in data.items():
        if value is None:
            continue  # null means "left out", as TOML has no null
        if isinstance(value, Mapping) or (
            isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value)
        ):
            tables.append((key, value))
        else:
            text = _toml_value(value, _join(where, key), issues, file)
            lines.append(f"{_toml_key(key)} = {text}")
    for key, value in tables:
        path = _join(header, _toml_key(key))
        if isinstance(value, Mapping):
            lines.append(f"\n[{path}]")
            _toml_table(value, path, _join(where, key), out)
            continue
        assert isinstance(value, list)
        for index, item in enumerate(value):
            lines.append(f"\n[[{path}]]")
            _toml_table(item, path, f"{_join(where, key)}[{index}]", out)


def profile_toml(data: Mapping[str, object], *, file: str) -> str:
    """`data` (a profile as a JSON object) written as TOML text that parses back to it, a
    null field left out (TOML has no null: an optional field then takes its default, a
    required one is reported missing). Raises `ProfileError` for what TOML cannot hold (a
    null inside a list, a non-finite number); whether the profile itself is valid is for
    `parse_profile` to say."""
    lines: list[str] = []
    issues: list[ProfileIssue] = []
    _toml_table(data, "", "", (lines, issues, file))
    if issues:
        raise ProfileError(issues)
    return "\n".join(lines) + "\n"
