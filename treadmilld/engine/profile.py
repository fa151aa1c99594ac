"""The profile format: TOML files validated by strict pydantic models.

A profile is metadata plus a list of segments. A segment walks forward or backward, or rests
(belt paused), for a duration; a repeat block repeats its nested segments. A change of direction
is written as two plain segments: the planner inserts the turn protocol between them.
docs/profiles.md describes the format for people writing profiles.

The names the rest of treadmilld and its tests use are importable from here; they are written
in `engine/profile_models.py` (the models, what a profile unrolls to, `ProfileError`),
`engine/profile_reading.py` (parsing and loading a file, each problem explained) and
`engine/profile_writing.py` (a JSON object as TOML text).
"""

from __future__ import annotations

from treadmilld.engine.profile_models import (
    MAX_EXPANDED_S,
    MAX_EXPANDED_SEGMENTS,
    Profile,
    ProfileError,
    ProfileTooLongError,
    RepeatBlock,
    Segment,
)
from treadmilld.engine.profile_reading import load_profile, parse_profile
from treadmilld.engine.profile_writing import profile_toml

__all__ = [
    "MAX_EXPANDED_S",
    "MAX_EXPANDED_SEGMENTS",
    "Profile",
    "ProfileError",
    "ProfileTooLongError",
    "RepeatBlock",
    "Segment",
    "load_profile",
    "parse_profile",
    "profile_toml",
]
