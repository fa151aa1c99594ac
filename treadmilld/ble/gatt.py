"""The small GATT seam between the FTMS client and bleak.

`treadmilld.ble.bleak_io` implements it over bleak (the only module that imports bleak); the
client, discovery and their unit tests only see these protocols and plain dataclasses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_any

NotificationCallback = Callable[[bytes], None]

# Characteristic properties as bleak spells them (`BleakGATTCharacteristic.properties`, after
# BlueZ's GattCharacteristic1 "Flags"); the ones the client looks at.
PROPERTY_WRITE = "write"
PROPERTY_WRITE_WITHOUT_RESPONSE = "write-without-response"
PROPERTY_NOTIFY = "notify"
PROPERTY_INDICATE = "indicate"


class GattError(Exception):
    """A GATT operation failed (ATT error, link gone, backend error); the message says which."""


class ConnectFailedError(GattError):
    """Connecting to a found device failed after the configured attempts."""


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What one device advertised, with UUIDs normalised to full 128-bit lowercase strings."""

    address: str
    name: str | None
    rssi: int | None
    service_uuids: tuple[str, ...] = ()
    service_data: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A device seen on air, ready to connect to. `handle` is the backend's own device object."""

    advertisement: Advertisement
    handle: object


class GattConnection(Protocol):
    """One live connection. Every method raises `GattError` on failure."""

    @property
    def address(self) -> str: ...

    def has_characteristic(self, uuid: str) -> bool: ...

    def properties(self, uuid: str) -> frozenset[str]:
        """The characteristic's properties (`PROPERTY_WRITE`, ...); empty when it is absent."""
        ...

    async def read(self, uuid: str) -> bytes: ...

    async def write(self, uuid: str, data: bytes) -> None:
        """Write with response (ATT Write Request): the peer acknowledges, or refuses with an
        ATT error. A stack refuses it on a characteristic without the Write property."""
        ...

    async def write_without_response(self, uuid: str, data: bytes) -> None:
        """Write without response (ATT Write Command): nothing comes back at the ATT level.
        For characteristics with only Write Without Response (Urevo E1L's Control Point)."""
        ...

    async def subscribe(self, uuid: str, callback: NotificationCallback) -> None:
        """Enable notifications or indications; `callback` runs in the event loop thread and
        must only enqueue."""
        ...

    async def disconnect(self) -> None: ...


class GattBackend(Protocol):
    """Finds devices and opens connections."""

    async def find(
        self, matches: Callable[[Advertisement], bool], timeout_s: float
    ) -> FoundDevice | None:
        """The first advertising device `matches` accepts, or None after `timeout_s`.

        `matches` sees everything heard from one address so far, merged
        (`merge_advertisements`): a scan response adds to its advertisement. A match whose
        name or service data is still missing may be held briefly for its scan response
        (implementation-defined), so a deck is not taken on half of what it says."""
        ...

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        """Everything heard during `timeout_s`, one merged advertisement per address."""
        ...

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        """Connect with up to `attempts` tries; `on_disconnect` fires (once) when the link goes
        down for any reason, including our own disconnect. Raises `ConnectFailedError`. The caller
        bounds the total time."""
        ...


def merge_advertisements(older: Advertisement | None, newer: Advertisement) -> Advertisement:
    """What one address has said so far: `newer` on top of `older`.

    A deck may put its FTMS service data or its name only in the scan response (Urevo E1L:
    service data `01 01 00` only there, blak3r/treadspan `protocol-analysis/urevo-E1L`). BlueZ
    already accumulates a device's properties, other stacks report each packet on its own; this
    makes both look the same. Newer values win; nothing heard earlier is forgotten.
    """
    if older is None or older.address != newer.address:
        return newer
    added = tuple(u for u in newer.service_uuids if u not in older.service_uuids)
    uuids = older.service_uuids + added
    return Advertisement(
        address=newer.address,
        name=newer.name if newer.name is not None else older.name,
        rssi=newer.rssi if newer.rssi is not None else older.rssi,
        service_uuids=uuids,
        service_data={**older.service_data, **newer.service_data},
    )


class FirstMatch:
    """Which device a `find` returns, from the advertisements heard (no bleak in here).

    Everything one address says is merged (`merge_advertisements`) and judged as a whole. A
    match still missing its name or any service data is held for up to `scan_response_wait_s`
    for its scan response: if the rest arrives it is judged again (a deck whose service data
    says "not available", or a bike, stops matching), otherwise it is taken as heard (decks
    that advertise no service data at all: Toorx, Domyos). A complete match is taken at once.
    """

    def __init__(
        self, matches: Callable[[Advertisement], bool], clock: Clock, scan_response_wait_s: float
    ) -> None:
        self._matches = matches
        self._clock = clock
        self._wait_s = scan_response_wait_s
        self._found: asyncio.Future[FoundDevice] = asyncio.get_running_loop().create_future()
        self._heard: dict[str, Advertisement] = {}
        self._held: dict[str, FoundDevice] = {}
        self._releases: set[asyncio.Task[None]] = set()

    def heard(self, advertisement: Advertisement, handle: object) -> None:
        """One advertisement or scan response; called from the scanner's callback."""
        if self._found.done():
            return
        address = advertisement.address
        merged = merge_advertisements(self._heard.get(address), advertisement)
        self._heard[address] = merged
        if not self._matches(merged):
            self._held.pop(address, None)  # what came later says it is not the one
            return
        candidate = FoundDevice(advertisement=merged, handle=handle)
        complete = merged.name is not None and bool(merged.service_data)
        if complete or self._wait_s <= 0:
            self._found.set_result(candidate)
            return
        if address not in self._held:
            task = asyncio.get_running_loop().create_task(self._release(address))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
        self._held[address] = candidate

    async def _release(self, address: str) -> None:
        await self._clock.sleep(self._wait_s)
        candidate = self._held.pop(address, None)
        if candidate is not None and not self._found.done():
            self._found.set_result(candidate)

    async def result(self, timeout_s: float) -> FoundDevice | None:
        """The device found within `timeout_s` (of clock time), or None."""
        try:
            await wait_any(futures=(self._found,), seconds=timeout_s, clock=self._clock)
        finally:
            for task in list(self._releases):
                task.cancel()
        if self._found.done():
            return self._found.result()
        # The time ran out while a match waited for its scan response: it did match.
        return next(iter(self._held.values()), None)
