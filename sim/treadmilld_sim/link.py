"""One in-process Bumble radio medium shared by simulated treadmills and bleak centrals.

Every Bumble `Device` here is a full host stack (HCI, L2CAP, ATT, GATT, SMP) talking to an
emulated `Controller`; controllers on the same `LocalLink` hear each other's advertising and
exchange ACL data. Nothing touches a real radio, the kernel or the network.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink


def _static_random_address(prefix: int, serial: int) -> str:
    # A static random address has its two most significant bits set (Core Vol 6, Part B,
    # 1.3.2.1); the prefix byte keeps peripherals and centrals apart when reading logs.
    if not 0xC0 <= prefix <= 0xFF:
        raise ValueError(f"prefix {prefix:#x} must have its two top bits set (0xC0..0xFF)")
    return f"{prefix:02X}:{(serial >> 24) & 0xFF:02X}:{(serial >> 16) & 0xFF:02X}:" + (
        f"{(serial >> 8) & 0xFF:02X}:{serial & 0xFF:02X}:01"
    )


_LEGACY_REPORT = hci.HCI_LE_Advertising_Report_Event
_EXTENDED_REPORT = hci.HCI_LE_Extended_Advertising_Report_Event


class _ScanResponseController(Controller):
    """Bumble's emulated controller, with real scan responses.

    Bumble 0.0.236's controller answers an advertisement it scans with a scan-response report
    carrying the *advertising* data again (`Controller.on_advertising_pdu`), and never sends what
    the advertiser set with LE Set (Extended) Scan Response Data. A deck that puts its FTMS service
    data only in the scan response (the Urevo E1L) would then never show it. Here the scan-response
    report carries the advertiser's own scan response data, looked up on the link (every
    controller on it is in this process), as the SCAN_RSP PDU would over the air.
    """

    _scan_response: bytes | None = None

    def on_advertising_pdu(self, pdu: Any) -> None:
        self._scan_response = _scan_response_of(self.link, pdu.advertiser_address)
        try:
            super().on_advertising_pdu(pdu)
        finally:
            self._scan_response = None

    def send_hci_packet(self, packet: Any) -> None:
        if self._scan_response is not None:
            packet = _with_scan_response(packet, self._scan_response)
        super().send_hci_packet(packet)


def _scan_response_of(link: Any, address: Any) -> bytes:
    """What the advertiser at `address` answers a scan request with (empty if nothing)."""
    advertiser = link.find_le_controller(address) if link is not None else None
    if advertiser is None:
        return b""
    legacy = advertiser.le_legacy_advertiser
    if legacy.enabled and legacy.address == address:
        return bytes(legacy.scan_response_data)
    for advertising_set in advertiser.advertising_sets.values():
        if advertising_set.enabled and advertising_set.address == address:
            return bytes(advertising_set.scan_response_data)
    return b""


def _with_scan_response(packet: Any, data: bytes) -> Any:
    if isinstance(packet, _LEGACY_REPORT) and all(
        report.event_type == _LEGACY_REPORT.EventType.SCAN_RSP for report in packet.reports
    ):
        return _LEGACY_REPORT([dataclasses.replace(r, data=data) for r in packet.reports])
    if isinstance(packet, _EXTENDED_REPORT) and all(
        report.event_type & _EXTENDED_REPORT.EventType.SCAN_RESPONSE for report in packet.reports
    ):
        return _EXTENDED_REPORT([dataclasses.replace(r, data=data) for r in packet.reports])
    return packet


class SimulatedRadio:
    """A `LocalLink` plus address allocation for everything that joins it."""

    # 0xF0 prefix: simulated treadmills; 0xD0 prefix: bleak centrals (scanners, clients).
    PERIPHERAL_PREFIX = 0xF0
    CENTRAL_PREFIX = 0xD0

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._peripheral_serials = itertools.count(1)
        self._central_serials = itertools.count(1)

    def next_peripheral_address(self) -> str:
        return _static_random_address(self.PERIPHERAL_PREFIX, next(self._peripheral_serials))

    def new_device(self, name: str, address: str) -> tuple[Any, Any]:
        """A powered-off Bumble `Device` with its own emulated `Controller` on this link."""
        controller = _ScanResponseController(name, link=self.link, public_address=address)
        device = Device(
            name=name,
            address=Address(address, Address.RANDOM_DEVICE_ADDRESS),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        return device, controller

    def new_central(self, role: str) -> tuple[Any, Any]:
        """A fresh central (one per scan or per connection, so none outlives its use)."""
        address = _static_random_address(self.CENTRAL_PREFIX, next(self._central_serials))
        return self.new_device(f"{role}-{address}", address)

    def remove_controller(self, controller: Any) -> None:
        """Take a controller off the air; removing one twice is harmless."""
        if controller in self.link.controllers:
            self.link.remove_controller(controller)

    @property
    def controller_count(self) -> int:
        return len(self.link.controllers)
