"""The heart-rate strap seam: what a strap link reports, and the protocol it keeps.

`treadmilld.ble.strap.BleHeartRateStrap` implements it over bleak (through `ble/gatt.py`);
a test double implements it directly. Nothing here imports bleak.

Rules every implementation keeps:
- Readings are passed on as the strap sent them (a 0, a spike, a value out of any plausible
  range included): judging them is the engine's job, which knows the rider and the profile.
- A malformed notification is logged and dropped; it is no reading and no sign of life.
- Events go out through a bounded `FanOut`: readings are dropped first for a lagging
  subscriber, `StrapConnected` and `StrapLost` never.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from treadmilld.ble.api import ConnectionState, LinkLostCause


@dataclass(frozen=True, slots=True)
class HeartRateReceived:
    """One Heart Rate Measurement: `bpm` as sent, `contact` None when the strap cannot detect
    skin contact, `rr_intervals` in seconds (oldest first, empty when none came), `at` the
    clock time it arrived."""

    bpm: int
    contact: bool | None
    rr_intervals: tuple[float, ...]
    at: float
    energy_expended_kj: int | None = None


@dataclass(frozen=True, slots=True)
class StrapConnected:
    address: str
    name: str | None
    at: float


@dataclass(frozen=True, slots=True)
class StrapLost:
    """The strap's link went down. `cause` is the contract (the treadmill link's causes:
    `NO_DATA` when it went silent for the liveness timeout); `reason` is text for people."""

    cause: LinkLostCause
    reason: str
    at: float


StrapEvent = HeartRateReceived | StrapConnected | StrapLost


@runtime_checkable
class HeartRateStrap(Protocol):
    """One heart-rate strap, found, connected and reconnected by itself while `run` runs."""

    @property
    def strap_id(self) -> str: ...

    @property
    def connection_state(self) -> ConnectionState: ...

    @property
    def latest(self) -> HeartRateReceived | None:
        """The last reading received (kept across reconnects), or None."""
        ...

    def events(self) -> AsyncIterator[StrapEvent]:
        """A new subscription to everything published from now on; it ends after `close`."""
        ...

    async def run(self) -> None:
        """Find, connect, watch and reconnect until `close`."""
        ...

    async def close(self) -> None: ...
