"""The profile library: the built-in profiles plus any user profile directories."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import structlog

from treadmilld.engine.api import ProfileSummary
from treadmilld.engine.limits import SafetyLimits, effective_limits
from treadmilld.engine.planner import plan_workout
from treadmilld.engine.profile import Profile, ProfileError, ProfileIssue, load_profile

log = structlog.get_logger()


class UnknownProfileError(LookupError):
    """No profile by that name; the message lists the known ones."""


def builtin_profiles_dir() -> Path:
    """`profiles/` of a source checkout, else the package data an installed wheel carries."""
    checkout = Path(__file__).resolve().parents[2] / "profiles"
    if checkout.is_dir():
        return checkout
    packaged = resources.files("treadmilld") / "_builtin_profiles"
    return Path(str(packaged))


class ProfileLibrary:
    """Profiles by name. Later directories override earlier ones (a user may replace a
    built-in); invalid files are skipped, logged and kept in `issues`."""

    def __init__(
        self,
        extra_dirs: Sequence[Path] = (),
        *,
        include_builtin: bool = True,
        limits: SafetyLimits | None = None,
    ) -> None:
        self._limits = limits or SafetyLimits()
        self._profiles: dict[str, Profile] = {}
        self._issues: list[ProfileIssue] = []
        dirs = [builtin_profiles_dir()] if include_builtin else []
        dirs.extend(Path(d) for d in extra_dirs)
        for directory in dirs:
            self._load_dir(directory)

    @classmethod
    def from_profiles(
        cls, profiles: Sequence[Profile], *, limits: SafetyLimits | None = None
    ) -> ProfileLibrary:
        library = cls(include_builtin=False, limits=limits)
        for profile in profiles:
            library._profiles[profile.name] = profile
        return library

    def _load_dir(self, directory: Path) -> None:
        if not directory.is_dir():
            log.warning("profile_dir_missing", path=str(directory))
            return
        for path in sorted(directory.glob("*.toml")):
            try:
                profile = load_profile(path)
            except ProfileError as error:
                self._issues.extend(error.issues)
                log.warning("profile_invalid", path=str(path), problems=len(error.issues))
                continue
            if profile.name in self._profiles:
                log.info("profile_overridden", name=profile.name, path=str(path))
            self._profiles[profile.name] = profile

    @property
    def issues(self) -> Sequence[ProfileIssue]:
        return tuple(self._issues)

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def get(self, name: str) -> Profile:
        try:
            return self._profiles[name]
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
