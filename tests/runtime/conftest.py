"""Runtime tests run in virtual time: deadlines of seconds or hours cost nothing, and the clock
reads exactly when each wait ended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from treadmilld.runtime.clock import VirtualTimeEventLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    del config, item
    return {"virtual_time": VirtualTimeEventLoop}
