"""Pins the bleak backend API the simulator's backend implements.

bleak says its backend API "may change without notice" (docs/backends/index.rst) and it did in
1.0, 3.0 and 3.1. When one of these fails after a bleak upgrade, update
`treadmilld_sim/scanner_backend.py` and `client_backend.py` to the new contract first, then the
expected values here.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService
from treadmilld_sim import SimulatedRadio, make_backends

_CHARACTERISTIC = "bleak.backends.characteristic.BleakGATTCharacteristic"
_DESCRIPTOR = "bleak.backends.descriptor.BleakGATTDescriptor"

CLIENT_CONTRACT = {
    "__init__": (
        "(self, address_or_ble_device: bleak.backends.device.BLEDevice | str, *, "
        "disconnected_callback: collections.abc.Callable[[], None] | None, timeout: float, "
        "**kwargs: Any) -> None"
    ),
    "connect": "(self, pair: bool, **kwargs: Any) -> None",
    "disconnect": "(self) -> None",
    "is_connected": "(self) -> bool",
    "mtu_size": "(self) -> int",
    "name": "(self) -> str",
    "pair": "(self, *args: Any, **kwargs: Any) -> None",
    "read_gatt_char": (
        f"(self, characteristic: {_CHARACTERISTIC}, *, use_cached: bool = False, "
        "**kwargs: Any) -> bytearray"
    ),
    "read_gatt_descriptor": (
        f"(self, descriptor: {_DESCRIPTOR}, *, use_cached: bool = False, "
        "**kwargs: Any) -> bytearray"
    ),
    "start_notify": (
        f"(self, characteristic: {_CHARACTERISTIC}, "
        "callback: collections.abc.Callable[[bytearray], None], **kwargs: Any) -> None"
    ),
    "stop_notify": f"(self, characteristic: {_CHARACTERISTIC}) -> None",
    "unpair": "(self) -> None",
    "write_gatt_char": (
        f"(self, characteristic: {_CHARACTERISTIC}, data: bleak.args.SizedBuffer, "
        "response: bool) -> None"
    ),
    "write_gatt_descriptor": (
        f"(self, descriptor: {_DESCRIPTOR}, data: bleak.args.SizedBuffer) -> None"
    ),
}

SCANNER_CONTRACT = {
    "start": "(self) -> None",
    "stop": "(self) -> None",
    "is_allowed_uuid": "(self, service_uuids: Optional[list[str]]) -> bool",
    "call_detection_callbacks": (
        "(self, device: bleak.backends.device.BLEDevice, "
        "advertisement_data: bleak.backends.scanner.AdvertisementData) -> None"
    ),
    "create_or_update_device": (
        "(self, key: str, address: str, name: Optional[str], details: Any, "
        "adv: bleak.backends.scanner.AdvertisementData) -> bleak.backends.device.BLEDevice"
    ),
}


def _signature(cls: type, name: str) -> str:
    member: Any = inspect.getattr_static(cls, name)
    function: Any = member.fget if isinstance(member, property) else member
    return str(inspect.signature(function))


def test_client_abstract_members_are_the_ones_we_implement() -> None:
    expected = set(CLIENT_CONTRACT) - {"__init__", "name"}
    assert BaseBleakClient.__abstractmethods__ == expected


def test_scanner_abstract_members_are_the_ones_we_implement() -> None:
    assert BaseBleakScanner.__abstractmethods__ == {"start", "stop"}


@pytest.mark.parametrize("member", sorted(CLIENT_CONTRACT))
def test_client_member_signature(member: str) -> None:
    assert _signature(BaseBleakClient, member) == CLIENT_CONTRACT[member]


@pytest.mark.parametrize("member", sorted(SCANNER_CONTRACT))
def test_scanner_member_signature(member: str) -> None:
    assert _signature(BaseBleakScanner, member) == SCANNER_CONTRACT[member]


def test_gatt_objects_and_advertisement_shapes_we_construct() -> None:
    assert str(inspect.signature(BleakGATTService.__init__)) == (
        "(self, obj: Any, handle: int, uuid: str) -> None"
    )
    assert list(inspect.signature(BleakGATTCharacteristic.__init__).parameters) == [
        "self",
        "obj",
        "handle",
        "uuid",
        "properties",
        "max_write_without_response_size",
        "service",
    ]
    assert list(inspect.signature(BleakGATTDescriptor.__init__).parameters) == [
        "self",
        "obj",
        "handle",
        "uuid",
        "characteristic",
    ]
    assert list(inspect.signature(BLEDevice.__init__).parameters) == [
        "self",
        "address",
        "name",
        "details",
        "kwargs",
    ]
    assert AdvertisementData._fields == (
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
        "tx_power",
        "rssi",
        "platform_data",
    )


def test_our_backends_are_concrete_and_named_for_bleak() -> None:
    scanner, client = make_backends(SimulatedRadio())
    assert not scanner.__abstractmethods__
    assert not client.__abstractmethods__
    # bleak reads backend.__name__ as the backend id.
    assert (scanner.__name__, client.__name__) == ("BumbleScanner", "BumbleClient")
    # name must be overridden, or BleakClient.name raises NotImplementedError.
    assert inspect.getattr_static(client, "name") is not inspect.getattr_static(
        BaseBleakClient, "name"
    )
