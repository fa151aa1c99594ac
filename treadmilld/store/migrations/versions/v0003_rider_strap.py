"""The heart-rate strap a rider wears ({"address": ...} or {"name_match": ...}), or none.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A nullable column: every rider stored before wears no strap of their own.
    with op.batch_alter_table("riders") as batch:
        batch.add_column(sa.Column("heart_rate_strap", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("riders") as batch:
        batch.drop_column("heart_rate_strap")
