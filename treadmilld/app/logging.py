"""structlog, configured once for the whole process.

- On a terminal: structlog's readable console renderer.
- Under journald (`JOURNAL_STREAM` names our stderr): logfmt (or JSON) without a timestamp,
  because the journal stamps every line itself.
- Anywhere else (a pipe, a file): logfmt (or JSON) with an ISO timestamp.

The stdlib loggers of bleak, aiomqtt, bumble and amqtt go through the same renderer, so one
line format reaches the journal. Context bound with `structlog.contextvars` (the supervisor
binds `treadmill_id` in each treadmill's tasks) appears on every line logged in that task.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from enum import StrEnum
from typing import TextIO

import structlog
from structlog.typing import Processor

# Libraries whose stdlib logs we route through our renderer, at `library_level` by default:
# at INFO they narrate every GATT read and MQTT packet.
LIBRARY_LOGGERS = ("bleak", "bleak_retry_connector", "aiomqtt", "paho", "bumble", "amqtt")


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
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
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
