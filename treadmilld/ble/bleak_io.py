"""The daemon's only contact with bleak (and bleak-retry-connector).

Implements the `treadmilld.ble.gatt` seam: scanning, finding one device, connecting with bounded
attempts, and a `GattConnection` over a `BleakClient`. Backend classes (the simulator's) come in
through bleak's `backend=` hook; with none, bleak picks the platform backend (BlueZ on a Pi).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from bleak_retry_connector import establish_connection

from treadmilld.ble.gatt import (
    Advertisement,
    ConnectFailedError,
    FirstMatch,
    FoundDevice,
    GattConnection,
    GattError,
    NotificationCallback,
    merge_advertisements,
)
from treadmilld.runtime.clock import Clock

ScannerBackend = type[BaseBleakScanner]
ClientBackend = type[BaseBleakClient]

# What a BLE stack raises besides BleakError when a link dies under an operation: D-Bus socket
# errors on BlueZ (EOFError, BrokenPipeError is an OSError), timeouts of the stack itself.
_IO_ERRORS = (BleakError, TimeoutError, OSError, EOFError)

_log = structlog.get_logger(__name__)

# How long `find` holds a match whose name or service data is still missing, for its scan
# response. With active scanning (bleak's default) the scan response follows the advertisement
# within the same advertising event, milliseconds later; a second covers slow advertisers and
# costs only decks that advertise no service data at all.
SCAN_RESPONSE_WAIT_S = 1.0


def _normalized(uuid: str) -> str:
    try:
        return normalize_uuid_str(uuid)
    except ValueError:
        return uuid.lower()


def advertisement_from_bleak(device: BLEDevice, adv: AdvertisementData) -> Advertisement:
    """Bleak's advertisement in our terms, with every UUID in full 128-bit form."""
    return Advertisement(
        address=device.address,
        name=adv.local_name or device.name,
        rssi=adv.rssi,
        service_uuids=tuple(_normalized(u) for u in adv.service_uuids),
        service_data={_normalized(u): bytes(v) for u, v in adv.service_data.items()},
    )


class BleakGattConnection:
    """A connected `BleakClient` behind the `GattConnection` seam."""

    def __init__(self, client: BleakClient) -> None:
        self._client = client

    @property
    def address(self) -> str:
        return self._client.address

    def has_characteristic(self, uuid: str) -> bool:
        try:
            return self._client.services.get_characteristic(uuid) is not None
        except BleakError:
            # Raised when service discovery never completed.
            return False

    def properties(self, uuid: str) -> frozenset[str]:
        try:
            characteristic = self._client.services.get_characteristic(uuid)
        except BleakError:
            return frozenset()
        return frozenset() if characteristic is None else frozenset(characteristic.properties)

    async def read(self, uuid: str) -> bytes:
        try:
            return bytes(await self._client.read_gatt_char(uuid))
        except _IO_ERRORS as error:
            raise GattError(f"reading {uuid} failed: {error!r}") from error

    async def write(self, uuid: str, data: bytes) -> None:
        try:
            await self._client.write_gatt_char(uuid, data, response=True)
        except _IO_ERRORS as error:
            raise GattError(f"writing {data.hex(' ')} to {uuid} failed: {error!r}") from error

    async def write_without_response(self, uuid: str, data: bytes) -> None:
        try:
            await self._client.write_gatt_char(uuid, data, response=False)
        except _IO_ERRORS as error:
            raise GattError(
                f"writing {data.hex(' ')} to {uuid} without response failed: {error!r}"
            ) from error

    async def subscribe(self, uuid: str, callback: NotificationCallback) -> None:
        def deliver(_sender: object, data: bytearray) -> None:
            callback(bytes(data))

        try:
            characteristic = self._client.services.get_characteristic(uuid)
        except BleakError:
            characteristic = None  # service discovery never completed: start_notify says so
        if characteristic is not None and not {"notify", "indicate"} & set(
            characteristic.properties
        ):
            # Checked here rather than left to the stack: BlueZ and Bumble fail this each in
            # their own way, and an optional characteristic that cannot notify is no error.
            raise GattError(f"{uuid} offers neither notifications nor indications")
        try:
            await self._client.start_notify(uuid, deliver)
        except _IO_ERRORS as error:
            raise GattError(f"enabling notifications on {uuid} failed: {error!r}") from error

    async def disconnect(self) -> None:
        try:
            await self._client.disconnect()
        except _IO_ERRORS as error:
            raise GattError(f"disconnecting failed: {error!r}") from error


class BleakGattBackend:
    """Scanning and connecting with bleak, optionally on custom backend classes."""

    def __init__(
        self,
        clock: Clock,
        *,
        scanner_backend: ScannerBackend | None = None,
        client_backend: ClientBackend | None = None,
        scan_response_wait_s: float = SCAN_RESPONSE_WAIT_S,
    ) -> None:
        """`scan_response_wait_s`: how long `find` holds a match whose name or service data is
        still missing, waiting for its scan response (see `find`)."""
        self._clock = clock
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._scan_response_wait_s = scan_response_wait_s

    @contextlib.asynccontextmanager
    async def _scanning(
        self, on_advertisement: Callable[[BLEDevice, AdvertisementData], None]
    ) -> AsyncIterator[None]:
        """A scan running for the body of the `async with`, stopped however the body ends."""
        # No service-UUID filter at the radio: decks without FTMS service data (Toorx, Domyos)
        # must still be heard; our own filters compare full 128-bit UUIDs.
        scanner = BleakScanner(detection_callback=on_advertisement, backend=self._scanner_backend)
        try:
            await scanner.start()
        except _IO_ERRORS as error:
            raise GattError(f"starting a scan failed: {error!r}") from error
        try:
            yield
        finally:
            try:
                await scanner.stop()
            except _IO_ERRORS as error:
                _log.warning("scan_stop_failed", error=repr(error))

    async def find(
        self, matches: Callable[[Advertisement], bool], timeout_s: float
    ) -> FoundDevice | None:
        """The first device `matches` accepts, judged on all it has said so far (`FirstMatch`).

        Bleak scans actively by default, so a deck's scan response follows its advertisement
        within the same advertising event; BlueZ may still report the advertisement first and
        the scan response in a later callback.
        """
        sifter = FirstMatch(matches, self._clock, self._scan_response_wait_s)

        def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
            sifter.heard(advertisement_from_bleak(device, adv), device)

        async with self._scanning(on_advertisement):
            return await sifter.result(timeout_s)

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        heard: dict[str, Advertisement] = {}

        def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
            # Merged per address: service data only in the scan response still counts.
            heard[device.address] = merge_advertisements(
                heard.get(device.address), advertisement_from_bleak(device, adv)
            )

        async with self._scanning(on_advertisement):
            await self._clock.sleep(timeout_s)
        return list(heard.values())

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        if not isinstance(device.handle, BLEDevice):
            raise ConnectFailedError(
                f"cannot connect to {device.advertisement.address}: it was not found by a bleak "
                "scan; scan again"
            )
        fired = False

        def on_bleak_disconnect(_client: BleakClient) -> None:
            nonlocal fired
            if not fired:
                fired = True
                on_disconnect()

        extra: dict[str, Any] = {}
        if self._client_backend is not None:
            extra["backend"] = self._client_backend
        label = device.advertisement.name or device.advertisement.address
        try:
            # establish_connection retries the connect step the way Home Assistant learned to on
            # BlueZ (stale connections, service-cache races, le-connection-abort-by-local). On a
            # custom backend its BlueZ-only steps are skipped. The caller bounds the total time:
            # its own not-found loop can take 36 s (9 x 4 s backoff in bleak-retry-connector 4.7.1).
            client = await establish_connection(
                BleakClient,
                device.handle,
                label,
                disconnected_callback=on_bleak_disconnect,
                max_attempts=attempts,
                **extra,
            )
        except _IO_ERRORS as error:
            raise ConnectFailedError(
                f"connecting to {label} ({device.advertisement.address}) failed: {error}"
            ) from error
        return BleakGattConnection(client)
