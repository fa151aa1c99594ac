"""Rider feedback (effort and pain, 0 to 10) per workout; indexes for retention and recovery.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("workout_id", sa.String(64), nullable=False),
        sa.Column("effort", sa.SmallInteger, nullable=False),
        sa.Column("pain", sa.SmallInteger, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workout_id", name="pk_feedback"),
        sa.ForeignKeyConstraint(
            ["workout_id"],
            ["workouts.id"],
            name="fk_feedback_workout_id_workouts",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("effort BETWEEN 0 AND 10", name="ck_feedback_effort_range"),
        sa.CheckConstraint("pain BETWEEN 0 AND 10", name="ck_feedback_pain_range"),
    )
    # Retention deletes by age; the start-up recovery looks for workouts still running.
    op.create_index("ix_workouts_started_at", "workouts", ["started_at"])
    op.create_index("ix_workouts_outcome", "workouts", ["outcome"])


def downgrade() -> None:
    op.drop_index("ix_workouts_outcome", table_name="workouts")
    op.drop_index("ix_workouts_started_at", table_name="workouts")
    op.drop_table("feedback")
