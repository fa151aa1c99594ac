"""structlog, configured once for the whole process.

- On a terminal: structlog's readable console renderer.
- Under journald (`JOURNAL_STREAM` names our stderr): logfmt (or JSON) without a timestamp,
  because the journal stamps every line itself.
- Anywhere else (a pipe, a file): logfmt (or JSON) with an ISO timestamp.

The stdlib loggers of bleak, aiomqtt, bumble, amqtt and the database libraries go through the
same renderer, so one line format reaches the journal. Context bound with
`structlog.contextvars` (the supervisor binds `treadmill_id` in each treadmill's tasks) appears
on every line logged in that task.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from enum import Enum, IntEnum, StrEnum
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Libraries whose stdlib logs we route through our renderer, at `library_level` by default:
# at INFO they narrate every GATT read and MQTT packet (and Alembic each migration step, which
# the store logs itself as `database_schema_upgraded`).
LIBRARY_LOGGERS = (
    "bleak",
    "bleak_retry_connector",
    "aiomqtt",
    "paho",
    "bumble",
    "amqtt",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
)


class LogFormat(StrEnum):
    AUTO = "auto"
    CONSOLE = "console"
    LOGFMT = "logfmt"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def number(self) -> int:
        return logging.getLevelNamesMapping()[self.value.upper()]


def under_journald(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is connected to the journal (systemd.exec(5), `JOURNAL_STREAM`)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def resolve_format(
    requested: LogFormat, stream: TextIO, environ: Mapping[str, str] | None = None
) -> tuple[LogFormat, bool]:
    """The concrete format for `stream`, and whether to add our own timestamp."""
    journald = under_journald(stream, environ)
    if requested is LogFormat.AUTO:
        if journald:
            return LogFormat.LOGFMT, False
        if stream.isatty():
            return LogFormat.CONSOLE, True
        return LogFormat.LOGFMT, True
    return requested, not journald


# Keys that structlog's own processors read as objects (the exception and stack renderers,
# the stdlib bridge): left alone by `readable_values`.
_OBJECT_KEYS = frozenset(
    {"exc_info", "exception", "stack_info", "stack", "_record", "_from_structlog", "event"}
)


def _readable_float(value: float) -> float | str:
    """Enough digits for a person: 530.3006451800551 -> 530.301, 0.000123456 -> 0.000123."""
    if not math.isfinite(value):
        return str(value)  # "nan"/"inf": JSON has no such numbers
    if value == 0 or abs(value) >= 1:
        return round(value, 3)
    return float(f"{value:.3g}")


def _readable(value: Any, *, structured: bool) -> Any:
    """`value` as a person reads it: an enum as its value (a number-valued one, such as an FTMS
    result code, by its name: `operation_failed`, not `4`), a float rounded, a path or an
    exception as its text; containers element by element. `structured` (JSON) keeps lists
    and objects; logfmt and the console get one flat string (`tm01,tm02`, `tm01: ok`)."""
    if isinstance(value, IntEnum):  # before int: an IntEnum is one
        return value.name.lower()
    if isinstance(value, Enum):  # before str: a StrEnum is one
        value = value.value
    if isinstance(value, float):
        return _readable_float(value)
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, bytes | bytearray):
        return value.hex(" ")
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return _readable_container(value, structured=structured)
    return str(value)


def _readable_container(value: Any, *, structured: bool) -> Any:
    if isinstance(value, Mapping):
        if structured:
            return {str(k): _readable(v, structured=True) for k, v in value.items()}
        return ", ".join(f"{k}: {_readable(v, structured=False)}" for k, v in value.items())
    items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    if structured:
        return [_readable(item, structured=True) for item in items]
    return ",".join(str(_readable(item, structured=False)) for item in items)


def readable_values(*, structured: bool) -> Processor:
    """A processor rendering every value as a value, never a Python repr: `running`, not
    `<Phase.RUNNING: 'running'>`; `tm01,tm02`, not `['tm01', 'tm02']`."""

    def processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        values: MutableMapping[str, Any] = event_dict
        for key, value in values.items():
            if key not in _OBJECT_KEYS:
                values[key] = _readable(value, structured=structured)
        return event_dict

    return processor


_handler: logging.Handler | None = None


def configure_logging(
    log_format: LogFormat = LogFormat.AUTO,
    level: LogLevel = LogLevel.INFO,
    *,
    library_level: LogLevel = LogLevel.WARNING,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> LogFormat:
    """Configure structlog and the stdlib root logger; calling again replaces the setup.

    Returns the concrete format chosen (never AUTO).
    """
    global _handler  # noqa: PLW0603 - one handler per process, replaced on reconfiguration
    out = sys.stderr if stream is None else stream
    concrete, timestamp = resolve_format(log_format, out, environ)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    if timestamp:
        shared.append(structlog.processors.TimeStamper(fmt="iso", utc=True))
    shared.append(structlog.processors.StackInfoRenderer())

    renderer: Processor
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        readable_values(structured=concrete is LogFormat.JSON),
    ]
    if concrete is LogFormat.CONSOLE:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        final.append(structlog.processors.format_exc_info)
        final.append(structlog.processors.UnicodeDecoder())
        if concrete is LogFormat.JSON:
            renderer = structlog.processors.JSONRenderer(default=str)
        else:
            renderer = structlog.processors.LogfmtRenderer(
                key_order=["level", "event", "treadmill_id"], drop_missing=True
            )
    final.append(renderer)

    formatter = structlog.stdlib.ProcessorFormatter(processors=final, foreign_pre_chain=shared)
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level.number)
    _handler = handler
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(level.number, library_level.number))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: reconfiguring (tests, `demo` quietening logs) must reach every logger.
        cache_logger_on_first_use=False,
    )
    return concrete
