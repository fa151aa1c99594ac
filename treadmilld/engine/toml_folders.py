"""Reading folders of TOML files (profiles, programs) into one set by name: later folders
override earlier ones, an invalid file is skipped (or keeps its last good version) and each of
its problems is logged with its file, field and fix.

The log events are named for what the folder holds (`noun`): `<noun>_dir_missing`,
`<noun>_invalid` (one a problem, with what is kept instead) and `<noun>_overridden`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import structlog

from treadmilld.engine.toml_files import FileIssue, FileProblemsError

_log = structlog.get_logger(__name__)

ItemT = TypeVar("ItemT")
IssueT = TypeVar("IssueT", bound=FileIssue)


def log_file_problems(noun: str, problems: Sequence[FileIssue], **context: object) -> None:
    """One log line per problem, each with its file, field and fix."""
    for problem in problems:
        _log.warning(
            f"{noun}_invalid",
            file=problem.file,
            field=problem.field,
            problem=problem.message,
            hint=problem.hint,
            **context,
        )


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """What a read of the folders changed, by name, each sorted."""

    names: tuple[str, ...]  # all there are now
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]  # there before and now, but different


@dataclass(frozen=True, slots=True)
class FolderRead(Generic[ItemT, IssueT]):
    by_name: dict[str, ItemT]
    by_path: dict[Path, ItemT]  # every file's item: its current or last good version
    kept: tuple[str, ...]  # names whose file is invalid now, kept in their last good version
    issues: tuple[IssueT, ...]

    def changes_since(self, before: Mapping[str, ItemT]) -> FolderChanges:
        """What changed since `before` (the previous read's `by_name`)."""
        after = self.by_name
        return FolderChanges(
            names=tuple(sorted(after)),
            added=tuple(sorted(after.keys() - before.keys())),
            removed=tuple(sorted(before.keys() - after.keys())),
            changed=tuple(
                sorted(name for name in after.keys() & before.keys() if after[name] != before[name])
            ),
        )


@dataclass(frozen=True, slots=True)
class TomlFolders(Generic[ItemT, IssueT]):
    """How one kind of file is read from its folders, and the words its log lines use."""

    noun: str  # "profile": events profile_dir_missing, profile_invalid, profile_overridden
    load: Callable[[Path], ItemT]  # raises `error` listing the file's problems
    error: type[FileProblemsError[IssueT]]
    name_of: Callable[[ItemT], str]
    missing_hint: str  # what to do about a folder that is not there
    skipped: str  # what an invalid file without a last good version keeps, for the log

    def read(
        self,
        directories: Sequence[Path],
        *,
        given: Mapping[str, ItemT] | None = None,
        last_good: Mapping[Path, ItemT] | None = None,
    ) -> FolderRead[ItemT, IssueT]:
        """Every `*.toml` of `directories`, in order, on top of `given`. With `last_good` (the
        previous read's `by_path`), a file that is invalid now keeps its last good version."""
        by_name: dict[str, ItemT] = dict(given or {})
        by_path: dict[Path, ItemT] = {}
        kept: list[str] = []
        issues: list[IssueT] = []
        for directory in directories:
            if not directory.is_dir():
                _log.warning(
                    f"{self.noun}_dir_missing", path=str(directory), hint=self.missing_hint
                )
                continue
            for path in sorted(directory.glob("*.toml")):
                try:
                    item = self.load(path)
                except self.error as error:
                    issues.extend(error.issues)
                    previous = last_good.get(path) if last_good is not None else None
                    if previous is None:
                        log_file_problems(self.noun, error.issues, keeps=self.skipped)
                        continue
                    name = self.name_of(previous)
                    log_file_problems(
                        self.noun, error.issues, keeps=f"the last good version of {name}"
                    )
                    item = previous
                    kept.append(name)
                name = self.name_of(item)
                if name in by_name:
                    _log.info(f"{self.noun}_overridden", name=name, path=str(path))
                by_name[name] = item
                by_path[path] = item
        return FolderRead(by_name, by_path, tuple(kept), tuple(issues))
