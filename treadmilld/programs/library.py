"""The program library: the built-in programs (`profiles/programs/`) plus user directories,
each checked against the profile library.

A program names profiles, so it is only as valid as the profile library it is read with: the
library checks every stage's profile when it loads, and again on `reload()`, which the daemon
calls after the profile library reloads (`on_profiles_reloaded`). A program whose profile is
gone is dropped with its problem reported, so no rider is started on a missing profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from treadmilld.engine.library import ProfileLibrary, builtin_profiles_dir
from treadmilld.engine.toml_folders import FolderRead, TomlFolders
from treadmilld.programs.program import Program, ProgramError, ProgramIssue, load_program

_log = structlog.get_logger(__name__)


class UnknownProgramError(LookupError):
    """No program by that name; the message lists the known ones."""


def builtin_programs_dir() -> Path:
    """`programs/` inside the built-in profiles folder (a checkout's `profiles/programs/`, or
    the package data an installed wheel carries)."""
    return builtin_profiles_dir() / "programs"


@dataclass(frozen=True, slots=True)
class ProgramReload:
    programs: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    problems: tuple[ProgramIssue, ...]


class ProgramLibrary:
    """Programs by name. Later directories override earlier ones; invalid files (a bad field,
    or a stage naming a profile the profile library does not have) are skipped, logged
    problem by problem and kept in `issues`."""

    def __init__(
        self,
        profiles: ProfileLibrary,
        extra_dirs: Sequence[Path] = (),
        *,
        include_builtin: bool = True,
    ) -> None:
        self._profiles = profiles
        self._dirs = ([builtin_programs_dir()] if include_builtin else []) + [
            Path(directory) for directory in extra_dirs
        ]
        self._folders = TomlFolders(
            noun="program",
            load=lambda path: load_program(path, self._profile_names),
            error=ProgramError,
            name_of=lambda program: program.name,
            missing_hint="create it, or fix the programs folder in the config",
            skipped="nothing: the program is skipped",
        )
        # The profile library's names as the current read began: each stage is checked on them.
        self._profile_names: frozenset[str] = frozenset()
        self._state = self._read()

    def _read(self) -> FolderRead[Program, ProgramIssue]:
        self._profile_names = frozenset(self._profiles.names())
        return self._folders.read(self._dirs)

    def reload(self) -> ProgramReload:
        """Read every directory again and check each program against the profile library as
        it is now; the new set replaces the old one all at once."""
        before = self._state.by_name
        self._state = self._read()
        changes = self._state.changes_since(before)
        report = ProgramReload(
            programs=changes.names,
            added=changes.added,
            removed=changes.removed,
            problems=self._state.issues,
        )
        _log.info(
            "programs_reloaded",
            programs=len(report.programs),
            added=list(report.added),
            removed=list(report.removed),
            problems=len(report.problems),
        )
        return report

    def on_profiles_reloaded(self) -> ProgramReload:
        """The hook for the profile library's reloads: a removed or renamed profile takes the
        programs that name it out, a restored one brings them back."""
        return self.reload()

    @property
    def issues(self) -> Sequence[ProgramIssue]:
        return self._state.issues

    def names(self) -> list[str]:
        return sorted(self._state.by_name)

    def get(self, name: str) -> Program:
        try:
            return self._state.by_name[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownProgramError(
                f"no program named {name!r}; known programs: {known}"
            ) from None
