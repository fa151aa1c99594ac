"""A rider's data-subject export: everything stored about them as one document of plain JSON
values (`Store.export_rider`, `treadmilld riders export`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from treadmilld.engine.limits import ProfileLimits
from treadmilld.history.records import WorkoutRecord
from treadmilld.store.migrate import head_revision
from treadmilld.store.rows import rider_from

EXPORT_FORMAT = "treadmilld-rider-export"
EXPORT_VERSION = 1


def rider_export(rider: sa.RowMapping, records: Iterable[WorkoutRecord]) -> dict[str, Any]:
    """The export of the rider stored as `rider` (their row) with their workouts."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "schema_revision": head_revision(),
        "rider": {
            **jsonable(rider_from(rider)),
            "created_at": rider["created_at"].isoformat(),
            "updated_at": rider["updated_at"].isoformat(),
        },
        "workouts": [jsonable(record) for record in records],
    }


def jsonable(value: Any) -> Any:  # noqa: PLR0911 (one return per kind of value)
    """A record as plain JSON values: dataclasses and pydantic models as objects, enums by
    value, datetimes in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, ProfileLimits):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
