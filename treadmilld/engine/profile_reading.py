"""Reading a profile file: TOML parsed and validated, every problem of the file collected
and explained (the field's path as written, a hint for each kind of mistake)."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from treadmilld.engine.api import ProfileIssue
from treadmilld.engine.limits import ProfileLimits
from treadmilld.engine.profile_models import (
    Profile,
    ProfileError,
    ProfileTooLongError,
    Ramp,
    RepeatBlock,
    Segment,
)

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
