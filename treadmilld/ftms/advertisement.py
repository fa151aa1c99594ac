"""FTMS advertisement Service Data (FTMS v1.0.1 §3.1.1, FTMP §5.1.4).

The value under UUID 0x1826 is a flags byte (bit 0 = available) and a uint16 Fitness Machine
Type bitfield.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes, require_type

_CHARACTERISTIC = "FTMS Service Data (0x1826)"
_AVAILABLE = 0x01


class MachineType(IntFlag):
    """Fitness Machine Type bits (FTMS v1.0.1 Table 3.2)."""

    TREADMILL = 1 << 0
    CROSS_TRAINER = 1 << 1
    STEP_CLIMBER = 1 << 2
    STAIR_CLIMBER = 1 << 3
    ROWER = 1 << 4
    INDOOR_BIKE = 1 << 5


@dataclass(frozen=True, slots=True)
class FtmsServiceData:
    """`available` False means the machine is in use elsewhere: do not connect (FTMP §5.1.4)."""

    available: bool
    machine_types: MachineType

    @property
    def is_treadmill(self) -> bool:
        return MachineType.TREADMILL in self.machine_types


def decode_ftms_service_data(data: BytesLike) -> FtmsServiceData:
    """Decode the service-data value (without the AD header or UUID).

    Real machines swap the two type bytes (dudanov/pyftms `machine_type.py`); a single type byte
    is accepted too (design choice). Like pyftms, the type bytes are ORed together, so every
    defined bit (all in the low byte) survives either way.
    """
    data = as_bytes(data, _CHARACTERISTIC)
    if len(data) < 2:
        raise CodecError(_CHARACTERISTIC, "needs a flags byte and a machine type", data)
    machine_types = data[1] | data[2] if len(data) >= 3 else data[1]
    return FtmsServiceData(
        available=bool(data[0] & _AVAILABLE), machine_types=MachineType(machine_types)
    )


def encode_ftms_service_data(service_data: FtmsServiceData) -> bytes:
    """flags, then the machine type as a little-endian uint16 (as the spec lays it out)."""
    require_type(service_data, FtmsServiceData, _CHARACTERISTIC)
    machine_types = service_data.machine_types
    if not isinstance(machine_types, int) or not 0 <= machine_types <= 0xFF:
        raise CodecError(
            _CHARACTERISTIC,
            f"machine_types {machine_types!r} uses bits above 7, which FTMS reserves",
        )
    return bytes((_AVAILABLE if service_data.available else 0, int(machine_types), 0))
