"""Alembic's environment: runs on the connection `treadmilld.store.migrate` hands over in the
config's attributes, never on a URL of its own."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from treadmilld.store.schema import metadata

# Several Pis of a gym start at once against one PostgreSQL: one migrates, the others wait on
# this lock and then find the schema current. Any fixed 64-bit key; this is "tmilld01" in ASCII.
_MIGRATION_LOCK_KEY = 0x746D696C6C643031

connection: sa.Connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead (Alembic docs,
    # "Running 'Batch' Migrations for SQLite").
    render_as_batch=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
        )
    context.run_migrations()
