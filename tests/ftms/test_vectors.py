"""Byte vectors from the FTMS spec, other projects' protocol docs and real treadmills.

Each vector cites where its bytes come from. Where a source documents a layout but no literal
bytes, the values are ours and the comment says so.
"""

from __future__ import annotations

import pytest

from treadmilld.ftms import (
    CCCD_UUID,
    CONTROL_POINT_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    TREADMILL_DATA_UUID,
    CodecError,
    ControlPermissionLost,
    ControlRequest,
    ControlResponse,
    FtmsServiceData,
    MachineStatus,
    MachineType,
    RequestControl,
    Reset,
    ResetStatus,
    ResultCode,
    SetTargetedDistance,
    SetTargetedTrainingTime,
    SetTargetInclination,
    SetTargetSpeed,
    StartedOrResumedByUser,
    StartOrResume,
    StopKind,
    StopOrPause,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetInclineChanged,
    TargetSpeedChanged,
    TreadmillData,
    decode_control_request,
    decode_control_response,
    decode_ftms_service_data,
    decode_machine_status,
    decode_treadmill_data,
    encode_control_request,
    encode_control_response,
    encode_ftms_service_data,
    encode_machine_status,
    encode_treadmill_data,
    uuid16,
)

# --- Control Point requests --------------------------------------------------------------------

CONTROL_REQUESTS: list[tuple[str, ControlRequest]] = [
    # FTMS v1.0.1 Table 4.15: 4.0 km/h (02 90 01 is also on the MC-21 wire, walkingpad-controller
    # docs/ftms-protocol-reference.md §3), 5 % and -3 % (values ours).
    ("02 90 01", SetTargetSpeed(speed_kmh=4.0)),
    ("03 32 00", SetTargetInclination(inclination_pct=5.0)),
    ("03 e2 ff", SetTargetInclination(inclination_pct=-3.0)),
    # KingSmith MC-21 on the wire: mcdax/walkingpad-controller docs/ftms-protocol-reference.md §3.
    ("00", RequestControl()),
    ("07", StartOrResume()),
    ("08 01", StopOrPause(kind=StopKind.STOP)),
    ("08 02", StopOrPause(kind=StopKind.PAUSE)),
    # FTMS v1.0.1 Table 4.15: Reset has no parameter; targeted distance is uint24 metres,
    # targeted training time uint16 seconds. Values ours.
    ("01", Reset()),
    ("0c 10 27 00", SetTargetedDistance(distance_m=10_000)),
    ("0c 01 00 01", SetTargetedDistance(distance_m=0x010001)),
    ("0d 08 07", SetTargetedTrainingTime(time_s=1800)),
]


@pytest.mark.parametrize(("hex_bytes", "request_"), CONTROL_REQUESTS)
def test_control_request_vectors_encode_and_decode(
    hex_bytes: str, request_: ControlRequest
) -> None:
    data = bytes.fromhex(hex_bytes)
    assert encode_control_request(request_) == data
    assert decode_control_request(data) == request_


def test_set_target_speed_rounds_to_the_nearest_hundredth() -> None:
    # 3.456 km/h is not on the 0.01 grid; the treadmill gets 3.46 (raw 346 = 0x015a).
    assert encode_control_request(SetTargetSpeed(3.456)) == bytes.fromhex("02 5a 01")


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (SetTargetSpeed(-0.5), "speed_kmh"),
        (SetTargetSpeed(655.36), "speed_kmh"),
        (SetTargetInclination(3276.8), "inclination_pct"),
        (SetTargetedDistance(0x1000000), "distance_m"),
        (SetTargetedTrainingTime(-1), "time_s"),
        (StopOrPause(kind=3), "kind"),  # type: ignore[arg-type]
    ],
)
def test_out_of_range_requests_are_refused(request_: ControlRequest, problem: str) -> None:
    with pytest.raises(CodecError, match=problem) as raised:
        encode_control_request(request_)
    assert "Control Point (0x2AD9)" in str(raised.value)


@pytest.mark.parametrize(
    ("hex_bytes", "problem"),
    [
        ("", "empty"),
        ("02 90", "SetTargetSpeed takes 2 parameter bytes, got 1"),
        ("02 90 01 00", "SetTargetSpeed takes 2 parameter bytes, got 3"),
        ("07 00", "StartOrResume takes 0 parameter bytes, got 1"),
        ("08", "StopOrPause takes 1 parameter bytes, got 0"),
        ("08 03", "not 1 \\(stop\\) or 2 \\(pause\\)"),
        ("05 c8 00", "opcode 0x05"),  # Set Target Power: a bike procedure we do not decode
        ("80 00 01", "opcode 0x80"),
    ],
)
def test_malformed_requests_raise_codec_error_with_the_bytes(hex_bytes: str, problem: str) -> None:
    data = bytes.fromhex(hex_bytes)
    with pytest.raises(CodecError, match=problem) as raised:
        decode_control_request(data)
    assert (data.hex(" ") or "none") in str(raised.value)


# --- Control Point responses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_bytes", "response"),
    [
        # KingSmith MC-21 answers its first Request Control with Operation Failed
        # (walkingpad-controller docs/ftms-protocol-reference.md §3.2).
        ("80 00 04", ControlResponse(0x00, ResultCode.OPERATION_FAILED)),
        # Without the vendor pre-amble the MC-21 refuses commands (same document, §3.1).
        ("80 02 05", ControlResponse(0x02, ResultCode.CONTROL_NOT_PERMITTED)),
        ("80 07 01", ControlResponse(0x07, ResultCode.SUCCESS)),
        ("80 03 03", ControlResponse(0x03, ResultCode.INVALID_PARAMETER)),
        ("80 11 02", ControlResponse(0x11, ResultCode.NOT_SUPPORTED)),
    ],
)
def test_control_response_vectors(hex_bytes: str, response: ControlResponse) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_control_response(data) == response
    assert encode_control_response(response) == data


def test_response_parameters_after_the_result_are_ignored() -> None:
    # FTMS §4.16.2.22: some procedures append a response parameter (e.g. spin down).
    assert decode_control_response(bytes.fromhex("80 13 01 2c 01 f4 01")) == ControlResponse(
        0x13, ResultCode.SUCCESS
    )


@pytest.mark.parametrize(
    ("hex_bytes", "problem"),
    [
        ("80 02", "needs 3 bytes"),
        ("81 02 01", "0x81 is not the response code"),
        ("80 02 00", "result code 0x00"),
        ("80 02 09", "result code 0x09"),
    ],
)
def test_malformed_responses_name_the_problem(hex_bytes: str, problem: str) -> None:
    with pytest.raises(CodecError, match=problem) as raised:
        decode_control_response(bytes.fromhex(hex_bytes))
    assert hex_bytes in str(raised.value)


# --- Fitness Machine Status --------------------------------------------------------------------

MACHINE_STATUSES: list[tuple[str, MachineStatus]] = [
    # FTMS v1.0.1 Table 4.26: 05 69 00 = target speed 1.05 km/h (values ours).
    ("05 69 00", TargetSpeedChanged(speed_kmh=1.05)),
    # KingSmith MC-21 events on the wire (walkingpad-controller docs §6.3).
    ("02 01", StoppedOrPausedByUser(kind=StopKind.STOP)),
    ("02 02", StoppedOrPausedByUser(kind=StopKind.PAUSE)),
    ("03", StoppedBySafetyKey()),
    ("04", StartedOrResumedByUser()),
    # FTMS v1.0.1 Table 4.26; values ours.
    ("01", ResetStatus()),
    ("06 e2 ff", TargetInclineChanged(inclination_pct=-3.0)),
    ("ff", ControlPermissionLost()),
]


@pytest.mark.parametrize(("hex_bytes", "status"), MACHINE_STATUSES)
def test_machine_status_vectors(hex_bytes: str, status: MachineStatus) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_machine_status(data) == status
    assert encode_machine_status(status) == data


@pytest.mark.parametrize(
    ("hex_bytes", "problem"),
    [
        ("", "empty"),
        ("00", "opcode 0x00"),
        ("16", "opcode 0x16"),
        ("05 69", "TargetSpeedChanged needs 2 parameter bytes, got 1"),
        ("02 00", "not 1 \\(stop\\) or 2 \\(pause\\)"),
    ],
)
def test_malformed_machine_status_raises_codec_error(hex_bytes: str, problem: str) -> None:
    with pytest.raises(CodecError, match=problem) as raised:
        decode_machine_status(bytes.fromhex(hex_bytes))
    assert "Fitness Machine Status (0x2ADA)" in str(raised.value)


# --- Treadmill Data ----------------------------------------------------------------------------


def test_horizon_idle_record() -> None:
    # Horizon treadmill, iOS log in cagnulein/qdomyos-zwift#175: flags 0x0484 = speed (bit 0
    # clear), total distance (bit 2), energy (bit 7), elapsed time (bit 10), all zero.
    record = decode_treadmill_data(bytes.fromhex("84 04 00 00 00 00 00 00 00 00 00 00 00 00"))
    assert record == TreadmillData(
        instantaneous_speed_kmh=0.0,
        total_distance_m=0,
        total_energy_kcal=0,
        energy_per_hour_kcal=0,
        energy_per_minute_kcal=0,
        elapsed_time_s=0,
    )


def test_kingsmith_step_count_at_reserved_bit_13() -> None:
    # Layout 84 24 | speed | distance u24 | energy 5 bytes (per-hour, per-minute 0xff..: not
    # available) | elapsed | steps as uint16 + 00 pad: hughesjs/FitnessMachine
    # protocol/README.md (CITYSPORTS-Linker); walkingpad-controller docs §6.2 (KingSmith MC-21
    # snoops) documents the same 3 bytes at bit 13, and hassio-ftms#3 (Urevo Spacewalk 3S)
    # fails to deserialize exactly these records. Values ours: 3.00 km/h, 150 m, 12 kcal,
    # 120 s, 1000 steps.
    data = bytes.fromhex("84 24 2c 01 96 00 00 0c 00 ff ff ff 78 00 e8 03 00")
    record = decode_treadmill_data(data)
    assert record == TreadmillData(
        instantaneous_speed_kmh=3.0,
        total_distance_m=150,
        total_energy_kcal=12,
        energy_per_hour_kcal=None,
        energy_per_minute_kcal=None,
        elapsed_time_s=120,
        step_count=1000,
    )
    assert encode_treadmill_data(record) == data


def test_bit_13_set_without_step_bytes_is_accepted() -> None:
    # KS-HD-Z1D capture as recorded in kkz6/WalkingPadSDK Tests/FTMSTests.swift: flags 0x2484
    # but no step bytes after the elapsed time. The length disambiguates; steps are unknown.
    data = bytes.fromhex("84 24 2c 01 96 00 00 0c 00 00 00 00 78 00")
    assert decode_treadmill_data(data) == TreadmillData(
        instantaneous_speed_kmh=3.0,
        total_distance_m=150,
        total_energy_kcal=12,
        energy_per_hour_kcal=0,
        energy_per_minute_kcal=0,
        elapsed_time_s=120,
    )


def test_every_field_in_spec_order_with_its_resolution() -> None:
    # FTMS v1.0.1 §4.4.1, Table 4.5: flags 0x1ffe = bits 1-12 set, bit 0 clear.
    data = bytes.fromhex(
        "fe 1f"
        " c2 01"  # instantaneous speed 4.50 km/h
        " 40 01"  # average speed 3.20 km/h
        " 70 11 01"  # total distance 70000 m (uint24)
        " f1 ff 19 00"  # inclination -1.5 %, ramp angle 2.5 deg
        " 0c 00 22 00"  # elevation gain +1.2 m, -3.4 m
        " 0d 14"  # instantaneous pace 1.3, average pace 2.0 km/min
        " 37 00 2c 01 05"  # energy 55 kcal, 300 kcal/h, 5 kcal/min
        " 78"  # heart rate 120 bpm
        " 2a"  # MET 4.2
        " 58 02 64 00"  # elapsed 600 s, remaining 100 s
        " fb ff 4b 00"  # force -5 N, power 75 W
    )
    record = decode_treadmill_data(data)
    assert record == TreadmillData(
        instantaneous_speed_kmh=4.5,
        average_speed_kmh=3.2,
        total_distance_m=70000,
        inclination_pct=-1.5,
        ramp_angle_deg=2.5,
        positive_elevation_gain_m=1.2,
        negative_elevation_gain_m=3.4,
        instantaneous_pace_km_per_min=1.3,
        average_pace_km_per_min=2.0,
        total_energy_kcal=55,
        energy_per_hour_kcal=300,
        energy_per_minute_kcal=5,
        heart_rate_bpm=120,
        metabolic_equivalent=4.2,
        elapsed_time_s=600,
        remaining_time_s=100,
        force_on_belt_n=-5,
        power_output_w=75,
    )
    assert encode_treadmill_data(record) == data


def test_not_available_sentinels_decode_as_none_and_encode_back() -> None:
    # FTMS §4.4.1.5/.6/.10-.12/.17/.18: 0x7fff, 0xffff and 0xff mean "not available".
    data = bytes.fromhex("88 10 00 00 ff 7f ff 7f ff ff ff ff ff ff 7f ff 7f")
    record = decode_treadmill_data(data)
    assert record == TreadmillData(instantaneous_speed_kmh=0.0)
    # Only the values inside a present group can be "not available"; one real value keeps the
    # group, and its neighbours go back on the air as sentinels.
    partial = TreadmillData(instantaneous_speed_kmh=0.0, inclination_pct=2.0, total_energy_kcal=9)
    assert encode_treadmill_data(partial) == bytes.fromhex("88 00 00 00 14 00 ff 7f 09 00 ff ff ff")


def test_a_fragment_has_no_speed_and_says_more_data() -> None:
    # FTMS §4.19: bit 0 = 1 means more data follows and the speed is absent.
    record = decode_treadmill_data(bytes.fromhex("05 00 40 0d 03"))
    assert record == TreadmillData(total_distance_m=200_000, more_data=True)


@pytest.mark.parametrize(
    ("hex_bytes", "problem"),
    [
        ("", "too short"),
        ("00", "too short"),
        ("00 00 90", "announce 4 bytes, got 3"),
        ("00 00 90 01 00", "announce 4 bytes, got 5"),
        ("00 40 90 01", "reserved bits 14-15"),
        ("00 80 90 01", "reserved bits 14-15"),
        ("00 20 90 01 00", "announce 7 bytes, got 5"),
    ],
)
def test_malformed_treadmill_data_raises_codec_error(hex_bytes: str, problem: str) -> None:
    with pytest.raises(CodecError, match=problem) as raised:
        decode_treadmill_data(bytes.fromhex(hex_bytes))
    assert "Treadmill Data (0x2ACD)" in str(raised.value)


def test_bleak_bytearray_is_accepted() -> None:
    assert decode_treadmill_data(bytearray.fromhex("00 00 90 01")) == TreadmillData(
        instantaneous_speed_kmh=4.0
    )


# --- Advertisement ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hex_bytes",
    [
        "01 01 00",  # Urevo E1L AD 06 16 26 18 01 01 00 (blak3r/treadspan), value after the UUID
        "01 00 01",  # type bytes swapped (dudanov/pyftms `machine_type.py` ORs the bytes)
        "01 01",  # one type byte only (design choice: accepted)
        "01 01 00 00",  # trailing byte: ignored
    ],
)
def test_treadmill_advertisement_variants(hex_bytes: str) -> None:
    service_data = decode_ftms_service_data(bytes.fromhex(hex_bytes))
    assert service_data == FtmsServiceData(available=True, machine_types=MachineType.TREADMILL)
    assert service_data.is_treadmill


def test_unavailable_machine_and_encoding() -> None:
    busy_bike = FtmsServiceData(available=False, machine_types=MachineType.INDOOR_BIKE)
    assert encode_ftms_service_data(busy_bike) == bytes.fromhex("00 20 00")
    assert not decode_ftms_service_data(bytes.fromhex("00 20 00")).is_treadmill
    assert encode_ftms_service_data(
        FtmsServiceData(available=True, machine_types=MachineType.TREADMILL)
    ) == bytes.fromhex("01 01 00")


def test_advertisement_too_short() -> None:
    with pytest.raises(CodecError, match="FTMS Service Data"):
        decode_ftms_service_data(b"\x01")


# --- UUIDs -------------------------------------------------------------------------------------


def test_uuids_are_full_lowercase_128_bit() -> None:
    assert FTMS_SERVICE_UUID == "00001826-0000-1000-8000-00805f9b34fb"
    assert TREADMILL_DATA_UUID == "00002acd-0000-1000-8000-00805f9b34fb"
    assert CONTROL_POINT_UUID == "00002ad9-0000-1000-8000-00805f9b34fb"
    assert MACHINE_STATUS_UUID == "00002ada-0000-1000-8000-00805f9b34fb"
    assert CCCD_UUID == "00002902-0000-1000-8000-00805f9b34fb"
    assert uuid16(0x2A29) == "00002a29-0000-1000-8000-00805f9b34fb"
    with pytest.raises(CodecError, match="16-bit"):
        uuid16(0x10000)
