"""The `[database]` settings: where riders and history are kept, and for how long."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DATABASE_FILE_NAME = "treadmilld.db"
# systemd sets $STATE_DIRECTORY from the unit's StateDirectory= (systemd.exec(5),
# "RuntimeDirectory=, StateDirectory=, ..."); the unit in systemd/ grants /var/lib/treadmilld.
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"
DEFAULT_STATE_DIR = Path("/var/lib/treadmilld")


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql://treadmilld@db.gym.lan/treadmilld for "
        "several Pis sharing riders and history; unset: SQLite in the state directory",
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="workouts that started more than this many days ago are deleted; unset: kept",
    )


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The state directory systemd grants the unit, else /var/lib/treadmilld."""
    env = os.environ if environ is None else environ
    # systemd joins several StateDirectory= entries with ':'; ours names one.
    granted = env.get(STATE_DIRECTORY_ENV, "").split(":")[0]
    return Path(granted) if granted else DEFAULT_STATE_DIR


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / DATABASE_FILE_NAME}"


def database_url(settings: DatabaseSettings, environ: Mapping[str, str] | None = None) -> str:
    """The URL to open: `database.url` when set, else SQLite in the state directory."""
    if settings.url is not None:
        return settings.url
    return sqlite_url(state_dir(environ))
