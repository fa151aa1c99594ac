"""Reading a TOML file into a strict pydantic model, every problem of the file collected and
explained as (file, field, message, hint): the field's path as written, a hint for each kind of
mistake, a did-you-mean for a misspelt field.

Profiles (`engine/profile_reading.py`) and programs (`programs/program.py`) are both read this
way; a `TomlFormat` holds what differs between them (the root model, which nested model a key
or a tag leads to, the hints of their own and the page that documents them).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


@dataclass(frozen=True, slots=True)
class FileIssue:
    """One problem with one file: where, what, and how to fix it."""

    file: str
    field: str  # e.g. "segments[2].segments[0].speed_kmh", or "(toml)" for syntax errors
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message} (hint: {self.hint})"

    def to_json_dict(self) -> dict[str, str]:
        return asdict(self)


IssueT = TypeVar("IssueT", bound=FileIssue)
ModelT = TypeVar("ModelT", bound=BaseModel)


class FileProblemsError(ValueError, Generic[IssueT]):
    """A file is invalid; `issues` lists every problem found, each with a hint. Each format
    subclasses it and names what it reads in `noun`."""

    noun: ClassVar[str] = "file"

    def __init__(self, issues: Sequence[IssueT]) -> None:
        self.issues = tuple(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid {self.noun} ({len(self.issues)} problem(s)):\n{lines}")


# Hints for pydantic's error types that mean the same in any file.
_COMMON_HINTS: dict[str, str] = {
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
    "too_short": "it must not be empty",
    "string_too_short": "it must not be empty",
}


@dataclass(frozen=True, slots=True)
class TomlFormat(Generic[ModelT, IssueT]):
    """One kind of file: what it validates into, the issue and error it reports with, and the
    words its hints use."""

    root: type[ModelT]
    issue: type[IssueT]
    # Raised with every problem; one raised inside validation (a rule across fields) already
    # names its fields, and only gets the file filled in.
    error: type[FileProblemsError[IssueT]]
    docs: str  # the page that describes each field, e.g. "docs/profiles.md"
    # The model a key leads to ("limits" -> ProfileLimits), and the model a tagged union's tag
    # leads to after a list index (segments[0].repeat -> RepeatBlock; the tag is not written).
    models_by_key: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    models_by_tag: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    # This format's own hints, by pydantic error type; they win over the common ones.
    hints: Mapping[str, str] = field(default_factory=dict)

    def field_path(self, loc: Sequence[int | str]) -> tuple[str, type[BaseModel]]:
        """Human path for a pydantic location, and the model that holds its last element."""
        parts: list[str] = []
        model: type[BaseModel] = self.root
        previous_was_index = False
        for element in loc:
            if isinstance(element, int):
                parts.append(f"[{element}]")
                previous_was_index = True
                continue
            if previous_was_index and element in self.models_by_tag:
                model = self.models_by_tag[element]
                previous_was_index = False
                continue
            previous_was_index = False
            if element in self.models_by_key:
                model = self.models_by_key[element]
            parts.append(f".{element}" if parts else element)
        return "".join(parts) or f"({self.error.noun})", model

    def hint(self, error: ErrorDetails) -> str:
        kind = error["type"]
        loc = tuple(error["loc"])
        name = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            holder = self.field_path(loc[:-1])[1] if loc else self.root
            allowed = sorted(holder.model_fields)
            close = difflib.get_close_matches(name, allowed, n=1)
            suggestion = f"did you mean `{close[0]}`? " if close else ""
            return f"{suggestion}remove it or use one of: {', '.join(allowed)}"
        if kind == "missing":
            return f"add `{name} = ...` here (see {self.docs} for its meaning)"
        expected = (error.get("ctx") or {}).get("expected")
        if kind == "enum" and expected is not None:
            return f"use one of: {expected}"
        if kind == "value_error":
            return f"see the message; {self.docs} describes each rule"
        return self.hints.get(kind) or _COMMON_HINTS.get(kind) or f"see {self.docs}"

    def issues_from_validation(self, file: str, error: ValidationError) -> list[IssueT]:
        issues: list[IssueT] = []
        for detail in error.errors(include_url=False):
            cause = detail.get("ctx", {}).get("error")
            if isinstance(cause, self.error):
                # It already names its fields; only the file was unknown to the model.
                issues.extend(replace(issue, file=file) for issue in cause.issues)
                continue
            field_path, _ = self.field_path(detail["loc"])
            message = detail["msg"].removeprefix("Value error, ")
            issues.append(self.issue(file, field_path, message, self.hint(detail)))
        return issues

    def parse(self, text: str, *, file: str) -> ModelT:
        """Parse and validate `text`; raises `error` listing every problem."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise self.error(
                [self.issue(file, "(toml)", str(error), "fix the TOML syntax at the place shown")]
            ) from error
        try:
            return self.root.model_validate(raw)
        except ValidationError as error:
            raise self.error(self.issues_from_validation(file, error)) from error

    def misnamed(self, name: str, *, file: str, expected_name: str | None) -> list[IssueT]:
        """The problem when the name written inside differs from the file's name (none when it
        matches, or when there is no file name to match)."""
        if expected_name is None or name == expected_name:
            return []
        return [
            self.issue(
                file,
                "name",
                f"name {name!r} differs from the file name {expected_name!r}",
                f'rename the file to {name}.toml or set name = "{expected_name}"',
            )
        ]

    def read_text(self, path: Path) -> str:
        """The file's text; raises `error` when it cannot be read as UTF-8."""
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise self.error(
                [self.issue(str(path), "(file)", str(error), "check the path and that it is UTF-8")]
            ) from error
