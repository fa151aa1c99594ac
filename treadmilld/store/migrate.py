"""Schema migrations, run from code: the Alembic scripts ship inside the package
(`treadmilld/store/migrations/`) and the config is built here, so no alembic.ini is needed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from treadmilld.store.errors import SchemaTooNewError

_log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic would otherwise configure logging from an ini file it does not have.
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts in {MIGRATIONS_DIR}; the package is incomplete")
    return head


def known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: sa.Connection, target: str, url: str) -> None:
    current = _current(connection)
    if current is not None and current not in known_revisions():
        raise SchemaTooNewError(
            f"the database at {url} has schema revision {current!r}, which this treadmilld "
            f"does not know (it knows up to {head_revision()!r}): a newer treadmilld migrated "
            "it. Upgrade treadmilld on this machine to the version the others run; never "
            "downgrade a shared database"
        )
    command.upgrade(_config(connection), target)
    after = _current(connection)
    if after != current:
        _log.info("database_schema_upgraded", from_revision=current, to_revision=after)


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (the newest by default). Raises SchemaTooNewError when the
    database was migrated by a newer treadmilld."""
    url = engine.url.render_as_string(hide_password=True)
    async with engine.connect() as connection:
        await connection.run_sync(_upgrade, revision, url)
        await connection.commit()


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision; None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
