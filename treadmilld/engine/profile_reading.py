"""Reading a profile file: TOML parsed and validated, every problem of the file collected
and explained (the field's path as written, a hint for each kind of mistake). The reading is
`engine/toml_files.py`'s, shared with programs; `PROFILE_FORMAT` holds what is a profile's own."""

from __future__ import annotations

from pathlib import Path

from treadmilld.engine.api import ProfileIssue
from treadmilld.engine.limits import ProfileLimits
from treadmilld.engine.profile_models import (
    Profile,
    ProfileError,
    Ramp,
    RepeatBlock,
    Segment,
)
from treadmilld.engine.toml_files import TomlFormat

PROFILE_FORMAT = TomlFormat(
    root=Profile,
    issue=ProfileIssue,
    error=ProfileError,
    docs="docs/profiles.md",
    models_by_key={"limits": ProfileLimits, "ramp": Ramp},
    models_by_tag={"segment": Segment, "repeat": RepeatBlock},
    hints={
        "string_pattern_mismatch": "use lowercase letters, digits and dashes, e.g. my-retro-walk"
    },
)


def parse_profile(text: str, *, file: str, expected_name: str | None = None) -> Profile:
    """Parse and validate one profile; raises `ProfileError` listing every problem."""
    profile = PROFILE_FORMAT.parse(text, file=file)
    misnamed = PROFILE_FORMAT.misnamed(profile.name, file=file, expected_name=expected_name)
    if misnamed:
        raise ProfileError(misnamed)
    return profile


def load_profile(path: Path) -> Profile:
    """Load `path`; the profile's name must match the file name (without `.toml`)."""
    text = PROFILE_FORMAT.read_text(path)
    return parse_profile(text, file=str(path), expected_name=path.stem)
