"""Table-driven little-endian field layouts shared by every characteristic.

A `Field` says how one value is stored (width, sign, resolution, "not available" sentinel); a
`Layout` is a run of fields compiled once into a `struct.Struct`, so decoding is one
`unpack_from` plus a scale per field.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from treadmilld.ftms.errors import CodecError

# struct codes per FTMS integer type. uint24 has no struct code: it is read as uint16 + uint8.
_STRUCT_CODES = {"u8": "B", "s8": "b", "u16": "H", "s16": "h", "u24": "HB", "u32": "I"}
_BOUNDS = {
    "u8": (0, 0xFF),
    "s8": (-0x80, 0x7F),
    "u16": (0, 0xFFFF),
    "s16": (-0x8000, 0x7FFF),
    "u24": (0, 0xFFFFFF),
    "u32": (0, 0xFFFFFFFF),
}

# A decoded value is int, float or None; which one is fixed by the field table, so callers that
# build dataclasses from it rely on the table rather than on a static type.
Value = Any


@dataclass(frozen=True, slots=True)
class Field:
    """One stored value: `value = raw / scale`, rounded to `decimals` places.

    `scale` is raw steps per unit (100 for a 0.01 resolution, 2 for 0.5); `not_available` is the
    raw sentinel the spec reserves for "not available", decoded as None.
    """

    name: str
    kind: str
    scale: int = 1
    decimals: int = 0
    not_available: int | None = None

    @property
    def raw_bounds(self) -> tuple[int, int]:
        """Raw values a real measurement may take (the sentinel excluded)."""
        low, high = _BOUNDS[self.kind]
        if self.not_available == high:  # every FTMS sentinel is its type's maximum
            high -= 1
        return low, high

    def scale_raw(self, raw: int) -> int | float:
        """The value a raw integer stands for (the sentinel is handled by the caller)."""
        if self.scale == 1:
            return raw
        return round(raw / self.scale, self.decimals)

    def to_raw(self, value: object, characteristic: str) -> int:
        """The raw integer for `value` (None becomes the sentinel), or CodecError."""
        if value is None:
            if self.not_available is None:
                raise CodecError(
                    characteristic,
                    f"{self.name} is None but this field has no 'not available' value; "
                    "set it, or leave every field of its group None",
                )
            return self.not_available
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CodecError(characteristic, f"{self.name}={value!r} is not a number")
        scaled = value * self.scale
        if isinstance(scaled, float) and not math.isfinite(scaled):
            # Also catches huge finite values that overflow once scaled.
            raise CodecError(characteristic, f"{self.name}={value!r} is not a finite number")
        raw = round(scaled)
        low, high = self.raw_bounds
        if not low <= raw <= high:
            raise CodecError(
                characteristic,
                f"{self.name}={value!r} is outside the encodable range "
                f"{self.scale_raw(low)}..{self.scale_raw(high)}",
            )
        return raw


class Layout:
    """A fixed run of fields, compiled into one struct."""

    __slots__ = ("_conversions", "_struct", "_u24_positions", "fields", "names", "size")

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = tuple(fields)
        self.names = tuple(field.name for field in self.fields)
        self._struct = struct.Struct("<" + "".join(_STRUCT_CODES[f.kind] for f in self.fields))
        self.size = self._struct.size
        # Per field: (sentinel, scale, decimals), read in one tight loop on the hot path.
        self._conversions = tuple((f.not_available, f.scale, f.decimals) for f in self.fields)
        # Where each uint24's low 16 bits land in the unpacked tuple; its high byte follows.
        positions: list[int] = []
        index = 0
        for field in self.fields:
            if field.kind == "u24":
                positions.append(index)
                index += 1
            index += 1
        self._u24_positions = tuple(reversed(positions))

    def unpack(self, data: bytes, offset: int = 0) -> list[Value]:
        """Values of every field starting at `offset`; the caller checks the length first."""
        raws: Sequence[int] = self._struct.unpack_from(data, offset)
        if self._u24_positions:
            joined = list(raws)
            for position in self._u24_positions:  # right to left, so earlier indexes hold
                joined[position] |= joined.pop(position + 1) << 16
            raws = joined
        return [
            None if raw == not_available else (raw if scale == 1 else round(raw / scale, decimals))
            for raw, (not_available, scale, decimals) in zip(raws, self._conversions, strict=True)
        ]

    def pack(self, values: Sequence[object], characteristic: str) -> bytes:
        raws: list[int] = []
        for field, value in zip(self.fields, values, strict=True):
            raw = field.to_raw(value, characteristic)
            if field.kind == "u24":
                raws.extend((raw & 0xFFFF, raw >> 16))
            else:
                raws.append(raw)
        return self._struct.pack(*raws)
