"""What the store refuses, each saying what to do."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer treadmilld than this one."""


class UnknownRiderError(StoreError):
    pass


class RiderExistsError(StoreError):
    pass


class UnknownWorkoutError(StoreError):
    pass


class WorkoutExistsError(StoreError):
    pass


class InvalidRecordError(StoreError, ValueError):
    """A value the schema cannot hold (a feedback score outside 0 to 10, a bad rider id)."""
