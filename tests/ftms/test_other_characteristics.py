"""Training Status, Feature, the supported ranges and every Machine Status opcode."""

from __future__ import annotations

import re

import pytest

from treadmilld.ftms import (
    CodecError,
    ControlOpcode,
    ControlResponse,
    FitnessMachineFeature,
    FtmsServiceData,
    InclinationRange,
    IndoorBikeSimulationParametersChanged,
    MachineFeatures,
    MachineStatus,
    MachineType,
    ResultCode,
    SpeedRange,
    SpinDownStatusChanged,
    TargetedCadenceChanged,
    TargetedDistanceChanged,
    TargetedExpendedEnergyChanged,
    TargetedNumberOfStepsChanged,
    TargetedNumberOfStridesChanged,
    TargetedTimeInFiveHeartRateZonesChanged,
    TargetedTimeInThreeHeartRateZonesChanged,
    TargetedTimeInTwoHeartRateZonesChanged,
    TargetedTrainingTimeChanged,
    TargetHeartRateChanged,
    TargetPowerChanged,
    TargetResistanceLevelChanged,
    TargetSettingFeatures,
    TrainingStatus,
    TrainingStatusCode,
    WheelCircumferenceChanged,
    decode_feature,
    decode_inclination_range,
    decode_machine_status,
    decode_speed_range,
    decode_training_status,
    encode_control_request,
    encode_control_response,
    encode_feature,
    encode_ftms_service_data,
    encode_inclination_range,
    encode_machine_status,
    encode_speed_range,
    encode_training_status,
)

# --- Training Status (FTMS v1.0.1 §4.10) -------------------------------------------------------


def test_training_status_without_string() -> None:
    status = decode_training_status(bytes.fromhex("00 01"))
    assert status == TrainingStatus(status=1)
    assert status.code is TrainingStatusCode.IDLE
    assert encode_training_status(status) == bytes.fromhex("00 01")


def test_training_status_with_utf8_string() -> None:
    data = bytes.fromhex("01 0d") + "Manuel é".encode()
    status = decode_training_status(data)
    assert status == TrainingStatus(status=TrainingStatusCode.MANUAL_MODE, text="Manuel é")
    assert encode_training_status(status) == data


def test_vendor_training_status_values_survive() -> None:
    # KingSmith sends values outside Table 4.13 (walkingpad-controller docs §6.4).
    status = decode_training_status(bytes.fromhex("00 20"))
    assert status.status == 0x20
    assert status.code is None


@pytest.mark.parametrize(
    ("hex_bytes", "problem"),
    [
        ("", "at least 2 bytes"),
        ("01", "at least 2 bytes"),
        ("00 01 41", "string-present flag is 0"),
        ("01 01 ff fe", "not UTF-8"),
    ],
)
def test_malformed_training_status(hex_bytes: str, problem: str) -> None:
    with pytest.raises(CodecError, match=problem) as raised:
        decode_training_status(bytes.fromhex(hex_bytes))
    assert "Training Status (0x2AD3)" in str(raised.value)


@pytest.mark.parametrize(
    "status",
    [
        TrainingStatus(status=256),
        TrainingStatus(status=-1),
        TrainingStatus(status=1, text="\ud800"),  # a lone surrogate has no UTF-8 form
        TrainingStatus(status=1, text=b"idle"),  # type: ignore[arg-type]
    ],
)
def test_unencodable_training_status(status: TrainingStatus) -> None:
    with pytest.raises(CodecError):
        encode_training_status(status)


# --- Feature and ranges (FTMS v1.0.1 §4.3, §4.11, §4.12) ----------------------------------------


def test_feature_flags() -> None:
    # Values ours: distance, inclination, elapsed time; speed and inclination targets.
    data = bytes.fromhex("0c 10 00 00 03 00 00 00")
    feature = decode_feature(data)
    assert feature == FitnessMachineFeature(
        machine=MachineFeatures.TOTAL_DISTANCE
        | MachineFeatures.INCLINATION
        | MachineFeatures.ELAPSED_TIME,
        target_settings=TargetSettingFeatures.SPEED | TargetSettingFeatures.INCLINATION,
    )
    assert TargetSettingFeatures.SPEED in feature.target_settings
    assert TargetSettingFeatures.RESISTANCE not in feature.target_settings
    assert encode_feature(feature) == data


def test_reserved_feature_bits_are_kept() -> None:
    data = bytes.fromhex("00 00 00 80 00 00 02 00")
    assert encode_feature(decode_feature(data)) == data


def test_speed_and_inclination_ranges() -> None:
    # Values ours: 1.0-6.0 km/h in 0.1 steps; -3.0..15.0 % in 0.5 steps.
    speed_data = bytes.fromhex("64 00 58 02 0a 00")
    assert decode_speed_range(speed_data) == SpeedRange(1.0, 6.0, 0.1)
    assert encode_speed_range(SpeedRange(1.0, 6.0, 0.1)) == speed_data
    incline_data = bytes.fromhex("e2 ff 96 00 05 00")
    assert decode_inclination_range(incline_data) == InclinationRange(-3.0, 15.0, 0.5)
    assert encode_inclination_range(InclinationRange(-3.0, 15.0, 0.5)) == incline_data


@pytest.mark.parametrize(
    ("decode", "hex_bytes", "name"),
    [
        (decode_feature, "00 00 00 00 00 00 00", "Fitness Machine Feature (0x2ACC)"),
        (decode_speed_range, "64 00 58 02 0a", "Supported Speed Range (0x2AD4)"),
        (decode_inclination_range, "64 00 58 02 0a 00 00", "Supported Inclination Range"),
    ],
)
def test_wrong_lengths_are_refused(decode: object, hex_bytes: str, name: str) -> None:
    assert callable(decode)
    with pytest.raises(CodecError, match=re.escape(name)):
        decode(bytes.fromhex(hex_bytes))


# --- Every Machine Status opcode (FTMS v1.0.1 Table 4.26; values ours) --------------------------

OTHER_STATUSES: list[tuple[str, MachineStatus]] = [
    ("07 2d", TargetResistanceLevelChanged(resistance_level=4.5)),
    ("08 38 ff", TargetPowerChanged(power_w=-200)),
    ("09 8c", TargetHeartRateChanged(heart_rate_bpm=140)),
    ("0a f4 01", TargetedExpendedEnergyChanged(energy_kcal=500)),
    ("0b 10 27", TargetedNumberOfStepsChanged(steps=10000)),
    ("0c e8 03", TargetedNumberOfStridesChanged(strides=1000)),
    ("0d a0 86 01", TargetedDistanceChanged(distance_m=100000)),
    ("0e 08 07", TargetedTrainingTimeChanged(time_s=1800)),
    ("0f 2c 01 58 02", TargetedTimeInTwoHeartRateZonesChanged(300, 600)),
    ("10 3c 00 78 00 b4 00", TargetedTimeInThreeHeartRateZonesChanged(60, 120, 180)),
    (
        "11 01 00 02 00 03 00 04 00 05 00",
        TargetedTimeInFiveHeartRateZonesChanged(1, 2, 3, 4, 5),
    ),
    ("12 e8 03 9c ff 28 33", IndoorBikeSimulationParametersChanged(1.0, -1.0, 0.004, 0.51)),
    ("13 26 52", WheelCircumferenceChanged(circumference_mm=2103.0)),
    ("14 02", SpinDownStatusChanged(status=2)),
    ("15 b5 00", TargetedCadenceChanged(cadence_per_min=90.5)),
]


@pytest.mark.parametrize(("hex_bytes", "status"), OTHER_STATUSES)
def test_every_other_status_opcode(hex_bytes: str, status: MachineStatus) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_machine_status(data) == status
    assert encode_machine_status(status) == data


def test_every_status_opcode_from_1_to_0x15_and_0xff_decodes() -> None:
    parameter_lengths = {
        0x02: 1, 0x05: 2, 0x06: 2, 0x07: 1, 0x08: 2, 0x09: 1, 0x0A: 2, 0x0B: 2, 0x0C: 2,
        0x0D: 3, 0x0E: 2, 0x0F: 4, 0x10: 6, 0x11: 10, 0x12: 6, 0x13: 2, 0x14: 1, 0x15: 2,
    }  # fmt: skip
    for opcode in [*range(0x01, 0x16), 0xFF]:
        parameter = b"\x01" * parameter_lengths.get(opcode, 0)
        status = decode_machine_status(bytes((opcode,)) + parameter)
        assert encode_machine_status(status) == bytes((opcode,)) + parameter


def test_control_opcode_table_is_complete() -> None:
    assert [int(op) for op in ControlOpcode] == [*range(0x15), 0x80]


# --- Encoders refuse foreign values with CodecError, never AttributeError ------------------------


@pytest.mark.parametrize(
    "encode",
    [
        encode_control_request,
        encode_control_response,
        encode_machine_status,
        encode_training_status,
        encode_feature,
        encode_speed_range,
        encode_inclination_range,
        encode_ftms_service_data,
    ],
)
def test_encoders_refuse_foreign_objects(encode: object) -> None:
    assert callable(encode)
    with pytest.raises(CodecError, match="cannot encode"):
        encode(object())


@pytest.mark.parametrize(
    "response",
    [
        ControlResponse(request_opcode=256, result=ResultCode.SUCCESS),
        ControlResponse(request_opcode="02", result=ResultCode.SUCCESS),  # type: ignore[arg-type]
        ControlResponse(request_opcode=2, result=7),  # type: ignore[arg-type]
    ],
)
def test_unencodable_responses(response: ControlResponse) -> None:
    with pytest.raises(CodecError):
        encode_control_response(response)


def test_reserved_machine_type_bits_cannot_be_advertised() -> None:
    with pytest.raises(CodecError, match="FTMS reserves"):
        encode_ftms_service_data(FtmsServiceData(available=True, machine_types=MachineType(0x100)))
