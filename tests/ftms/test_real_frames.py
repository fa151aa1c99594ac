"""Every frame of ../shared/reference/real-decks.md decodes to what that note says it means.

These are bytes real treadmills put on the air (captures, logs and other projects' tests), not
bytes our own encoder produced, so they catch a codec that agrees with itself but not with the
decks. Each case names its source; the meanings are the note's, checked field by field.
"""

from __future__ import annotations

import pytest

from treadmilld.ftms import (
    ControlOpcode,
    ControlResponse,
    FtmsServiceData,
    MachineFeatures,
    MachineType,
    RequestControl,
    ResultCode,
    SetTargetInclination,
    StartedOrResumedByUser,
    TargetSettingFeatures,
    TargetSpeedChanged,
    TreadmillData,
    decode_control_request,
    decode_control_response,
    decode_feature,
    decode_ftms_service_data,
    decode_inclination_range,
    decode_machine_status,
    decode_speed_range,
    decode_training_status,
    decode_treadmill_data,
    encode_treadmill_data,
)

# The Urevo E1L capture every §1 case comes from.
E1L_CAPTURE = "blak3r/treadspan protocol-analysis/urevo-E1L (nRF Sniffer, Kinomap session)"


def _frame(hex_bytes: str) -> bytes:
    return bytes.fromhex(hex_bytes)


# --- §1: the Urevo E1L session ------------------------------------------------------------------


def test_urevo_e1l_treadmill_data_is_2_25_kmh_with_steps_at_bit_13() -> None:
    # Source: E1L_CAPTURE. Flags 0x2584: distance, energy, heart rate, elapsed time, and the
    # vendor step count under reserved bit 13 that several decks use.
    record = decode_treadmill_data(_frame("84 25 e1 00 00 00 00 01 00 00 00 00 00 21 00 02 00 00"))
    assert record == TreadmillData(
        instantaneous_speed_kmh=2.25,
        total_distance_m=0,
        total_energy_kcal=1,
        energy_per_hour_kcal=0,
        energy_per_minute_kcal=0,
        heart_rate_bpm=0,
        elapsed_time_s=33,
        step_count=2,
    )


@pytest.mark.parametrize(
    ("hex_bytes", "status"),
    [
        ("00 0d", 0x0D),  # Source: E1L_CAPTURE.
        ("00 0e", 0x0E),  # Source: E1L_CAPTURE.
        ("00 0f", 0x0F),  # Source: E1L_CAPTURE.
        # FTMS v1.0 §4.10.1.2 reserves 0x0E and up; the E1L sends these anyway. They must decode
        # (pyftms 0.4.15 raises on `00 10` during connect: real-decks.md §4).
        ("00 10", 0x10),  # Source: E1L_CAPTURE.
        ("00 11", 0x11),  # Source: E1L_CAPTURE.
    ],
)
def test_urevo_e1l_training_status_including_reserved_values(hex_bytes: str, status: int) -> None:
    decoded = decode_training_status(_frame(hex_bytes))
    assert decoded.status == status
    assert decoded.text is None


def test_urevo_e1l_target_speed_changed_follows_the_slowing_belt_down_to_zero() -> None:
    # Source: E1L_CAPTURE. Sent every 0.1-0.4 s while the belt decelerates; not a console action.
    frames = ["05 d1 00", "05 c1 00", "05 b1 00", "05 a0 00", "05 00 00"]
    speeds = [decode_machine_status(_frame(f)) for f in frames]
    assert speeds == [
        TargetSpeedChanged(speed_kmh=2.09),
        TargetSpeedChanged(speed_kmh=1.93),
        TargetSpeedChanged(speed_kmh=1.77),
        TargetSpeedChanged(speed_kmh=1.60),
        TargetSpeedChanged(speed_kmh=0.0),
    ]


def test_urevo_e1l_started_by_user_with_two_trailing_bytes() -> None:
    # Source: E1L_CAPTURE. FTMS gives 0x04 no parameter; the two extra bytes are ignored, not
    # an error.
    assert decode_machine_status(_frame("04 00 00")) == StartedOrResumedByUser()


@pytest.mark.parametrize(
    ("hex_bytes", "opcode"),
    [
        ("80 03 01", ControlOpcode.SET_TARGET_INCLINATION),  # Source: E1L_CAPTURE (notified).
        ("80 00 01", ControlOpcode.REQUEST_CONTROL),  # Source: E1L_CAPTURE (notified).
        ("80 07 01", ControlOpcode.START_OR_RESUME),  # Source: E1L_CAPTURE (notified).
        ("80 08 01", ControlOpcode.STOP_OR_PAUSE),  # Source: E1L_CAPTURE (notified).
    ],
)
def test_urevo_e1l_control_point_answers_are_successes(
    hex_bytes: str, opcode: ControlOpcode
) -> None:
    assert decode_control_response(_frame(hex_bytes)) == ControlResponse(
        request_opcode=opcode, result=ResultCode.SUCCESS
    )


def test_kinomap_requests_on_the_urevo_e1l() -> None:
    # Source: E1L_CAPTURE. Kinomap writes Set Target Inclination 6.0 % before any Request Control.
    assert decode_control_request(_frame("03 3c 00")) == SetTargetInclination(inclination_pct=6.0)
    assert decode_control_request(_frame("00")) == RequestControl()


def test_urevo_e1l_feature_claims_speed_targets_but_no_inclination_target() -> None:
    # Source: E1L_CAPTURE, Fitness Machine Feature read.
    feature = decode_feature(_frame("45 56 00 00 05 00 00 00"))
    assert MachineFeatures.STEP_COUNT in feature.machine
    assert MachineFeatures.ELAPSED_TIME in feature.machine
    assert MachineFeatures.INCLINATION not in feature.machine
    assert TargetSettingFeatures.SPEED in feature.target_settings
    assert TargetSettingFeatures.INCLINATION not in feature.target_settings


def test_urevo_e1l_speed_range_has_a_maximum_off_its_own_step_grid() -> None:
    # Source: E1L_CAPTURE, Supported Speed Range read: 0.96 to 6.43 km/h by 0.32 km/h.
    speed_range = decode_speed_range(_frame("60 00 83 02 20 00"))
    assert (speed_range.minimum_kmh, speed_range.maximum_kmh) == (0.96, 6.43)
    assert speed_range.increment_kmh == 0.32
    steps = (speed_range.maximum_kmh - speed_range.minimum_kmh) / speed_range.increment_kmh
    assert abs(steps - round(steps)) > 0.01  # 16.97 steps: 6.43 is not on the grid


def test_urevo_e1l_inclination_range_is_all_zero() -> None:
    # Source: E1L_CAPTURE: the deck has no incline and says so with an all-zero range.
    incline = decode_inclination_range(_frame("00 00 00 00 00 00"))
    assert (incline.minimum_pct, incline.maximum_pct, incline.increment_pct) == (0.0, 0.0, 0.0)


def test_urevo_e1l_service_data_from_the_scan_response() -> None:
    # Source: E1L_CAPTURE: AD structure `06 16 26 18 01 01 00`; after the 0x1826 UUID the value is
    # flags 0x01 (available) and machine type 0x0001 (treadmill).
    assert decode_ftms_service_data(_frame("01 01 00")) == FtmsServiceData(
        available=True, machine_types=MachineType.TREADMILL
    )


# --- §2: other real frames ----------------------------------------------------------------------


def test_horizon_idle_record_is_all_zero() -> None:
    # Source: cagnulein/qdomyos-zwift#175 (Horizon treadmill, iOS log).
    record = decode_treadmill_data(_frame("84 04 00 00 00 00 00 00 00 00 00 00 00 00"))
    assert record.instantaneous_speed_kmh == 0.0
    assert record.total_distance_m == 0
    assert record.elapsed_time_s == 0


def test_one_kmh_with_energy_rates_not_available() -> None:
    # Source: blak3r/treadspan urevo-E1L README (Sperax RM-01 frame).
    record = decode_treadmill_data(_frame("84 04 64 00 14 00 00 02 00 ff ff ff 3f 00"))
    assert record.instantaneous_speed_kmh == 1.0
    assert record.total_distance_m == 20
    assert record.total_energy_kcal == 2
    assert record.energy_per_hour_kcal is None
    assert record.energy_per_minute_kcal is None
    assert record.elapsed_time_s == 63


def test_citysports_six_kmh_with_10007_steps() -> None:
    # Source: hughesjs/FitnessMachine tests (CITYSPORTS-Linker).
    data = _frame("84 24 58 02 4e 20 00 11 01 ff ff ff 52 17 17 27 00")
    record = decode_treadmill_data(data)
    assert record.instantaneous_speed_kmh == 6.0
    assert record.step_count == 10007
    assert record.total_distance_m == 8270
    assert record.elapsed_time_s == 5970
    # A record we cannot put back on the air unchanged would make the simulator lie.
    assert encode_treadmill_data(record) == data


def test_all_zero_record_with_incline_elevation_heart_rate_and_steps() -> None:
    # Source: dudanov/pyftms tests, from hassio-ftms#3 (Urevo Spacewalk 3S): flags 0x259c.
    record = decode_treadmill_data(_frame("9c 25" + " 00" * 24))
    assert record.instantaneous_speed_kmh == 0.0
    assert record.inclination_pct == 0.0
    assert record.positive_elevation_gain_m == 0.0
    assert record.heart_rate_bpm == 0
    assert record.step_count == 0


def test_fitshow_six_kmh_at_three_percent() -> None:
    # Source: a FitShow FS-BC11B7 probe report (real-decks.md §2).
    record = decode_treadmill_data(_frame("8c 04 58 02 32 00 00 1e 00 00 00 03 00 00 00 00 ee 00"))
    assert record.instantaneous_speed_kmh == 6.0
    assert record.inclination_pct == 3.0
    assert record.total_distance_m == 50
    assert record.elapsed_time_s == 238


def test_fitshow_swapped_service_data_still_says_treadmill() -> None:
    # Source: the same FitShow FS-BC11B7 report: flags and type bytes swapped, `01 00 01`.
    assert decode_ftms_service_data(_frame("01 00 01")) == FtmsServiceData(
        available=True, machine_types=MachineType.TREADMILL
    )
