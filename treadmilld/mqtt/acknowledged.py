"""The link's acknowledged operations (subscribe, QoS 1 publish), awaited so that cancelling
the caller always works.

aiomqtt waits for acknowledgements with `asyncio.wait_for`, which on Python 3.11 can swallow a
cancellation that lands as the acknowledgement arrives (CPython gh-86296); a swallowed cancel
left a TaskGroup waiting forever. Awaiting through a shield (`treadmilld.runtime.background`)
delivers the caller's cancellation reliably; the operation itself finishes in the background
and its outcome is retrieved there.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import structlog

from treadmilld.runtime.background import Background

_log = structlog.get_logger(__name__)

T = TypeVar("T")


class AcknowledgedOperations:
    """Operations in flight on one link; each finishes even when its caller has left."""

    def __init__(self) -> None:
        self._inflight = Background(
            on_error=lambda error: _log.debug(
                "mqtt_operation_failed_after_caller_left", error=str(error)
            )
        )

    async def wait(self, operation: Awaitable[T]) -> T:
        """`operation`'s result; cancelling the caller cancels the wait, not the operation."""
        return await self._inflight.shielded(operation)
