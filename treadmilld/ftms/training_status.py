"""Training Status (0x2AD3): flags, status byte, optional UTF-8 string (FTMS v1.0.1 §4.10)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes, require_type

_CHARACTERISTIC = "Training Status (0x2AD3)"
_STRING_PRESENT = 0x01  # flags bit 0


class TrainingStatusCode(IntEnum):
    """Values defined by FTMS v1.0.1 Table 4.13. Vendors (KingSmith) send others too."""

    OTHER = 0x00
    IDLE = 0x01
    WARMING_UP = 0x02
    LOW_INTENSITY_INTERVAL = 0x03
    HIGH_INTENSITY_INTERVAL = 0x04
    RECOVERY_INTERVAL = 0x05
    ISOMETRIC = 0x06
    HEART_RATE_CONTROL = 0x07
    FITNESS_TEST = 0x08
    SPEED_OUTSIDE_CONTROL_REGION_LOW = 0x09
    SPEED_OUTSIDE_CONTROL_REGION_HIGH = 0x0A
    COOL_DOWN = 0x0B
    WATT_CONTROL = 0x0C
    MANUAL_MODE = 0x0D
    PRE_WORKOUT = 0x0E
    POST_WORKOUT = 0x0F


@dataclass(frozen=True, slots=True)
class TrainingStatus:
    """`status` stays an int so vendor values survive; compare it with TrainingStatusCode."""

    status: int
    text: str | None = None

    @property
    def code(self) -> TrainingStatusCode | None:
        """The FTMS meaning of `status`, or None for a vendor-specific value."""
        try:
            return TrainingStatusCode(self.status)
        except ValueError:
            return None


def decode_training_status(data: BytesLike) -> TrainingStatus:
    data = as_bytes(data, _CHARACTERISTIC)
    if len(data) < 2:
        raise CodecError(_CHARACTERISTIC, "needs at least 2 bytes: flags and status", data)
    flags, status = data[0], data[1]
    if not flags & _STRING_PRESENT:
        if len(data) > 2:
            raise CodecError(
                _CHARACTERISTIC, "bytes follow the status but the string-present flag is 0", data
            )
        return TrainingStatus(status=status)
    try:
        text = data[2:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise CodecError(
            _CHARACTERISTIC, f"training status string is not UTF-8 ({error.reason})", data
        ) from None
    return TrainingStatus(status=status, text=text)


def encode_training_status(status: TrainingStatus) -> bytes:
    require_type(status, TrainingStatus, _CHARACTERISTIC)
    if (
        isinstance(status.status, bool)
        or not isinstance(status.status, int)
        or not 0 <= status.status <= 0xFF
    ):
        raise CodecError(_CHARACTERISTIC, f"status {status.status!r} does not fit one byte")
    if status.text is None:
        return bytes((0, status.status))
    try:
        encoded = status.text.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        raise CodecError(
            _CHARACTERISTIC, f"text {status.text!r} cannot be encoded as UTF-8"
        ) from None
    return bytes((_STRING_PRESENT, status.status)) + encoded
