"""Treadmill Data (0x2ACD): decode, encode, fragment and reassemble (FTMS v1.0.1 §4.4).

The layout is a table of field groups keyed by flag bit, in spec order. Each flags value is
compiled once into a struct-backed `Layout`, so the hot path (10 Hz per treadmill) is a dict
lookup and one `unpack_from`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from treadmilld.ftms._layout import Field, Layout
from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes, require_type

_CHARACTERISTIC = "Treadmill Data (0x2ACD)"

# Flag bit 0 is "More Data": when it is 1 the notification is a non-final fragment and carries
# no Instantaneous Speed (FTMS §4.4.1.1, §4.19).
MORE_DATA_BIT = 0x0001
# Bit 13 is reserved in FTMS v1.0.1, but KingSmith and Urevo decks put a 3-byte step count there
# (hassio-ftms#3; mcdax/walkingpad-controller docs §6.2 reads it as uint16 plus a zero byte, which
# as a uint24 is the same number). Bits 14-15 are reserved and of unknown length.
STEP_COUNT_BIT = 0x2000
_RESERVED_BITS = 0xC000

_NOT_AVAILABLE_S16 = 0x7FFF  # FTMS §4.4.1.5, .6, .17, .18
_NOT_AVAILABLE_U16 = 0xFFFF  # FTMS §4.4.1.10, .11
_NOT_AVAILABLE_U8 = 0xFF  # FTMS §4.4.1.12

# (flag bit, fields) in the order they follow the flags on the air. Bit 0 is listed like the
# others; its meaning is inverted when the flags are read and written.
_GROUPS: tuple[tuple[int, tuple[Field, ...]], ...] = (
    (0x0001, (Field("instantaneous_speed_kmh", "u16", 100, 2),)),
    (0x0002, (Field("average_speed_kmh", "u16", 100, 2),)),
    (0x0004, (Field("total_distance_m", "u24"),)),
    (
        0x0008,
        (
            Field("inclination_pct", "s16", 10, 1, _NOT_AVAILABLE_S16),
            Field("ramp_angle_deg", "s16", 10, 1, _NOT_AVAILABLE_S16),
        ),
    ),
    (
        0x0010,
        (
            Field("positive_elevation_gain_m", "u16", 10, 1),
            Field("negative_elevation_gain_m", "u16", 10, 1),
        ),
    ),
    # Pace is uint8 in the SIG GATT XML (and as pyftms, QZ and Decathlon read it).
    (0x0020, (Field("instantaneous_pace_km_per_min", "u8", 10, 1),)),
    (0x0040, (Field("average_pace_km_per_min", "u8", 10, 1),)),
    (
        0x0080,
        (
            Field("total_energy_kcal", "u16", not_available=_NOT_AVAILABLE_U16),
            Field("energy_per_hour_kcal", "u16", not_available=_NOT_AVAILABLE_U16),
            Field("energy_per_minute_kcal", "u8", not_available=_NOT_AVAILABLE_U8),
        ),
    ),
    (0x0100, (Field("heart_rate_bpm", "u8"),)),
    (0x0200, (Field("metabolic_equivalent", "u8", 10, 1),)),
    (0x0400, (Field("elapsed_time_s", "u16"),)),
    (0x0800, (Field("remaining_time_s", "u16"),)),
    (
        0x1000,
        (
            Field("force_on_belt_n", "s16", not_available=_NOT_AVAILABLE_S16),
            Field("power_output_w", "s16", not_available=_NOT_AVAILABLE_S16),
        ),
    ),
    (STEP_COUNT_BIT, (Field("step_count", "u24"),)),
)


@dataclass(frozen=True, slots=True)
class TreadmillData:
    """One Treadmill Data record; a field is None when the treadmill did not send it.

    A field inside a group that is present can also be None when the treadmill sent the spec's
    "not available" value. `more_data` is True only for a decoded non-final fragment.
    """

    instantaneous_speed_kmh: float | None = None
    average_speed_kmh: float | None = None
    total_distance_m: int | None = None
    inclination_pct: float | None = None
    ramp_angle_deg: float | None = None
    positive_elevation_gain_m: float | None = None
    negative_elevation_gain_m: float | None = None
    instantaneous_pace_km_per_min: float | None = None
    average_pace_km_per_min: float | None = None
    total_energy_kcal: int | None = None
    energy_per_hour_kcal: int | None = None
    energy_per_minute_kcal: int | None = None
    heart_rate_bpm: int | None = None
    metabolic_equivalent: float | None = None
    elapsed_time_s: int | None = None
    remaining_time_s: int | None = None
    force_on_belt_n: int | None = None
    power_output_w: int | None = None
    step_count: int | None = None
    more_data: bool = False


_MEASUREMENT_NAMES = tuple(f.name for f in fields(TreadmillData) if f.name != "more_data")
_FLAGS = struct.Struct("<H")
_measurements: Callable[[TreadmillData], tuple[Any, ...]] = attrgetter(*_MEASUREMENT_NAMES)
# present bits -> (layout, position of each of its fields among TreadmillData's fields)
_LAYOUTS: dict[int, tuple[Layout, tuple[int, ...]]] = {}


def _compiled(present_bits: int) -> tuple[Layout, tuple[int, ...]]:
    compiled = _LAYOUTS.get(present_bits)
    if compiled is None:
        layout = Layout([f for bit, group in _GROUPS if present_bits & bit for f in group])
        positions = tuple(_MEASUREMENT_NAMES.index(name) for name in layout.names)
        compiled = _LAYOUTS[present_bits] = (layout, positions)
    return compiled


def _layout_for(present_bits: int) -> Layout:
    """The compiled layout of every group whose bit is in `present_bits` (speed = bit 0)."""
    return _compiled(present_bits)[0]


def decode_treadmill_data(data: BytesLike) -> TreadmillData:
    """Decode one notification (a whole record, or a fragment with `more_data=True`)."""
    # bytes is the common case; skip the conversion call on the hot path.
    data = data if type(data) is bytes else as_bytes(data, _CHARACTERISTIC)
    if len(data) < 2:
        raise CodecError(_CHARACTERISTIC, "too short for the 2-byte flags field", data)
    (flags,) = _FLAGS.unpack_from(data)
    if flags & _RESERVED_BITS:
        raise CodecError(
            _CHARACTERISTIC,
            f"flags 0x{flags:04x} set reserved bits 14-15, whose field length is unknown",
            data,
        )
    present = flags ^ MORE_DATA_BIT
    layout, positions = _compiled(present)
    if len(data) != 2 + layout.size:
        # Some KingSmith firmware sets bit 13 without sending the step bytes (the KS-HD-Z1D
        # capture in kkz6/WalkingPadSDK FTMSTests.swift): the length tells the two apart.
        layout, positions = _compiled(present & ~STEP_COUNT_BIT)
        if not present & STEP_COUNT_BIT or len(data) != 2 + layout.size:
            raise CodecError(
                _CHARACTERISTIC,
                f"flags 0x{flags:04x} announce {2 + _layout_for(present).size} bytes, "
                f"got {len(data)}",
                data,
            )
    row: list[Any] = [None] * len(_MEASUREMENT_NAMES)
    for position, value in zip(positions, layout.unpack(data, 2), strict=True):
        row[position] = value
    row.append(bool(flags & MORE_DATA_BIT))  # more_data, the last field
    return TreadmillData(*row)


def _present_bits(record: TreadmillData) -> int:
    present = 0
    for bit, group in _GROUPS:
        if any(getattr(record, f.name) is not None for f in group):
            present |= bit
    return present


def encode_treadmill_data(record: TreadmillData) -> bytes:
    """One notification for `record`: a whole record, or a non-final fragment if `more_data`.

    A whole record must carry `instantaneous_speed_kmh` (the spec omits it only from non-final
    fragments); a fragment must not.
    """
    require_type(record, TreadmillData, _CHARACTERISTIC)
    return _encode_groups(record, _present_bits(record), more_data=record.more_data)


def _encode_groups(record: TreadmillData, present: int, *, more_data: bool) -> bytes:
    has_speed = bool(present & MORE_DATA_BIT)
    if more_data == has_speed:
        problem = (
            "a fragment (more_data=True) cannot carry instantaneous_speed_kmh; "
            "only the final notification does"
            if more_data
            else "instantaneous_speed_kmh is None, but a whole record must carry it "
            "(set more_data=True to encode a non-final fragment)"
        )
        raise CodecError(_CHARACTERISTIC, problem)
    layout = _layout_for(present)
    body = layout.pack([getattr(record, name) for name in layout.names], _CHARACTERISTIC)
    return _FLAGS.pack(present ^ MORE_DATA_BIT) + body


def encode_treadmill_data_fragments(record: TreadmillData, mtu: int) -> list[bytes]:
    """Split `record` into notifications of at most `mtu - 3` bytes each (FTMS §4.19).

    Field groups are never split. Every notification but the last has More Data set; the last
    carries the instantaneous speed. A record that fits is returned as one notification.
    """
    require_type(record, TreadmillData, _CHARACTERISTIC)
    if record.more_data or record.instantaneous_speed_kmh is None:
        raise CodecError(
            _CHARACTERISTIC,
            "only a whole record (more_data=False, with instantaneous_speed_kmh) can be split",
        )
    if isinstance(mtu, bool) or not isinstance(mtu, int):
        raise CodecError(_CHARACTERISTIC, f"MTU {mtu!r} is not an integer")
    whole = encode_treadmill_data(record)
    capacity = mtu - 3 - _FLAGS.size  # ATT notification header is 3 bytes
    if len(whole) <= mtu - 3:
        return [whole]
    present = _present_bits(record)
    sizes = {bit: _layout_for(bit).size for bit, _ in _GROUPS if present & bit}
    if max(sizes.values()) > capacity:
        raise CodecError(
            _CHARACTERISTIC, f"an MTU of {mtu} cannot hold the largest field group of this record"
        )
    chunks: list[int] = []  # flag bits of each notification, speed excluded
    chunk, used = 0, 0
    for bit, size in sizes.items():
        if bit == MORE_DATA_BIT:
            continue
        if used + size > capacity:
            chunks.append(chunk)
            chunk, used = 0, 0
        chunk |= bit
        used += size
    speed_size = sizes[MORE_DATA_BIT]
    if used + speed_size <= capacity:
        chunks.append(chunk | MORE_DATA_BIT)
    else:
        chunks.extend((chunk, MORE_DATA_BIT))
    last = len(chunks) - 1
    return [
        _encode_groups(record, bits, more_data=index != last) for index, bits in enumerate(chunks)
    ]


def merge_treadmill_data(older: TreadmillData, newer: TreadmillData) -> TreadmillData:
    """`newer` with every field it lacks (None) taken from `older`; `more_data` from `newer`."""
    merged = [
        old if new is None else new
        for old, new in zip(_measurements(older), _measurements(newer), strict=True)
    ]
    merged.append(newer.more_data)
    return TreadmillData(*merged)


class TreadmillDataAssembler:
    """Merges fragmented records (More Data) back into whole ones.

    Feed every notification in order; `feed` returns a whole record when the final fragment
    (More Data = 0) arrives and None while one is still incomplete. Call `reset()` when the link
    drops: a partial record is discarded, never completed by the next connection's data.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: TreadmillData | None = None

    @property
    def has_partial_record(self) -> bool:
        return self._pending is not None

    def feed(self, data: BytesLike) -> TreadmillData | None:
        """Decode one notification; CodecError also discards the partial record."""
        try:
            record = decode_treadmill_data(data)
        except CodecError:
            self._pending = None
            raise
        pending = self._pending
        if record.more_data:
            self._pending = record if pending is None else merge_treadmill_data(pending, record)
            return None
        self._pending = None
        return record if pending is None else merge_treadmill_data(pending, record)

    def reset(self) -> None:
        """Drop any partial record (call on disconnect, FTMS §4.18)."""
        self._pending = None
