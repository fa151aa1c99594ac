"""`python -m treadmilld.store.upgrade`: migrate the database whose URL comes on stdin, then
exit. The daemon runs it as a child process (store/writer.py) so that Alembic and SQLAlchemy,
about 25 MiB resident, never stay in the daemon's memory; the URL goes through stdin so its
password is not on a command line other users can list.

Exit status: 0 migrated (or already current), 2 the schema is newer than this treadmilld
(SchemaTooNewError), 3 the database cannot be reached, 1 anything else; the message is the last
line on stderr.
"""

from __future__ import annotations

import asyncio
import sys

from treadmilld.history.records import HistoryUnavailableError
from treadmilld.store.errors import SchemaTooNewError, StoreError

EXIT_MIGRATED = 0
EXIT_FAILED = 1
EXIT_SCHEMA_TOO_NEW = 2
EXIT_UNREACHABLE = 3


async def _migrate(url: str) -> None:
    from treadmilld.store.repository import open_store  # noqa: PLC0415 - after the argv check

    store = await open_store(url)
    await store.close()


def main() -> int:
    url = sys.stdin.readline().strip()
    try:
        asyncio.run(_migrate(url))
    except SchemaTooNewError as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_SCHEMA_TOO_NEW
    except HistoryUnavailableError as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_UNREACHABLE
    except StoreError as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_FAILED
    return EXIT_MIGRATED


if __name__ == "__main__":
    sys.exit(main())
