"""The tables, as SQLAlchemy Core. The migrations in `migrations/versions/` build exactly these;
a change here needs a new revision there (tests/store/test_migrations.py compares the two).

Times inside a workout are seconds from its start (`at_s`), as in the records; the only wall-clock
columns are `started_at`, `reported_at` and the riders' `created_at`/`updated_at`, all UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Constraint names fixed in one place, so migrations on SQLite and PostgreSQL name them alike.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 32  # rider and treadmill ids: the topic-level slug (history/riders.py)
WORKOUT_ID_LENGTH = 64
NAME_LENGTH = 100


class UtcDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out. SQLite keeps no zone, so a naive
    value read back is UTC by construction; a naive value written is refused (it would be
    ambiguous)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; give times as aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

riders = sa.Table(
    "riders",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("display_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("body_weight_kg", sa.Float, nullable=False),
    sa.Column("max_heart_rate_bpm", sa.SmallInteger, nullable=True),
    sa.Column("clinical", sa.Boolean, nullable=False),
    sa.Column("limits", sa.JSON, nullable=True),
    sa.Column("program_name", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("program_state", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # 0003: the strap the rider wears, {"address": ...} or {"name_match": ...}.
    sa.Column("heart_rate_strap", sa.JSON, nullable=True),
)

workouts = sa.Table(
    "workouts",
    metadata,
    sa.Column("id", sa.String(WORKOUT_ID_LENGTH), primary_key=True),
    sa.Column(
        "rider_id",
        sa.String(ID_LENGTH),
        sa.ForeignKey("riders.id", ondelete="CASCADE"),
        nullable=True,
    ),
    sa.Column("treadmill_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("profile_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("abort_reason", sa.String(32), nullable=True),
    sa.Column("abort_detail", sa.Text, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("distance_forward_m", sa.Float, nullable=True),
    sa.Column("distance_backward_m", sa.Float, nullable=True),
    sa.Column("kcal", sa.Float, nullable=True),
    sa.Column("program_name", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("program_stage", sa.Integer, nullable=True),
    sa.Index(None, "rider_id", "started_at"),
    # 0002: retention deletes by age, and `list_workouts(since=...)` without a rider reads by it.
    sa.Index(None, "started_at"),
    # mark_interrupted_on_start looks for the RUNNING ones.
    sa.Index(None, "outcome"),
)


def _workout_fk() -> sa.ForeignKey:
    return sa.ForeignKey("workouts.id", ondelete="CASCADE")


segments = sa.Table(
    "segments",
    metadata,
    sa.Column("workout_id", sa.String(WORKOUT_ID_LENGTH), _workout_fk(), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("planned_duration_s", sa.Float, nullable=False),
    sa.Column("planned_speed_kmh", sa.Float, nullable=False),
    sa.Column("planned_incline_pct", sa.Float, nullable=False),
    sa.Column("started_at_s", sa.Float, nullable=False),
    sa.Column("ended_at_s", sa.Float, nullable=True),
    sa.Column("distance_m", sa.Float, nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
)

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("workout_id", sa.String(WORKOUT_ID_LENGTH), _workout_fk(), primary_key=True),
    sa.Column("at_s", sa.Float, primary_key=True, autoincrement=False),
    sa.Column("speed_kmh", sa.Float, nullable=False),
    sa.Column("incline_pct", sa.Float, nullable=True),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("distance_forward_m", sa.Float, nullable=False),
    sa.Column("distance_backward_m", sa.Float, nullable=False),
    sa.Column("heart_rate_bpm", sa.SmallInteger, nullable=True),
)

phases = sa.Table(
    "phases",
    metadata,
    # Two phase changes can share an instant (virtual time), so the key is the order written.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workout_id", sa.String(WORKOUT_ID_LENGTH), _workout_fk(), nullable=False),
    sa.Column("at_s", sa.Float, nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Index(None, "workout_id"),
)

# 0002: what the rider reported after a workout; one report per workout, the latest wins.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("workout_id", sa.String(WORKOUT_ID_LENGTH), _workout_fk(), primary_key=True),
    sa.Column("effort", sa.SmallInteger, nullable=False),
    sa.Column("pain", sa.SmallInteger, nullable=False),
    sa.Column("reported_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("effort BETWEEN 0 AND 10", name="effort_range"),
    sa.CheckConstraint("pain BETWEEN 0 AND 10", name="pain_range"),
)
