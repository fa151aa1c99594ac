"""Log lines: one renderer for our events and the libraries' stdlib logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path

import pytest
import structlog

from treadmilld.app.log_setup import LogFormat, LogLevel, configure_logging
from treadmilld.engine.api import Phase


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


class _Code(IntEnum):
    OPERATION_FAILED = 4


def emit_values() -> None:
    structlog.get_logger().info(
        "segment_started",
        treadmill_id="tm01",
        phase=Phase.RUNNING,
        result=_Code.OPERATION_FAILED,
        distance_m=530.3006451800551,
        answer_s=0.000123456,
        treadmills=["tm01", "tm02"],
        connections={"tm01": "connected", "tm02": Phase.IDLE},
        config=Path("/etc/treadmilld/config.toml"),
    )


@pytest.mark.parametrize("log_format", [LogFormat.LOGFMT, LogFormat.CONSOLE])
def test_text_lines_show_values_not_python_reprs(log_file: Path, log_format: LogFormat) -> None:
    with log_file.open("w", encoding="utf-8") as stream:
        configure_logging(log_format, LogLevel.INFO, stream=stream, environ={})
        emit_values()
    line = log_file.read_text(encoding="utf-8")
    for shown in (
        "phase=running",
        "result=operation_failed",
        "distance_m=530.301",
        "answer_s=0.000123",
        "treadmills=tm01,tm02",
        "config=/etc/treadmilld/config.toml",
    ):
        assert shown in line, (shown, line)
    assert "tm01: connected, tm02: idle" in line
    for repr_only in ("<Phase", "<_Code", "PosixPath", "['tm01'", "{'tm01'", "530.3006"):
        assert repr_only not in line, (repr_only, line)


def test_json_lines_keep_structure_with_values(log_file: Path) -> None:
    with log_file.open("w", encoding="utf-8") as stream:
        configure_logging(LogFormat.JSON, LogLevel.INFO, stream=stream, environ={})
        emit_values()
    record = json.loads(log_file.read_text(encoding="utf-8"))
    assert record["phase"] == "running"
    assert record["result"] == "operation_failed"
    assert record["distance_m"] == 530.301
    assert record["answer_s"] == 0.000123
    assert record["treadmills"] == ["tm01", "tm02"]
    assert record["connections"] == {"tm01": "connected", "tm02": "idle"}
    assert record["config"] == "/etc/treadmilld/config.toml"


def test_an_exception_still_renders_its_traceback(log_file: Path) -> None:
    with log_file.open("w", encoding="utf-8") as stream:
        configure_logging(LogFormat.LOGFMT, LogLevel.INFO, stream=stream, environ={})
        try:
            int("boom")
        except ValueError:
            structlog.get_logger().exception("mqtt_command_failed", treadmill_id="tm01")
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback" in text
    assert "ValueError: invalid literal for int() with base 10: 'boom'" in text
