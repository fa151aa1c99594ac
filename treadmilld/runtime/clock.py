"""Injected time.

Every part that waits or measures time (the engine, the safety governor, the link's liveness
check, the simulator's physics) takes a `Clock`, so a whole profile can run:

- in real time on the Pi (`LoopClock` on a normal event loop: monotonic seconds);
- in virtual time in CI (`LoopClock` on a `VirtualTimeEventLoop`: when nothing is ready to run
  the loop jumps straight to the next timer, so a 45-minute profile takes about a second);
- sped up for the demo (`ScaledClock`: profile time runs N times faster than wall time while
  sockets, MQTT keepalives and everything else stay in real time).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike


@runtime_checkable
class Clock(Protocol):
    """Seconds on one monotonic time base, and a way to wait on it."""

    def now(self) -> float:
        """The current time in seconds; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time (a non-positive value just yields)."""
        ...


class LoopClock:
    """The running event loop's own clock: real time normally, virtual on a virtual loop."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Time that runs `speedup` times faster than the event loop's clock (for the demo)."""

    def __init__(self, speedup: float) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be positive, got {speedup}; use 1 for real time")
        self.speedup = speedup
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.speedup

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speedup)


class _TimeWarpSelector(selectors.BaseSelector):
    """Wraps the real selector; instead of blocking until the next timer, jumps time forward."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeEventLoop) -> None:
        self._inner = inner
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            # Nothing scheduled (wait for real I/O) or something is ready now: behave normally.
            return self._inner.select(timeout)
        ready = self._inner.select(0)
        if not ready:
            # Idle until the next timer: that timer's moment arrives now, in virtual time.
            self._loop.advance(timeout)
        return ready

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is waiting on a timer.

    Only in-process work (the simulator on Bumble's in-memory link, the engine) is safe here:
    real sockets would see their peers' replies arrive "late" in virtual time.
    """

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_TimeWarpSelector(selectors.DefaultSelector(), self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        # Timers are compared with `end_time = time() + clock_resolution`; add a hair so the
        # timer we jumped to is due, not a rounding error away from due.
        self._virtual_now += seconds + 1e-9
