"""Fitness Machine Feature (0x2ACC) and the Supported Speed/Inclination Range (0x2AD4/0x2AD5)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from treadmilld.ftms._layout import Field, Layout
from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes, require_type

_FEATURE = "Fitness Machine Feature (0x2ACC)"
_SPEED_RANGE = "Supported Speed Range (0x2AD4)"
_INCLINATION_RANGE = "Supported Inclination Range (0x2AD5)"


class MachineFeatures(IntFlag):
    """First uint32 of 0x2ACC (FTMS v1.0.1 Table 4.3). Reserved bits are kept as they came."""

    AVERAGE_SPEED = 1 << 0
    CADENCE = 1 << 1
    TOTAL_DISTANCE = 1 << 2
    INCLINATION = 1 << 3
    ELEVATION_GAIN = 1 << 4
    PACE = 1 << 5
    STEP_COUNT = 1 << 6
    RESISTANCE_LEVEL = 1 << 7
    STRIDE_COUNT = 1 << 8
    EXPENDED_ENERGY = 1 << 9
    HEART_RATE_MEASUREMENT = 1 << 10
    METABOLIC_EQUIVALENT = 1 << 11
    ELAPSED_TIME = 1 << 12
    REMAINING_TIME = 1 << 13
    POWER_MEASUREMENT = 1 << 14
    FORCE_ON_BELT_AND_POWER_OUTPUT = 1 << 15
    USER_DATA_RETENTION = 1 << 16


class TargetSettingFeatures(IntFlag):
    """Second uint32 of 0x2ACC (FTMS v1.0.1 Table 4.4): which targets the machine accepts."""

    SPEED = 1 << 0
    INCLINATION = 1 << 1
    RESISTANCE = 1 << 2
    POWER = 1 << 3
    HEART_RATE = 1 << 4
    TARGETED_EXPENDED_ENERGY = 1 << 5
    TARGETED_STEP_NUMBER = 1 << 6
    TARGETED_STRIDE_NUMBER = 1 << 7
    TARGETED_DISTANCE = 1 << 8
    TARGETED_TRAINING_TIME = 1 << 9
    TARGETED_TIME_IN_TWO_HEART_RATE_ZONES = 1 << 10
    TARGETED_TIME_IN_THREE_HEART_RATE_ZONES = 1 << 11
    TARGETED_TIME_IN_FIVE_HEART_RATE_ZONES = 1 << 12
    INDOOR_BIKE_SIMULATION = 1 << 13
    WHEEL_CIRCUMFERENCE = 1 << 14
    SPIN_DOWN_CONTROL = 1 << 15
    TARGETED_CADENCE = 1 << 16


@dataclass(frozen=True, slots=True)
class FitnessMachineFeature:
    """What the machine claims to measure and accept. Real machines over-claim
    (hassio-ftms#16, #20)."""

    machine: MachineFeatures
    target_settings: TargetSettingFeatures


_FEATURE_LAYOUT = Layout([Field("machine", "u32"), Field("target_settings", "u32")])


def decode_feature(data: BytesLike) -> FitnessMachineFeature:
    data = as_bytes(data, _FEATURE)
    if len(data) != _FEATURE_LAYOUT.size:
        raise CodecError(_FEATURE, f"expected 8 bytes (two uint32), got {len(data)}", data)
    machine, target_settings = _FEATURE_LAYOUT.unpack(data)
    return FitnessMachineFeature(MachineFeatures(machine), TargetSettingFeatures(target_settings))


def encode_feature(feature: FitnessMachineFeature) -> bytes:
    require_type(feature, FitnessMachineFeature, _FEATURE)
    return _FEATURE_LAYOUT.pack([feature.machine, feature.target_settings], _FEATURE)


@dataclass(frozen=True, slots=True)
class SpeedRange:
    """Supported Speed Range: targets must lie in [minimum, maximum] on `increment` steps."""

    minimum_kmh: float
    maximum_kmh: float
    increment_kmh: float


@dataclass(frozen=True, slots=True)
class InclinationRange:
    """Supported Inclination Range: targets must lie in [minimum, maximum] on `increment` steps."""

    minimum_pct: float
    maximum_pct: float
    increment_pct: float


# FTMS v1.0.1 §4.11: three uint16 at 0.01 km/h. §4.12: sint16, sint16, uint16 at 0.1 %.
_SPEED_RANGE_LAYOUT = Layout(
    [Field(name, "u16", 100, 2) for name in ("minimum_kmh", "maximum_kmh", "increment_kmh")]
)
_INCLINATION_RANGE_LAYOUT = Layout(
    [
        Field("minimum_pct", "s16", 10, 1),
        Field("maximum_pct", "s16", 10, 1),
        Field("increment_pct", "u16", 10, 1),
    ]
)


def decode_speed_range(data: BytesLike) -> SpeedRange:
    data = as_bytes(data, _SPEED_RANGE)
    if len(data) != _SPEED_RANGE_LAYOUT.size:
        raise CodecError(_SPEED_RANGE, f"expected 6 bytes, got {len(data)}", data)
    minimum, maximum, increment = _SPEED_RANGE_LAYOUT.unpack(data)
    return SpeedRange(minimum_kmh=minimum, maximum_kmh=maximum, increment_kmh=increment)


def encode_speed_range(speed_range: SpeedRange) -> bytes:
    require_type(speed_range, SpeedRange, _SPEED_RANGE)
    values = [getattr(speed_range, name) for name in _SPEED_RANGE_LAYOUT.names]
    return _SPEED_RANGE_LAYOUT.pack(values, _SPEED_RANGE)


def decode_inclination_range(data: BytesLike) -> InclinationRange:
    data = as_bytes(data, _INCLINATION_RANGE)
    if len(data) != _INCLINATION_RANGE_LAYOUT.size:
        raise CodecError(_INCLINATION_RANGE, f"expected 6 bytes, got {len(data)}", data)
    minimum, maximum, increment = _INCLINATION_RANGE_LAYOUT.unpack(data)
    return InclinationRange(minimum_pct=minimum, maximum_pct=maximum, increment_pct=increment)


def encode_inclination_range(inclination_range: InclinationRange) -> bytes:
    require_type(inclination_range, InclinationRange, _INCLINATION_RANGE)
    values = [getattr(inclination_range, name) for name in _INCLINATION_RANGE_LAYOUT.names]
    return _INCLINATION_RANGE_LAYOUT.pack(values, _INCLINATION_RANGE)
