"""A soak run's `--timeout 0` lifts every per-test time limit.

pytest-timeout prefers the closest `timeout` marker to the command line, so without the root
conftest's collection hook a module's `pytestmark = pytest.mark.timeout(90)` would still kill a
soak run given `--timeout 0`. Each test here runs a tiny suite in a fresh pytest process that
loads the real root conftest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

# Each inner test takes five times its limit, so the outcome alone shows whether the limit held.
SLOW_SUITE = """
import time

import pytest

pytestmark = pytest.mark.timeout(0.2)


def test_under_the_module_marker():
    time.sleep(1.0)


@pytest.mark.timeout(0.2)
def test_with_its_own_marker():
    time.sleep(1.0)
"""


@pytest.fixture
def slow_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # so `-p tests.conftest` finds this checkout's
    monkeypatch.delenv("PYTEST_TIMEOUT", raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_slow=SLOW_SUITE)
    return pytester


def test_soak_with_timeout_zero_runs_tests_past_their_timeout_markers(
    slow_suite: pytest.Pytester,
) -> None:
    result = slow_suite.runpytest_subprocess(
        "-p", "tests.conftest", "--soak", "2", "--timeout", "0"
    )
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("timeout", [[], ["--timeout", "30"]], ids=["no-timeout", "timeout-30"])
def test_without_timeout_zero_the_timeout_markers_still_hold(
    slow_suite: pytest.Pytester, timeout: list[str]
) -> None:
    result = slow_suite.runpytest_subprocess("-p", "tests.conftest", "--soak", "2", *timeout)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*Timeout (>0.2s) from pytest-timeout*"] * 2)
