"""Shared test configuration. Fixtures used by several layers live in tests/support/."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Hypothesis profiles. `HYPOTHESIS_PROFILE=soak` (or `--hypothesis-profile soak`) runs the
# property tests that do not fix their own number of examples with
# TREADMILLD_PROPERTY_EXAMPLES examples each (default 20,000) and no deadline, e.g. the engine's
# measured-belt properties (docs/reliability.md). Without it they run their own modest default.
settings.register_profile(
    "soak",
    max_examples=int(os.environ.get("TREADMILLD_PROPERTY_EXAMPLES", "20000")),
    deadline=None,
    # A failure found after hours of search prints a `@reproduce_failure` blob, so it can be
    # replayed at once instead of regenerating every example before it from the seed.
    print_blob=True,
)
# CI (`CI=true`, as .ci/run is run) explores a fixed set of examples: a red run then means a
# change broke something, never that this run drew an old counterexample. The random search
# for new ones is the soak profile's job (docs/reliability.md lists what it found).
settings.register_profile("ci", max_examples=100, derandomize=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
elif os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _state_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon keeps its SQLite history in $STATE_DIRECTORY (treadmilld/store/config.py):
    # every test's daemon, in process or a child, gets a folder of its own, never
    # /var/lib/treadmilld.
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.mktemp("state")))


def pytest_addoption(parser: pytest.Parser) -> None:
    # Options must be declared in the root conftest; tests/reliability reads this one.
    parser.addoption(
        "--soak",
        type=int,
        default=None,
        metavar="N",
        help="repeat every reliability loop N times (a long run that prints its counts)",
    )


def time_limits_lifted(config: pytest.Config) -> bool:
    """Whether this run asked for no per-test time limit: `--timeout 0`, or `PYTEST_TIMEOUT=0`
    when the option is not given (pytest-timeout's own order of precedence)."""
    timeout = config.getoption("timeout", default=None)
    if timeout is None:
        timeout = os.environ.get("PYTEST_TIMEOUT", "").strip() or None
    return timeout is not None and float(timeout) == 0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-timeout lets the closest `timeout` marker win over the command line, so a module's
    # `pytestmark = pytest.mark.timeout(90)` would still kill a soak run given `--timeout 0`.
    # A marker put first on the item itself is the closest there is; 0 means no limit.
    if not time_limits_lifted(config):
        return
    for item in items:
        item.add_marker(pytest.mark.timeout(0), append=False)
