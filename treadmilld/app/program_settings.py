"""The `[programs]` table: the gym's time zone, in which program weeks are counted, and the
machine's own zone, its default (docs/configuration.md, docs/programs.md).

Weekly targets, streaks and "sessions this week" are calendar weeks a person lives: a session
at 01:30 on a Monday in Berlin is in the new week even though it is still Sunday in UTC. Stored
times stay UTC; only the rider service's "now" is in this zone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

LOCALTIME = Path("/etc/localtime")
# Where a zone's file sits in a path (/usr/share/zoneinfo/Europe/Berlin): the name follows.
_ZONEINFO_DIR = "zoneinfo/"


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone `name`, or None when there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: "", "/abs", "../x"
        return None


def _name_in_path(path: str) -> str | None:
    _, found, name = path.rpartition(_ZONEINFO_DIR)
    return name if found and zone_named(name) is not None else None


def machine_time_zone(environ: Mapping[str, str] | None = None, localtime: Path = LOCALTIME) -> str:
    """The machine's own zone as an IANA name: `TZ` (a name, `:Europe/Berlin`, or a path into
    a zoneinfo folder), else the zone `/etc/localtime` links to, else "UTC". A POSIX rule in
    `TZ` (`CET-1CEST`) names no zone whose rules we can know, so it falls through."""
    env = os.environ if environ is None else environ
    given = env.get("TZ", "").removeprefix(":")
    if given:
        if zone_named(given) is not None and not given.startswith("/"):
            return given
        if (name := _name_in_path(given)) is not None:
            return name
    try:
        target = str(localtime.resolve(strict=True)) if localtime.is_symlink() else ""
    except OSError:  # a dangling link: no zone to read
        target = ""
    return _name_in_path(target) or "UTC"


class ProgramSettings(BaseModel):
    """`[programs]`: how program weeks are counted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = Field(
        default_factory=machine_time_zone,
        description="IANA zone whose Monday-to-Sunday weeks count (default: the machine's own)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if zone_named(value) is None:
            raise ValueError(
                f"{value!r} is not an IANA time zone name; give the gym's zone as Area/City, "
                'e.g. time_zone = "Europe/Berlin" (`timedatectl list-timezones` lists them), '
                "or leave it out for the machine's own zone"
            )
        return value

    def zone(self) -> ZoneInfo:
        """The zone itself: a `ZoneInfo`, so each date gets its own offset (DST included)."""
        return ZoneInfo(self.time_zone)  # the name was checked when the settings loaded
