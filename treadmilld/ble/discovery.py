"""Finding treadmills on air.

A treadmill is recognised by its FTMS service data (FTMS §3.1: available flag + machine type;
FTMP §5.1.4). Some decks advertise none (Toorx TRL200: hassio-ftms#59; Domyos: #35, #45): for
those the FTMS service UUID in the advertised service list, or a configured name match, makes
them a candidate, confirmed after connecting by the presence of Treadmill Data (0x2ACD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from treadmilld.ble.config import TargetSelector
from treadmilld.ble.gatt import Advertisement, GattBackend
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


async def scan_with(
    backend: GattBackend, timeout_s: float, name_matches: Sequence[TargetSelector] = ()
) -> list[DiscoveredTreadmill]:
    """Scan through `backend` and return the treadmills heard, strongest signal first."""
    heard = await backend.scan(timeout_s)
    found = [t for adv in heard if (t := classify(adv, name_matches)) is not None]
    return sorted(found, key=lambda t: (t.rssi is None, -(t.rssi or 0), t.address))


async def scan(
    timeout: float = 5.0,  # noqa: ASYNC109 - how long to listen, not a deadline to cancel
    *,
    backend: ScannerBackend | None = None,
    name_matches: Sequence[TargetSelector] = (),
    clock: Clock | None = None,
) -> list[DiscoveredTreadmill]:
    """Listen for `timeout` seconds and list the treadmills heard (used by `treadmilld scan`).

    `backend` is a bleak scanner backend class (the simulator's); None uses the platform's.
    """
    from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - keeps bleak lazy

    gatt = BleakGattBackend(clock or LoopClock(), scanner_backend=backend)
    return await scan_with(gatt, timeout, name_matches)
