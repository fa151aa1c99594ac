"""The small GATT seam between the FTMS client and bleak.

`treadmilld.ble.bleak_io` implements it over bleak (the only module that imports bleak); the
client, discovery and their unit tests only see these protocols and plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

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
        """The first advertising device `matches` accepts, or None after `timeout_s`."""
        ...

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        """Everything heard during `timeout_s` (latest advertisement per address)."""
        ...

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        """Connect with up to `attempts` tries; `on_disconnect` fires (once) when the link goes
        down for any reason, including our own disconnect. Raises `ConnectFailedError`. The caller
        bounds the total time."""
        ...
