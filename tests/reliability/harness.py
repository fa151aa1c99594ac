"""Shared pieces of the reliability suite: virtual-time runner and a GATT tap for fuzzing.

`GarblesNotifications` implements our own GATT seam (`treadmilld.ble.gatt.GattBackend`) around
the real bleak backend on the simulator: everything real still flows, and a test can push any
bytes into the link's notification path exactly where a treadmill's notifications enter it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from treadmilld.ble.gatt import (
    Advertisement,
    FoundDevice,
    GattBackend,
    GattConnection,
    NotificationCallback,
)
from treadmilld.runtime.clock import VirtualTimeEventLoop

T = TypeVar("T")


def run_in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on a VirtualTimeEventLoop: backoffs and liveness timeouts cost nothing."""
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


class _TappedConnection:
    """A real connection whose notification callbacks the test can also call."""

    def __init__(self, inner: GattConnection, taps: dict[str, NotificationCallback]) -> None:
        self._inner = inner
        self._taps = taps

    @property
    def address(self) -> str:
        return self._inner.address

    def has_characteristic(self, uuid: str) -> bool:
        return self._inner.has_characteristic(uuid)

    async def read(self, uuid: str) -> bytes:
        return await self._inner.read(uuid)

    async def write(self, uuid: str, data: bytes) -> None:
        await self._inner.write(uuid, data)

    def properties(self, uuid: str) -> frozenset[str]:
        return self._inner.properties(uuid)

    async def write_without_response(self, uuid: str, data: bytes) -> None:
        await self._inner.write_without_response(uuid, data)

    async def subscribe(self, uuid: str, callback: NotificationCallback) -> None:
        self._taps[uuid] = callback
        await self._inner.subscribe(uuid, callback)

    async def disconnect(self) -> None:
        await self._inner.disconnect()


class GarblesNotifications:
    """A GATT backend that lets a test inject arbitrary notification bytes (a hostile deck)."""

    def __init__(self, inner: GattBackend) -> None:
        self._inner = inner
        self._taps: dict[str, NotificationCallback] = {}
        self.injected = 0

    async def find(
        self, matches: Callable[[Advertisement], bool], timeout_s: float
    ) -> FoundDevice | None:
        return await self._inner.find(matches, timeout_s)

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        return await self._inner.scan(timeout_s)

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        self._taps.clear()
        connection = await self._inner.connect(
            device, attempts=attempts, on_disconnect=on_disconnect
        )
        return _TappedConnection(connection, self._taps)

    @property
    def subscribed(self) -> frozenset[str]:
        return frozenset(self._taps)

    def inject(self, uuid: str, data: bytes) -> None:
        """Deliver `data` as if the treadmill had notified it on `uuid`."""
        self._taps[uuid](data)
        self.injected += 1


def random_payload(rng: random.Random, *, around: bytes = b"") -> bytes:
    """Bytes a broken or hostile deck might send: empty, short, long, or a real payload with
    bytes flipped, cut or appended (mutations of real data reach deeper into the decoders)."""
    shape = rng.randrange(5)
    if shape == 0:
        return b""
    if shape == 1 or not around:
        return rng.randbytes(rng.randrange(1, 40))
    mutated = bytearray(around)
    if shape == 2:
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        return bytes(mutated)
    if shape == 3:
        return bytes(mutated[: rng.randrange(len(mutated))])
    return bytes(mutated) + rng.randbytes(rng.randrange(1, 8))
