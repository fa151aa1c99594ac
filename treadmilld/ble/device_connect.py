"""Finding a device by its advertisement and connecting to it, bounded on the clock: the first
step of every link (a treadmill's in `connection_setup.py`, a heart-rate strap's in
`strap.py`), written once, as is letting the device go again. What the device is called and
what a person should check come from the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from treadmilld.ble.gatt import (
    Advertisement,
    ConnectFailedError,
    GattBackend,
    GattConnection,
    GattError,
)
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_for_on_clock

# What to check when there is no Bluetooth to scan with, whatever the device.
NO_ADAPTER_HINT = "is Bluetooth available (adapter present and powered, BlueZ running)?"


class DeviceConnectError(Exception):
    """One connect step failed (finding, connecting, or the link's own set-up after it); `hint`
    says what a person should check. `DeviceLink` backs off and tries again."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class ConnectLimits(Protocol):
    """How long finding and connecting may take (`LinkSettings`, `StrapLinkSettings`)."""

    @property
    def scan_timeout_s(self) -> float: ...
    @property
    def connect_timeout_s(self) -> float: ...
    @property
    def connect_attempts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ConnectHints:
    """What to tell a person when a step fails, in the words of the kind of device."""

    no_adapter: str
    not_found: str
    connect: str


@dataclass(frozen=True, slots=True)
class ConnectedDevice:
    connection: GattConnection
    address: str
    name: str | None
    disconnected: asyncio.Event  # set when the device drops the connection


class DeviceConnector:
    """How one link reaches its device, each time: found by its advertisement and connected
    within the link's limits, failures worded for its kind of device, and let go again."""

    def __init__(
        self,
        gatt: GattBackend,
        limits: ConnectLimits,
        *,
        clock: Clock,
        hints: ConnectHints,
        on_late_connection: Callable[[GattConnection], None],
    ) -> None:
        """A connect that finishes after its timeout is handed to `on_late_connection`, to
        let the device go."""
        self._gatt = gatt
        self._limits = limits
        self._clock = clock
        self._hints = hints
        self._on_late_connection = on_late_connection

    async def connect(
        self, matches: Callable[[Advertisement], bool], looking_for: str
    ) -> ConnectedDevice:
        """The first device `matches` accepts within `limits.scan_timeout_s`, connected within
        `limits.connect_timeout_s`. `looking_for` names it for a person ("a treadmill with
        name containing 'KS'"). Raises `DeviceConnectError`."""
        hints = self._hints
        scan_timeout_s = self._limits.scan_timeout_s
        connect_timeout_s = self._limits.connect_timeout_s
        try:
            found = await self._gatt.find(matches, scan_timeout_s)
        except GattError as error:
            raise DeviceConnectError(str(error), hints.no_adapter) from error
        if found is None:
            raise DeviceConnectError(
                f"no {looking_for} heard within {scan_timeout_s:g} s", hints.not_found
            )
        address = found.advertisement.address
        name = found.advertisement.name
        disconnected = asyncio.Event()
        attempts = self._limits.connect_attempts
        try:
            connection = await wait_for_on_clock(
                self._gatt.connect(found, attempts=attempts, on_disconnect=disconnected.set),
                connect_timeout_s,
                self._clock,
                on_late_result=self._on_late_connection,
            )
        except TimeoutError:
            raise DeviceConnectError(
                f"connecting to {name or address} ({address}) took longer than "
                f"{connect_timeout_s:g} s",
                hints.connect,
            ) from None
        except ConnectFailedError as error:
            raise DeviceConnectError(str(error), hints.connect) from error
        return ConnectedDevice(connection, address, name, disconnected)

    async def let_go(self, connection: GattConnection) -> str | None:
        """Disconnect within `limits.connect_timeout_s`: None once done, else why not, for the
        caller to log. A device that does not answer is given up on; the link goes on."""
        try:
            await wait_for_on_clock(
                connection.disconnect(), self._limits.connect_timeout_s, self._clock
            )
        except (GattError, TimeoutError) as error:
            return str(error) or "timed out"
        return None
