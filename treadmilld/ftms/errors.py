"""The one exception the FTMS codec raises."""

from __future__ import annotations

# What a decoder accepts: bleak hands notifications over as bytearray.
BytesLike = bytes | bytearray | memoryview


class CodecError(ValueError):
    """Bytes (or a value) that the FTMS codec cannot decode (or encode).

    The message names the characteristic and shows the offending bytes as hex, so a log line is
    enough to reproduce the problem. Callers drop the notification and keep going.
    """

    def __init__(self, characteristic: str, problem: str, data: bytes | None = None) -> None:
        message = f"{characteristic}: {problem}"
        if data is not None:
            message += f" [bytes: {data.hex(' ') if data else 'none'}]"
        super().__init__(message)
        self.characteristic = characteristic
        self.problem = problem
        self.data = data


def as_bytes(data: object, characteristic: str) -> bytes:
    """`data` as bytes (bleak hands over bytearray); anything not bytes-like is a CodecError."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise CodecError(characteristic, f"expected bytes, got {type(data).__name__}")


def require_type(value: object, expected: type, characteristic: str) -> None:
    """Encoders take their own dataclass only; anything else is a CodecError, not AttributeError."""
    if not isinstance(value, expected):
        raise CodecError(
            characteristic, f"cannot encode {type(value).__name__}, expected {expected.__name__}"
        )
