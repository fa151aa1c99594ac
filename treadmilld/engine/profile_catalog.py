"""The profiles a daemon offers, as MQTT and the CLI see them: summaries, the problems a
profile file has, what a reload found, uploads and why one was refused.

`treadmilld.engine.library.ProfileLibrary` is the `ProfileStore`. Part of the engine seam:
import these from `treadmilld.engine.api`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from treadmilld.engine.refusal import RefusedError
from treadmilld.engine.toml_files import FileIssue


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """A profile's metadata and its planned totals, for listings and dashboards."""

    name: str
    title: str
    description: str
    suits: str
    sessions_per_week: int | None
    clinical: bool
    sources: Sequence[str]
    total_s: float
    backward_s: float


@runtime_checkable
class ProfileCatalog(Protocol):
    def summaries(self) -> Sequence[ProfileSummary]: ...


# An uploaded profile's TOML text (or JSON object written as TOML) may be this large. The
# largest built-in file is about 3 kB; 64 kB is room for a long, well-commented profile and
# small enough that a wrong file sent by mistake is refused at once.
MAX_PROFILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProfileIssue(FileIssue):
    """One problem with one profile file: where, what, and how to fix it. The `field` is as
    written, e.g. "segments[2].segments[0].speed_kmh", or "(toml)" for syntax errors."""


@dataclass(frozen=True, slots=True)
class ProfileReload:
    """What a reload of the profile folders found. `kept` are profiles whose file is now
    invalid and which stay usable in their last good version (their problems are listed)."""

    profiles: tuple[str, ...]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    problems: tuple[ProfileIssue, ...] = ()

    @property
    def list_changed(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "profiles": list(self.profiles),
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "kept": list(self.kept),
            "problems": [problem.to_json_dict() for problem in self.problems],
        }


@dataclass(frozen=True, slots=True)
class ProfileUpload:
    """A profile written into the profile folder and loaded."""

    name: str
    title: str
    file: str
    replaced: bool
    reload: ProfileReload

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "file": self.file,
            "replaced": self.replaced,
            "reload": self.reload.to_json_dict(),
        }


class ProfileUploadRefusedError(RefusedError):
    """An uploaded profile was not written: `code` says why, `problems` lists every problem
    (empty when the reason is not the profile's content). Nothing was changed."""

    def __init__(self, code: str, message: str, problems: Sequence[ProfileIssue] = ()) -> None:
        super().__init__(code, message)
        self.problems = tuple(problems)


@runtime_checkable
class ProfileStore(ProfileCatalog, Protocol):
    """A profile catalog that can re-read its folders and take uploads (ProfileLibrary).

    A reload or upload never touches a running workout: a session plans its profile when it
    starts and keeps that plan to the end."""

    def reload(self) -> ProfileReload: ...

    def upload(self, source: str | Mapping[str, Any], *, replace: bool = False) -> ProfileUpload:
        """Validate `source` (TOML text, or the same profile as a JSON object) like `treadmilld
        profiles check`, write it atomically into the profile folder and reload. Raises
        `ProfileUploadRefusedError` and changes nothing when it is refused."""
        ...
