"""Shared test configuration. Fixtures used by several layers live in tests/support/."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    # Options must be declared in the root conftest; tests/reliability reads this one.
    parser.addoption(
        "--soak",
        type=int,
        default=None,
        metavar="N",
        help="repeat every reliability loop N times (a long run that prints its counts)",
    )
