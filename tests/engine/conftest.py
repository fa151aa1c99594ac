"""Engine tests run in virtual time: a 45-minute profile takes well under a second, because a
VirtualTimeEventLoop jumps to the next timer whenever every task is waiting on one."""

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
