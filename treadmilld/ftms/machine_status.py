"""Fitness Machine Status (0x2ADA): what changed on the machine, and who changed it.

FTMS v1.0.1 §4.17, Table 4.26: an opcode byte followed by that opcode's parameter. Parameters
use the resolutions of the matching Control Point procedures.
"""

from __future__ import annotations

from dataclasses import dataclass

from treadmilld.ftms._layout import Field, Layout
from treadmilld.ftms.control_point import StopKind
from treadmilld.ftms.errors import BytesLike, CodecError, as_bytes

_CHARACTERISTIC = "Fitness Machine Status (0x2ADA)"


@dataclass(frozen=True, slots=True)
class ResetStatus:
    """0x01: the machine was reset (targets cleared, control permission gone)."""


@dataclass(frozen=True, slots=True)
class StoppedOrPausedByUser:
    """0x02: the console (or another client) stopped or paused the belt."""

    kind: StopKind


@dataclass(frozen=True, slots=True)
class StoppedBySafetyKey:
    """0x03: the safety key was pulled."""


@dataclass(frozen=True, slots=True)
class StartedOrResumedByUser:
    """0x04: the console (or another client) started the belt."""


@dataclass(frozen=True, slots=True)
class TargetSpeedChanged:
    """0x05."""

    speed_kmh: float


@dataclass(frozen=True, slots=True)
class TargetInclineChanged:
    """0x06."""

    inclination_pct: float


@dataclass(frozen=True, slots=True)
class TargetResistanceLevelChanged:
    """0x07: unitless, resolution 0.1."""

    resistance_level: float


@dataclass(frozen=True, slots=True)
class TargetPowerChanged:
    """0x08."""

    power_w: int


@dataclass(frozen=True, slots=True)
class TargetHeartRateChanged:
    """0x09."""

    heart_rate_bpm: int


@dataclass(frozen=True, slots=True)
class TargetedExpendedEnergyChanged:
    """0x0A."""

    energy_kcal: int


@dataclass(frozen=True, slots=True)
class TargetedNumberOfStepsChanged:
    """0x0B."""

    steps: int


@dataclass(frozen=True, slots=True)
class TargetedNumberOfStridesChanged:
    """0x0C."""

    strides: int


@dataclass(frozen=True, slots=True)
class TargetedDistanceChanged:
    """0x0D."""

    distance_m: int


@dataclass(frozen=True, slots=True)
class TargetedTrainingTimeChanged:
    """0x0E."""

    time_s: int


@dataclass(frozen=True, slots=True)
class TargetedTimeInTwoHeartRateZonesChanged:
    """0x0F."""

    fat_burn_zone_s: int
    fitness_zone_s: int


@dataclass(frozen=True, slots=True)
class TargetedTimeInThreeHeartRateZonesChanged:
    """0x10."""

    light_zone_s: int
    moderate_zone_s: int
    hard_zone_s: int


@dataclass(frozen=True, slots=True)
class TargetedTimeInFiveHeartRateZonesChanged:
    """0x11."""

    very_light_zone_s: int
    light_zone_s: int
    moderate_zone_s: int
    hard_zone_s: int
    maximum_zone_s: int


@dataclass(frozen=True, slots=True)
class IndoorBikeSimulationParametersChanged:
    """0x12 (bikes only; decoded so a mixed-use controller never chokes on it)."""

    wind_speed_m_per_s: float
    grade_pct: float
    rolling_resistance_coefficient: float
    wind_resistance_coefficient_kg_per_m: float


@dataclass(frozen=True, slots=True)
class WheelCircumferenceChanged:
    """0x13."""

    circumference_mm: float


@dataclass(frozen=True, slots=True)
class SpinDownStatusChanged:
    """0x14: 1 requested, 2 success, 3 error, 4 stop spin down (FTMS Table 4.27)."""

    status: int


@dataclass(frozen=True, slots=True)
class TargetedCadenceChanged:
    """0x15: resolution 0.5 per minute."""

    cadence_per_min: float


@dataclass(frozen=True, slots=True)
class ControlPermissionLost:
    """0xFF: another client or the console took control; Request Control again to regain it."""


MachineStatus = (
    ResetStatus
    | StoppedOrPausedByUser
    | StoppedBySafetyKey
    | StartedOrResumedByUser
    | TargetSpeedChanged
    | TargetInclineChanged
    | TargetResistanceLevelChanged
    | TargetPowerChanged
    | TargetHeartRateChanged
    | TargetedExpendedEnergyChanged
    | TargetedNumberOfStepsChanged
    | TargetedNumberOfStridesChanged
    | TargetedDistanceChanged
    | TargetedTrainingTimeChanged
    | TargetedTimeInTwoHeartRateZonesChanged
    | TargetedTimeInThreeHeartRateZonesChanged
    | TargetedTimeInFiveHeartRateZonesChanged
    | IndoorBikeSimulationParametersChanged
    | WheelCircumferenceChanged
    | SpinDownStatusChanged
    | TargetedCadenceChanged
    | ControlPermissionLost
)


def _u16s(*names: str) -> Layout:
    return Layout([Field(name, "u16") for name in names])


# FTMS v1.0.1 Table 4.26: opcode -> (status type, parameter layout).
_STATUSES: dict[int, tuple[type[MachineStatus], Layout]] = {
    0x01: (ResetStatus, Layout([])),
    0x02: (StoppedOrPausedByUser, Layout([Field("kind", "u8")])),
    0x03: (StoppedBySafetyKey, Layout([])),
    0x04: (StartedOrResumedByUser, Layout([])),
    0x05: (TargetSpeedChanged, Layout([Field("speed_kmh", "u16", 100, 2)])),
    0x06: (TargetInclineChanged, Layout([Field("inclination_pct", "s16", 10, 1)])),
    0x07: (TargetResistanceLevelChanged, Layout([Field("resistance_level", "u8", 10, 1)])),
    0x08: (TargetPowerChanged, Layout([Field("power_w", "s16")])),
    0x09: (TargetHeartRateChanged, Layout([Field("heart_rate_bpm", "u8")])),
    0x0A: (TargetedExpendedEnergyChanged, _u16s("energy_kcal")),
    0x0B: (TargetedNumberOfStepsChanged, _u16s("steps")),
    0x0C: (TargetedNumberOfStridesChanged, _u16s("strides")),
    0x0D: (TargetedDistanceChanged, Layout([Field("distance_m", "u24")])),
    0x0E: (TargetedTrainingTimeChanged, _u16s("time_s")),
    0x0F: (TargetedTimeInTwoHeartRateZonesChanged, _u16s("fat_burn_zone_s", "fitness_zone_s")),
    0x10: (
        TargetedTimeInThreeHeartRateZonesChanged,
        _u16s("light_zone_s", "moderate_zone_s", "hard_zone_s"),
    ),
    0x11: (
        TargetedTimeInFiveHeartRateZonesChanged,
        _u16s(
            "very_light_zone_s", "light_zone_s", "moderate_zone_s", "hard_zone_s", "maximum_zone_s"
        ),
    ),
    0x12: (
        IndoorBikeSimulationParametersChanged,
        Layout(
            [
                Field("wind_speed_m_per_s", "s16", 1000, 3),
                Field("grade_pct", "s16", 100, 2),
                Field("rolling_resistance_coefficient", "u8", 10000, 4),
                Field("wind_resistance_coefficient_kg_per_m", "u8", 100, 2),
            ]
        ),
    ),
    0x13: (WheelCircumferenceChanged, Layout([Field("circumference_mm", "u16", 10, 1)])),
    0x14: (SpinDownStatusChanged, Layout([Field("status", "u8")])),
    0x15: (TargetedCadenceChanged, Layout([Field("cadence_per_min", "u16", 2, 1)])),
    0xFF: (ControlPermissionLost, Layout([])),
}
_OPCODE_BY_TYPE = {kind: (opcode, layout) for opcode, (kind, layout) in _STATUSES.items()}


def decode_machine_status(data: BytesLike) -> MachineStatus:
    data = as_bytes(data, _CHARACTERISTIC)
    if not data:
        raise CodecError(_CHARACTERISTIC, "empty notification, expected an opcode", data)
    entry = _STATUSES.get(data[0])
    if entry is None:
        raise CodecError(_CHARACTERISTIC, f"opcode 0x{data[0]:02x} is not defined by FTMS", data)
    kind, layout = entry
    # The spec allows no trailing bytes, but nothing is lost by ignoring them.
    if len(data) < 1 + layout.size:
        raise CodecError(
            _CHARACTERISTIC,
            f"{kind.__name__} needs {layout.size} parameter bytes, got {len(data) - 1}",
            data,
        )
    values = layout.unpack(data, 1)
    if kind is StoppedOrPausedByUser:
        if values[0] not in StopKind.__members__.values():
            raise CodecError(
                _CHARACTERISTIC,
                f"stop/pause parameter {values[0]} is not 1 (stop) or 2 (pause)",
                data,
            )
        return StoppedOrPausedByUser(StopKind(values[0]))
    return kind(*values)


def encode_machine_status(status: MachineStatus) -> bytes:
    entry = _OPCODE_BY_TYPE.get(type(status))
    if entry is None:
        raise CodecError(_CHARACTERISTIC, f"cannot encode {status!r}: not a MachineStatus")
    opcode, layout = entry
    if (
        isinstance(status, StoppedOrPausedByUser)
        and status.kind not in StopKind.__members__.values()
    ):
        raise CodecError(
            _CHARACTERISTIC, f"StoppedOrPausedByUser kind {status.kind!r} is not 1 or 2"
        )
    values = [getattr(status, name) for name in layout.names]
    return bytes((opcode,)) + layout.pack(values, _CHARACTERISTIC)
