"""Heart Rate Measurement (0x2A37) of the Heart Rate Service (0x180D): decode and encode.

Heart Rate Service v1.0 §3.1 and the SIG's GATT definition of the characteristic
(org.bluetooth.characteristic.heart_rate_measurement): a flags byte, then the heart rate
(uint8 or uint16, bpm), then an optional Energy Expended (uint16, kJ), then zero or more
RR-Intervals (uint16 each, 1/1024 s) filling the rest of the value.

A strap is not a fitness machine, but its bytes are one more GATT format the daemon speaks, so
its codec lives here, sans-io, with the same one exception (`CodecError`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes, require_type

_CHARACTERISTIC = "Heart Rate Measurement (0x2A37)"

# Flags (HRS v1.0 §3.1; the GATT definition of 0x2A37, its "Flags" bit field).
_VALUE_UINT16 = 0x01  # bit 0: Heart Rate Value Format, 0 = uint8, 1 = uint16
# Bits 1-2: Sensor Contact Status. Bit 2 says the strap supports contact detection; only then
# does bit 1 mean anything (1 = contact detected). 0b00 and 0b01 both mean "not supported".
_CONTACT_DETECTED = 0x02
_CONTACT_SUPPORTED = 0x04
_ENERGY_PRESENT = 0x08  # bit 3: Energy Expended Status
_RR_PRESENT = 0x10  # bit 4: RR-Interval
# Bits 5-7 are reserved for future use: ignored when read (a newer strap may set them), never
# written.

# RR-Interval resolution: 1/1024 second (HRS v1.0 §3.1; GATT definition, "RR-Interval").
RR_INTERVAL_UNITS_PER_S = 1024
# Energy Expended saturates here: a strap keeps sending 0xFFFF once it reaches 65535 kJ until
# the client resets it through the Heart Rate Control Point (HRS v1.0 §3.1 and §3.3).
ENERGY_EXPENDED_SATURATED_KJ = 0xFFFF

_U8 = 0xFF
_U16 = 0xFFFF
_UINT16 = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    `heart_rate_bpm` is what the strap sent, 0 included (many straps send 0 without contact).
    `wide` is the value format: True when it came (or goes) as uint16. `contact_supported`
    False means the strap cannot tell; `contact_detected` then carries no meaning and is False.
    `energy_expended_kj` is None when absent. `rr_intervals` are in 1/1024 s as sent (oldest
    first): None when the RR flag is clear, a tuple (possibly empty) when it is set.
    """

    heart_rate_bpm: int
    wide: bool = False
    contact_supported: bool = False
    contact_detected: bool = False
    energy_expended_kj: int | None = None
    rr_intervals: tuple[int, ...] | None = None

    @property
    def contact(self) -> bool | None:
        """Skin contact: True or False when the strap detects it, None when it cannot tell."""
        return self.contact_detected if self.contact_supported else None

    @property
    def rr_intervals_s(self) -> tuple[float, ...]:
        """The RR intervals in seconds (empty when none were sent)."""
        return tuple(raw / RR_INTERVAL_UNITS_PER_S for raw in self.rr_intervals or ())


def decode_heart_rate_measurement(data: BytesLike) -> HeartRateMeasurement:
    """One notification's value as a `HeartRateMeasurement`, or `CodecError`."""
    data = as_bytes(data, _CHARACTERISTIC)
    if not data:
        raise CodecError(_CHARACTERISTIC, "empty value: needs a flags byte and a heart rate", data)
    flags = data[0]
    wide = bool(flags & _VALUE_UINT16)
    offset = 1
    needed = offset + (2 if wide else 1)
    if len(data) < needed:
        width = "uint16" if wide else "uint8"
        raise CodecError(_CHARACTERISTIC, f"too short for the {width} heart rate", data)
    if wide:
        (heart_rate,) = _UINT16.unpack_from(data, offset)
    else:
        heart_rate = data[offset]
    offset = needed
    energy: int | None = None
    if flags & _ENERGY_PRESENT:
        if len(data) < offset + 2:
            raise CodecError(
                _CHARACTERISTIC, "energy-expended flag is set but the uint16 is missing", data
            )
        (energy,) = _UINT16.unpack_from(data, offset)
        offset += 2
    rest = data[offset:]
    rr_intervals: tuple[int, ...] | None = None
    if flags & _RR_PRESENT:
        if len(rest) % 2:
            raise CodecError(
                _CHARACTERISTIC,
                f"RR intervals are uint16 each, but {len(rest)} bytes are left for them",
                data,
            )
        rr_intervals = tuple(value for (value,) in _UINT16.iter_unpack(rest))
    elif rest:
        raise CodecError(
            _CHARACTERISTIC, f"{len(rest)} bytes follow the last field the flags announce", data
        )
    supported = bool(flags & _CONTACT_SUPPORTED)
    return HeartRateMeasurement(
        heart_rate_bpm=heart_rate,
        wide=wide,
        contact_supported=supported,
        contact_detected=supported and bool(flags & _CONTACT_DETECTED),
        energy_expended_kj=energy,
        rr_intervals=rr_intervals,
    )


def _check_int(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise CodecError(_CHARACTERISTIC, f"{name}={value!r} is not an integer in 0..{high}")
    return value


def encode_heart_rate_measurement(measurement: HeartRateMeasurement) -> bytes:
    """The value a strap notifies for `measurement`. A heart rate above 255 needs `wide=True`."""
    require_type(measurement, HeartRateMeasurement, _CHARACTERISTIC)
    m = measurement
    flags = 0
    if m.wide:
        flags |= _VALUE_UINT16
        value = _UINT16.pack(_check_int("heart_rate_bpm", m.heart_rate_bpm, _U16))
    else:
        if isinstance(m.heart_rate_bpm, int) and m.heart_rate_bpm > _U8:
            raise CodecError(
                _CHARACTERISTIC,
                f"heart_rate_bpm={m.heart_rate_bpm} does not fit uint8; set wide=True",
            )
        value = bytes((_check_int("heart_rate_bpm", m.heart_rate_bpm, _U8),))
    if m.contact_supported:
        flags |= _CONTACT_SUPPORTED
        if m.contact_detected:
            flags |= _CONTACT_DETECTED
    elif m.contact_detected:
        raise CodecError(
            _CHARACTERISTIC,
            "contact_detected without contact_supported cannot be sent; set both or neither",
        )
    if m.energy_expended_kj is not None:
        flags |= _ENERGY_PRESENT
        value += _UINT16.pack(_check_int("energy_expended_kj", m.energy_expended_kj, _U16))
    if m.rr_intervals is not None:
        flags |= _RR_PRESENT
        if not isinstance(m.rr_intervals, tuple):
            raise CodecError(
                _CHARACTERISTIC, f"rr_intervals={m.rr_intervals!r} is not a tuple of integers"
            )
        for raw in m.rr_intervals:
            value += _UINT16.pack(_check_int("rr_intervals item", raw, _U16))
    return bytes((flags,)) + value
