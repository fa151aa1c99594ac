"""Finding treadmills on air.

A treadmill is recognised by its FTMS service data (FTMS §3.1: available flag + machine type;
FTMP §5.1.4). Some decks advertise none (Toorx TRL200: hassio-ftms#59; Domyos: #35, #45): for
those the FTMS service UUID in the advertised service list, or a configured name match, makes
them a candidate, confirmed after connecting by the presence of Treadmill Data (0x2ACD).

`treadmilld scan` lists heart-rate straps too: one scan, each advertisement classified both
ways (`scan_nearby`), the straps by the Heart Rate Service (`treadmilld.ble.strap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from treadmilld.ble.config import TargetSelector
from treadmilld.ble.gatt import Advertisement, GattBackend
from treadmilld.ble.strap import DiscoveredStrap, straps_heard
from treadmilld.ftms import (
    FTMS_SERVICE_UUID,
    CodecError,
    MachineType,
    decode_ftms_service_data,
)
from treadmilld.runtime.clock import Clock, LoopClock

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ScannerBackend

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DiscoveredTreadmill:
    """One treadmill (or candidate) heard during a scan."""

    address: str
    name: str | None
    rssi: int | None
    # Empty when the deck advertised no service data: unknown until connected.
    machine_types: MachineType
    available: bool
    has_service_data: bool


def classify(
    adv: Advertisement, name_matches: Sequence[TargetSelector] = ()
) -> DiscoveredTreadmill | None:
    """This advertisement as a treadmill, or None when it is not one (or not a candidate)."""
    raw = adv.service_data.get(FTMS_SERVICE_UUID)
    if raw is not None:
        try:
            service_data = decode_ftms_service_data(raw)
        except CodecError as error:
            _log.warning(
                "advertisement_dropped", address=adv.address, data=raw.hex(), error=str(error)
            )
        else:
            if not service_data.machine_types & MachineType.TREADMILL:
                return None  # a bike or rower speaking FTMS
            return DiscoveredTreadmill(
                address=adv.address,
                name=adv.name,
                rssi=adv.rssi,
                machine_types=service_data.machine_types,
                available=service_data.available,
                has_service_data=True,
            )
    listed = FTMS_SERVICE_UUID in adv.service_uuids
    named = any(selector.matches(adv.address, adv.name) for selector in name_matches)
    if not (listed or named):
        return None
    return DiscoveredTreadmill(
        address=adv.address,
        name=adv.name,
        rssi=adv.rssi,
        machine_types=MachineType(0),
        # Without service data the deck cannot say it is busy; assume it is free.
        available=True,
        has_service_data=False,
    )


def is_target(adv: Advertisement, target: TargetSelector) -> bool:
    """Whether the link should connect to this advertisement.

    An explicit address is taken whatever the device advertises (and confirmed after
    connecting). A name match skips treadmills that advertise "not available" (FTMP §5.1.4).
    """
    if not target.matches(adv.address, adv.name):
        return False
    if target.address is not None:
        return True
    found = classify(adv, (target,))
    return found is not None and found.available


def treadmills_heard(
    heard: Sequence[Advertisement], name_matches: Sequence[TargetSelector] = ()
) -> list[DiscoveredTreadmill]:
    """The treadmills among `heard`, strongest signal first."""
    found = [t for adv in heard if (t := classify(adv, name_matches)) is not None]
    return sorted(found, key=lambda t: (t.rssi is None, -(t.rssi or 0), t.address))


@dataclass(frozen=True, slots=True)
class Nearby:
    """What one scan heard: the treadmills and the heart-rate straps, strongest first."""

    treadmills: tuple[DiscoveredTreadmill, ...]
    straps: tuple[DiscoveredStrap, ...]


def nearby_heard(heard: Sequence[Advertisement]) -> Nearby:
    """The treadmills and the straps among `heard`. A treadmill that also lists the Heart Rate
    Service (a hand-grip pulse) is listed as the treadmill only: its heart rate comes with its
    Treadmill Data, and a strap's configured address may be no treadmill's."""
    treadmills = treadmills_heard(heard)
    addresses = {t.address for t in treadmills}
    straps = [s for s in straps_heard(heard) if s.address not in addresses]
    return Nearby(tuple(treadmills), tuple(straps))


async def scan_with(
    backend: GattBackend, timeout_s: float, name_matches: Sequence[TargetSelector] = ()
) -> list[DiscoveredTreadmill]:
    """Scan through `backend` and return the treadmills heard, strongest signal first."""
    return treadmills_heard(await backend.scan(timeout_s), name_matches)


def _bleak_gatt(backend: ScannerBackend | None, clock: Clock | None) -> GattBackend:
    from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - keeps bleak lazy

    return BleakGattBackend(clock or LoopClock(), scanner_backend=backend)


async def scan(
    timeout: float = 5.0,  # noqa: ASYNC109 - how long to listen, not a deadline to cancel
    *,
    backend: ScannerBackend | None = None,
    name_matches: Sequence[TargetSelector] = (),
    clock: Clock | None = None,
) -> list[DiscoveredTreadmill]:
    """Listen for `timeout` seconds and list the treadmills heard.

    `backend` is a bleak scanner backend class (the simulator's); None uses the platform's.
    """
    return await scan_with(_bleak_gatt(backend, clock), timeout, name_matches)


async def scan_nearby(
    timeout: float = 5.0,  # noqa: ASYNC109 - how long to listen, not a deadline to cancel
    *,
    backend: ScannerBackend | None = None,
    clock: Clock | None = None,
) -> Nearby:
    """Listen for `timeout` seconds, once, and list the treadmills and the heart-rate straps
    heard (`treadmilld scan`). `backend` as for `scan`."""
    return nearby_heard(await _bleak_gatt(backend, clock).scan(timeout))
