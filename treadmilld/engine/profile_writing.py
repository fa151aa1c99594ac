"""Writing a profile given as a JSON object (an MQTT upload) as TOML text that parses back to
it; whether the profile itself is valid is for `treadmilld.engine.profile_reading` to say."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from treadmilld.engine.api import ProfileIssue
from treadmilld.engine.profile_models import ProfileError

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
