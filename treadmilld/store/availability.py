"""Which database failures mean "unreachable now, try again" (`HistoryUnavailableError`) and
which are errors of their own. Judged by duck typing, without importing SQLAlchemy, asyncpg or
sqlite3, so the daemon's history writer (`store/writer.py`) and the SQLAlchemy store
(`store/repository.py`) share it at no import cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from treadmilld.history.records import HistoryUnavailableError

# PostgreSQL error codes (Appendix A, "PostgreSQL Error Codes"): class 08 is "Connection
# Exception"; 57P01 admin_shutdown, 57P02 crash_shutdown and 57P03 cannot_connect_now are
# what a server restarting answers.
CONNECTION_SQLSTATE_CLASS = "08"
SERVER_GOING_AWAY_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# SQLite's transient failures (sqlite3.OperationalError messages, result codes SQLITE_BUSY,
# SQLITE_LOCKED, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL in "Result and Error Codes"): the
# file is locked by another writer beyond busy_timeout, its folder or disk went away or filled.
SQLITE_TRANSIENT_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
)
# asyncpg's InterfaceError for a connection closed under it ("connection is closed").
CLOSED_CONNECTION_TEXT = "closed"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's `orig`) and its causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _class_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _one_is_connectivity(error: BaseException) -> bool:
    if isinstance(error, OSError | TimeoutError):
        # ConnectionRefusedError, ConnectionResetError, a DNS failure (socket.gaierror), a
        # connect that timed out: the network or the server.
        return True
    if getattr(error, "connection_invalidated", False):
        # SQLAlchemy's DBAPIError when the dialect judged the connection dead.
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate.startswith(CONNECTION_SQLSTATE_CLASS) or sqlstate in SERVER_GOING_AWAY_SQLSTATES
    ):
        return True
    names = _class_names(error)
    text = str(error).lower()
    if "OperationalError" in names and any(m in text for m in SQLITE_TRANSIENT_MESSAGES):
        return True
    return (
        "InterfaceError" in names
        and type(error).__module__.startswith("asyncpg")
        and CLOSED_CONNECTION_TEXT in text
    )


def is_connectivity_failure(error: BaseException) -> bool:
    """Whether `error` (or anything it wraps) says the database cannot be reached now."""
    return any(_one_is_connectivity(linked) for linked in _chain(error))


def unavailable_error(error: BaseException, where: str) -> HistoryUnavailableError:
    return HistoryUnavailableError(
        f"the database at {where} cannot be reached ({type(error).__name__}: {error}); check "
        "that it runs and the network to it is up (for SQLite: the state directory is "
        "writable and has space)"
    )


@contextlib.contextmanager
def reachability(where: str) -> Iterator[None]:
    """Connectivity failures inside become HistoryUnavailableError; other errors stay."""
    try:
        yield
    except HistoryUnavailableError:
        raise
    except Exception as error:
        if is_connectivity_failure(error):
            raise unavailable_error(error, where) from error
        raise
