"""Riders and workouts recorded as they run: segments, 1 Hz samples, phase changes.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "riders",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("body_weight_kg", sa.Float, nullable=False),
        sa.Column("max_heart_rate_bpm", sa.SmallInteger, nullable=True),
        sa.Column("clinical", sa.Boolean, nullable=False),
        sa.Column("limits", sa.JSON, nullable=True),
        sa.Column("program_name", sa.String(100), nullable=True),
        sa.Column("program_state", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_riders"),
    )
    op.create_table(
        "workouts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("rider_id", sa.String(32), nullable=True),
        sa.Column("treadmill_id", sa.String(32), nullable=False),
        sa.Column("profile_name", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("abort_reason", sa.String(32), nullable=True),
        sa.Column("abort_detail", sa.Text, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("distance_forward_m", sa.Float, nullable=True),
        sa.Column("distance_backward_m", sa.Float, nullable=True),
        sa.Column("kcal", sa.Float, nullable=True),
        sa.Column("program_name", sa.String(100), nullable=True),
        sa.Column("program_stage", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workouts"),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["riders.id"], name="fk_workouts_rider_id_riders", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_workouts_rider_id_started_at", "workouts", ["rider_id", "started_at"])
    op.create_table(
        "segments",
        sa.Column("workout_id", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("planned_duration_s", sa.Float, nullable=False),
        sa.Column("planned_speed_kmh", sa.Float, nullable=False),
        sa.Column("planned_incline_pct", sa.Float, nullable=False),
        sa.Column("started_at_s", sa.Float, nullable=False),
        sa.Column("ended_at_s", sa.Float, nullable=True),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("workout_id", "idx", name="pk_segments"),
        sa.ForeignKeyConstraint(
            ["workout_id"],
            ["workouts.id"],
            name="fk_segments_workout_id_workouts",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "samples",
        sa.Column("workout_id", sa.String(64), nullable=False),
        sa.Column("at_s", sa.Float, nullable=False, autoincrement=False),
        sa.Column("speed_kmh", sa.Float, nullable=False),
        sa.Column("incline_pct", sa.Float, nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("distance_forward_m", sa.Float, nullable=False),
        sa.Column("distance_backward_m", sa.Float, nullable=False),
        sa.Column("heart_rate_bpm", sa.SmallInteger, nullable=True),
        sa.PrimaryKeyConstraint("workout_id", "at_s", name="pk_samples"),
        sa.ForeignKeyConstraint(
            ["workout_id"],
            ["workouts.id"],
            name="fk_samples_workout_id_workouts",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "phases",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("workout_id", sa.String(64), nullable=False),
        sa.Column("at_s", sa.Float, nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_phases"),
        sa.ForeignKeyConstraint(
            ["workout_id"],
            ["workouts.id"],
            name="fk_phases_workout_id_workouts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_phases_workout_id", "phases", ["workout_id"])


def downgrade() -> None:
    op.drop_table("phases")
    op.drop_table("samples")
    op.drop_table("segments")
    op.drop_index("ix_workouts_rider_id_started_at", table_name="workouts")
    op.drop_table("workouts")
    op.drop_table("riders")
