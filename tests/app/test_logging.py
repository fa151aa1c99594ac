"""Log lines: one renderer for our events and the libraries' stdlib logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from treadmilld.app.logging import LogFormat, LogLevel, configure_logging


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "log.txt"
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            root.removeHandler(handler)
            handler.close()
    structlog.reset_defaults()


def emit_sample() -> None:
    structlog.contextvars.bind_contextvars(treadmill_id="tm01")
    structlog.get_logger().info("segment_started", index=2)
    logging.getLogger("bleak.backends.bluezdbus").warning("device %s vanished", "AA:BB")
    logging.getLogger("bumble.host").info("chatty detail")


def test_under_journald_logfmt_has_no_timestamp_and_carries_treadmill_id(log_file: Path) -> None:
    with log_file.open("w", encoding="utf-8") as stream:
        stat = os.fstat(stream.fileno())
        chosen = configure_logging(
            LogFormat.AUTO,
            LogLevel.INFO,
            stream=stream,
            environ={"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"},
        )
        emit_sample()
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert chosen is LogFormat.LOGFMT
    assert lines[0].startswith("level=info event=segment_started treadmill_id=tm01")
    assert "timestamp" not in lines[0]
    # bleak's stdlib warning went through the same renderer, with the same context.
    assert lines[1].startswith('level=warning event="device AA:BB vanished" treadmill_id=tm01')
    assert "logger=bleak.backends.bluezdbus" in lines[1]
    # bumble below the library level is filtered out.
    assert len(lines) == 2


def test_json_in_a_pipe_has_a_timestamp(log_file: Path) -> None:
    with log_file.open("w", encoding="utf-8") as stream:
        configure_logging(LogFormat.JSON, LogLevel.INFO, stream=stream, environ={})
        emit_sample()
    records = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert records[0]["event"] == "segment_started"
    assert records[0]["treadmill_id"] == "tm01"
    assert records[0]["index"] == 2
    assert "timestamp" in records[0]
    assert records[1]["logger"] == "bleak.backends.bluezdbus"


def test_auto_in_a_pipe_is_logfmt_and_level_filters(log_file: Path) -> None:
    with log_file.open("w", encoding="utf-8") as stream:
        chosen = configure_logging(LogFormat.AUTO, LogLevel.WARNING, stream=stream, environ={})
        emit_sample()
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert chosen is LogFormat.LOGFMT
    assert len(lines) == 1
    assert "vanished" in lines[0]
