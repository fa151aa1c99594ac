"""Finding a device by its advertisement and connecting to it, bounded on the clock: the first
step of every link (a treadmill's in `connection_setup.py`, a heart-rate strap's in
`strap.py`), written once. What the device is called and what a person should check come
from the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

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
    """Finding or connecting failed; `hint` says what a person should check."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


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


async def find_and_connect(
    gatt: GattBackend,
    matches: Callable[[Advertisement], bool],
    *,
    looking_for: str,
    scan_timeout_s: float,
    connect_timeout_s: float,
    connect_attempts: int,
    clock: Clock,
    hints: ConnectHints,
    on_late_connection: Callable[[GattConnection], None],
) -> ConnectedDevice:
    """The first device `matches` accepts within `scan_timeout_s`, connected within
    `connect_timeout_s` (a connect that finishes later is handed to `on_late_connection`, to
    let the device go). `looking_for` names it for a person ("a treadmill with name
    containing 'KS'"). Raises `DeviceConnectError`."""
    try:
        found = await gatt.find(matches, scan_timeout_s)
    except GattError as error:
        raise DeviceConnectError(str(error), hints.no_adapter) from error
    if found is None:
        raise DeviceConnectError(
            f"no {looking_for} heard within {scan_timeout_s:g} s", hints.not_found
        )
    address = found.advertisement.address
    name = found.advertisement.name
    disconnected = asyncio.Event()
    try:
        connection = await wait_for_on_clock(
            gatt.connect(found, attempts=connect_attempts, on_disconnect=disconnected.set),
            connect_timeout_s,
            clock,
            on_late_result=on_late_connection,
        )
    except TimeoutError:
        raise DeviceConnectError(
            f"connecting to {name or address} ({address}) took longer than {connect_timeout_s:g} s",
            hints.connect,
        ) from None
    except ConnectFailedError as error:
        raise DeviceConnectError(str(error), hints.connect) from error
    return ConnectedDevice(connection, address, name, disconnected)
