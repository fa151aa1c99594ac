"""Reliability suite plumbing: round counts (normal or soak) and the counts report.

Normal runs stay within a minute in total. A soak run multiplies every loop:
`uv run pytest tests/reliability --soak 20 --timeout 0` (the option lives in the root conftest,
where pytest honours `pytest_addoption`), or `TREADMILLD_SOAK=20` in the environment.
`--timeout 0` lifts every per-test time limit, module and test markers included (the root
conftest's collection hook; tests/reliability/test_soak_timeouts.py).

Every test records what it survived in `survived`; the totals are printed at the end of the run
(`reliability: 12 link drops survived, ...`) and, when `TREADMILLD_RELIABILITY_REPORT` names a
file, written there as JSON for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.support.broker import mosquitto_broker, mqtt_broker
from tests.support.history_state import migrated_database, migrated_history

__all__ = ["migrated_database", "migrated_history", "mosquitto_broker", "mqtt_broker"]
_COUNTS: Counter[str] = Counter()


def soak_factor(config: pytest.Config | None = None) -> int:
    """How many times longer than a normal run every loop runs (1 = normal): `--soak N` when
    the root conftest defines it, else `TREADMILLD_SOAK`."""
    option = config.getoption("soak", default=None) if config is not None else None
    raw = str(option) if option is not None else os.environ.get("TREADMILLD_SOAK", "").strip()
    if not raw:
        return 1
    try:
        factor = int(raw)
    except ValueError as exc:
        raise pytest.UsageError(
            f"TREADMILLD_SOAK must be a whole number of rounds multiplier, got {raw!r}"
        ) from exc
    if factor < 1:
        raise pytest.UsageError(f"TREADMILLD_SOAK must be at least 1, got {factor}")
    return factor


class Survived:
    """What one test went through; totals are summed across the whole run."""

    def add(self, what: str, count: int = 1) -> None:
        _COUNTS[what] += count


@pytest.fixture
def survived() -> Survived:
    return Survived()


@pytest.fixture
def rounds(request: pytest.FixtureRequest) -> int:
    """Multiplier for loop counts: 1 normally, N when soaking."""
    return soak_factor(request.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _COUNTS:
        return
    summary = ", ".join(f"{count} {what}" for what, count in sorted(_COUNTS.items()))
    factor = soak_factor(terminalreporter.config)
    terminalreporter.write_line(f"reliability (soak x{factor}): {summary}")
    report = os.environ.get("TREADMILLD_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(
            json.dumps({"soak": factor, "counts": dict(_COUNTS)}, indent=2) + "\n",
            encoding="utf-8",
        )
