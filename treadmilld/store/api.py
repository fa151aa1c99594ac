"""The store's public names, in one place (the package's own `__init__` stays empty so that
`treadmilld.store.config`, which the settings import, does not pull SQLAlchemy into every CLI
command).
"""

from __future__ import annotations

from treadmilld.store.config import DatabaseSettings, database_url, sqlite_url, state_dir
from treadmilld.store.engine import create_engine
from treadmilld.store.errors import (
    InvalidRecordError,
    RiderExistsError,
    SchemaTooNewError,
    StoreError,
    UnknownRiderError,
    UnknownWorkoutError,
    WorkoutExistsError,
)
from treadmilld.store.migrate import head_revision, schema_revision, upgrade_schema
from treadmilld.store.repository import Store, open_store

__all__ = [
    "DatabaseSettings",
    "InvalidRecordError",
    "RiderExistsError",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "UnknownRiderError",
    "UnknownWorkoutError",
    "WorkoutExistsError",
    "create_engine",
    "database_url",
    "head_revision",
    "open_store",
    "schema_revision",
    "sqlite_url",
    "state_dir",
    "upgrade_schema",
]
