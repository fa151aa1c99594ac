"""The profile library: the built-in profiles plus any user profile directories.

The library re-reads its directories on `reload()` (a file changed, or an MQTT request) and
takes uploads (`upload()`), which it writes into the last user directory. Neither touches a
running workout: a session plans its profile when it starts and keeps that plan.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from treadmilld.engine.api import (
    MAX_PROFILE_BYTES,
    ProfileIssue,
    ProfileReload,
    ProfileSummary,
    ProfileUpload,
    ProfileUploadRefusedError,
)
from treadmilld.engine.limits import SafetyLimits, effective_limits
from treadmilld.engine.planner import plan_workout
from treadmilld.engine.profile import (
    Profile,
    ProfileError,
    load_profile,
    parse_profile,
    profile_toml,
)
from treadmilld.engine.toml_folders import FolderRead, TomlFolders
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

# What problems name as the "file" of an upload, before it has one.
UPLOAD_FILE = "(uploaded profile)"


class UnknownProfileError(LookupError):
    """No profile by that name; the message lists the known ones."""


def builtin_profiles_dir() -> Path:
    """`profiles/` of a source checkout, else the package data an installed wheel carries."""
    checkout = Path(__file__).resolve().parents[2] / "profiles"
    if checkout.is_dir():
        return checkout
    packaged = resources.files("treadmilld") / "_builtin_profiles"
    return Path(str(packaged))


def _checked(profile: Profile, limits: SafetyLimits) -> Profile:
    # A profile is only as good as its plan: planning it is part of the check.
    plan_workout(
        profile, effective_limits(limits, clinical=profile.clinical, profile=profile.limits)
    )
    return profile


def check_profile_file(path: Path, limits: SafetyLimits | None = None) -> Profile:
    """What `treadmilld profiles check` does to one file, and what the daemon does to every
    file it loads: parse, validate, and plan. Raises `ProfileError` listing every problem."""
    return _checked(load_profile(path), limits or SafetyLimits())


def check_profile_text(
    text: str, *, file: str, expected_name: str | None = None, limits: SafetyLimits | None = None
) -> Profile:
    """`check_profile_file` for text that is not (yet) a file, such as an upload."""
    return _checked(
        parse_profile(text, file=file, expected_name=expected_name), limits or SafetyLimits()
    )


Fingerprint = tuple[tuple[str, int, int], ...]
_Loaded = FolderRead[Profile, ProfileIssue]


class ProfileLibrary:
    """Profiles by name. Later directories override earlier ones (a user may replace a
    built-in); invalid files are skipped, logged problem by problem and kept in `issues`.

    On `reload()`, a file that was valid and now is not keeps its last good version usable
    (listed under `kept`, its problems reported), so a half-saved edit never pulls a profile
    out from under a dashboard; a file that was removed removes its profile. After a restart
    only valid files load."""

    def __init__(
        self,
        extra_dirs: Sequence[Path] = (),
        *,
        include_builtin: bool = True,
        limits: SafetyLimits | None = None,
    ) -> None:
        self._limits = limits or SafetyLimits()
        self._folders = TomlFolders(
            noun="profile",
            load=lambda path: check_profile_file(path, self._limits),
            error=ProfileError,
            name_of=lambda profile: profile.name,
            missing_hint="create it, or fix profiles_dir in the config",
            skipped="nothing: the file is skipped",
        )
        self._builtin_dir = builtin_profiles_dir() if include_builtin else None
        self._user_dirs = [Path(d) for d in extra_dirs]
        self._fingerprint: Fingerprint = ()
        # Profiles given in code (`from_profiles`): no file, so every reload keeps them.
        self._given: dict[str, Profile] = {}
        self._state: _Loaded = FolderRead({}, {}, (), ())
        self._builtin_names: frozenset[str] = frozenset()
        self._state = self._load(previous=None)
        if self._builtin_dir is not None:
            self._builtin_names = frozenset(
                profile.name
                for path, profile in self._state.by_path.items()
                if path.parent == self._builtin_dir
            )

    @classmethod
    def from_profiles(
        cls, profiles: Sequence[Profile], *, limits: SafetyLimits | None = None
    ) -> ProfileLibrary:
        library = cls(include_builtin=False, limits=limits)
        library._given = {profile.name: profile for profile in profiles}
        library._state.by_name.update(library._given)
        return library

    # -- loading --------------------------------------------------------------------------

    def _dirs(self) -> list[Path]:
        return ([self._builtin_dir] if self._builtin_dir is not None else []) + self._user_dirs

    def _load(self, previous: _Loaded | None) -> _Loaded:
        # Fingerprint first: a file changed while we read is seen as changed at the next poll.
        self._fingerprint = self.fingerprint()
        return self._folders.read(
            self._dirs(),
            given=self._given,
            last_good=previous.by_path if previous is not None else None,
        )

    def reload(self) -> ProfileReload:
        """Read every directory again; the new set replaces the old one all at once."""
        before = self._state.by_name
        self._state = self._load(previous=self._state)
        changes = self._state.changes_since(before)
        report = ProfileReload(
            profiles=changes.names,
            added=changes.added,
            removed=changes.removed,
            changed=changes.changed,
            kept=self._state.kept,
            problems=self._state.issues,
        )
        _log.info(
            "profiles_reloaded",
            profiles=len(report.profiles),
            added=list(report.added),
            removed=list(report.removed),
            changed=list(report.changed),
            kept=list(report.kept),
            problems=len(report.problems),
        )
        return report

    def fingerprint(self) -> Fingerprint:
        """Name, modification time and size of every profile file in the user directories
        (the built-in ones only change with an upgrade, which restarts the daemon)."""
        seen: list[tuple[str, int, int]] = []
        for directory in self._user_dirs:
            with contextlib.suppress(OSError):
                for path in sorted(directory.glob("*.toml")):
                    with contextlib.suppress(OSError):  # removed between glob and stat
                        stat = path.stat()
                        seen.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(seen)

    def files_changed(self) -> bool:
        """Whether a profile file was added, removed or modified since the last (re)load."""
        return self.fingerprint() != self._fingerprint

    async def watch(
        self,
        clock: Clock,
        interval_s: float,
        on_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Poll the user directories every `interval_s` and call `on_change` (default:
        `reload`) when a file was added, removed or modified. Runs until cancelled."""
        while True:
            await clock.sleep(interval_s)
            if not self.files_changed():
                continue
            _log.info("profile_files_changed", dirs=[str(d) for d in self._user_dirs])
            try:
                if on_change is None:
                    self.reload()
                else:
                    await on_change()
            except Exception:  # noqa: BLE001 - logged with its traceback below
                # The library keeps its previous set; the next change tries again.
                _log.exception("profiles_reload_failed")
                self._fingerprint = self.fingerprint()

    # -- uploads --------------------------------------------------------------------------

    @property
    def upload_dir(self) -> Path | None:
        """Where uploads go: the last user directory (the config's `profiles_dir`)."""
        return self._user_dirs[-1] if self._user_dirs else None

    def builtin_names(self) -> frozenset[str]:
        return self._builtin_names

    def upload(self, source: str | Mapping[str, Any], *, replace: bool = False) -> ProfileUpload:
        directory = self.upload_dir
        if directory is None:
            raise ProfileUploadRefusedError(
                "no_profiles_dir",
                "this daemon has no profile folder to write to; set profiles_dir in its config "
                "(e.g. /var/lib/treadmilld/profiles) and restart it",
            )
        text = self._upload_text(source)
        try:
            profile = check_profile_text(text, file=UPLOAD_FILE, limits=self._limits)
        except ProfileError as error:
            raise self._invalid(error) from None
        if profile.name in self._builtin_names:
            raise ProfileUploadRefusedError(
                "builtin_profile",
                f"{profile.name!r} is a built-in profile and an upload never replaces one; "
                f'give yours another name, e.g. name = "{profile.name}-mine"',
            )
        # The file name comes from the validated name (lowercase letters, digits, dashes), so
        # it cannot leave the folder; this says so should the name pattern ever widen.
        if Path(profile.name).name != profile.name or profile.name.startswith("."):
            raise ProfileUploadRefusedError(
                "invalid_name", f"{profile.name!r} cannot be a file name in {directory}"
            )
        target = directory / f"{profile.name}.toml"
        replaced = target.exists()
        if replaced and not replace:
            raise ProfileUploadRefusedError(
                "profile_exists",
                f'{target} already exists; send the upload again with "replace": true to '
                "overwrite it, or give the profile another name",
            )
        self._write_atomically(target, text)
        _log.info("profile_uploaded", name=profile.name, file=str(target), replaced=replaced)
        report = self.reload()
        return ProfileUpload(profile.name, profile.title, str(target), replaced, report)

    def _upload_text(self, source: str | Mapping[str, Any]) -> str:
        if isinstance(source, str):
            text = source
        else:
            try:
                text = profile_toml(source, file=UPLOAD_FILE)
            except ProfileError as error:
                raise self._invalid(error) from None
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > MAX_PROFILE_BYTES:
            raise ProfileUploadRefusedError(
                "too_large",
                f"the profile is {size:,} bytes, more than the {MAX_PROFILE_BYTES:,} an upload "
                "may be; remove what it does not need, or copy the file onto the Pi",
            )
        return text

    @staticmethod
    def _invalid(error: ProfileError) -> ProfileUploadRefusedError:
        return ProfileUploadRefusedError(
            "invalid_profile",
            f"the profile has {len(error.issues)} problem(s), listed in `problems`; nothing "
            "was written",
            error.issues,
        )

    @staticmethod
    def _write_atomically(target: Path, text: str) -> None:
        """Write a temporary file next to `target`, flush it to disk and rename it over
        `target`: a reader (or a power cut) sees the old file or the new one, never half."""
        directory = target.parent
        temporary: Path | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Not *.toml, so neither the library nor its watcher ever reads it half-written.
            descriptor, name = tempfile.mkstemp(
                dir=directory, prefix=f".{target.stem}.", suffix=".part"
            )
            temporary = Path(name)
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            temporary.chmod(0o644)
            temporary.replace(target)
            temporary = None
            with contextlib.suppress(OSError):  # not every file system syncs a directory
                directory_fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(directory_fd)
                finally:
                    os.close(directory_fd)
        except OSError as error:
            raise ProfileUploadRefusedError(
                "write_failed",
                f"could not write {target}: {error.strerror or error}; check that the daemon "
                f"may write to {directory} (under the shipped systemd unit only "
                "/var/lib/treadmilld is writable: put profiles_dir there, or add "
                "ReadWritePaths=)",
            ) from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    temporary.unlink()

    # -- the catalog ----------------------------------------------------------------------

    @property
    def issues(self) -> Sequence[ProfileIssue]:
        return self._state.issues

    def names(self) -> list[str]:
        return sorted(self._state.by_name)

    def get(self, name: str) -> Profile:
        try:
            return self._state.by_name[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownProfileError(
                f"no profile named {name!r}; known profiles: {known}"
            ) from None

    def summary(self, name: str) -> ProfileSummary:
        profile = self.get(name)
        plan = plan_workout(
            profile,
            effective_limits(self._limits, clinical=profile.clinical, profile=profile.limits),
        )
        return ProfileSummary(
            name=profile.name,
            title=profile.title,
            description=profile.description.strip(),
            suits=profile.suits,
            sessions_per_week=profile.sessions_per_week,
            clinical=profile.clinical,
            sources=tuple(profile.sources),
            total_s=plan.total_s,
            backward_s=plan.backward_s,
        )

    def summaries(self) -> list[ProfileSummary]:
        return [self.summary(name) for name in self.names()]
