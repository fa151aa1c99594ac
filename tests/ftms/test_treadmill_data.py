"""Treadmill Data fragments, reassembly, merging and encoder refusals (FTMS v1.0.1 §4.4, §4.19)."""

from __future__ import annotations

import pytest

from treadmilld.ftms import (
    CodecError,
    TreadmillData,
    TreadmillDataAssembler,
    decode_treadmill_data,
    encode_treadmill_data,
    encode_treadmill_data_fragments,
    merge_treadmill_data,
)

FULL_RECORD = TreadmillData(
    instantaneous_speed_kmh=4.5,
    average_speed_kmh=3.2,
    total_distance_m=70000,
    inclination_pct=-1.5,
    ramp_angle_deg=None,
    positive_elevation_gain_m=1.2,
    negative_elevation_gain_m=0.0,
    instantaneous_pace_km_per_min=1.3,
    average_pace_km_per_min=2.0,
    total_energy_kcal=55,
    energy_per_hour_kcal=None,
    energy_per_minute_kcal=3,
    heart_rate_bpm=120,
    metabolic_equivalent=4.2,
    elapsed_time_s=600,
    remaining_time_s=100,
    force_on_belt_n=-5,
    power_output_w=None,
    step_count=1234,
)


def test_a_record_that_fits_is_one_notification() -> None:
    record = TreadmillData(instantaneous_speed_kmh=2.5, elapsed_time_s=30)
    assert encode_treadmill_data_fragments(record, mtu=23) == [encode_treadmill_data(record)]


@pytest.mark.parametrize("mtu", [10, 11, 16, 23, 30])
def test_a_full_record_splits_under_the_mtu_and_reassembles(mtu: int) -> None:
    fragments = encode_treadmill_data_fragments(FULL_RECORD, mtu=mtu)
    assert len(fragments) > 1
    assert all(len(fragment) <= mtu - 3 for fragment in fragments)
    decoded = [decode_treadmill_data(fragment) for fragment in fragments]
    # Every fragment but the last says More Data and lacks the speed; the last carries it.
    assert [record.more_data for record in decoded] == [True] * (len(fragments) - 1) + [False]
    assert all(record.instantaneous_speed_kmh is None for record in decoded[:-1])
    assert decoded[-1].instantaneous_speed_kmh == 4.5

    assembler = TreadmillDataAssembler()
    outputs = [assembler.feed(fragment) for fragment in fragments]
    assert outputs[:-1] == [None] * (len(fragments) - 1)
    assert outputs[-1] == FULL_RECORD
    assert not assembler.has_partial_record


def test_mtu_too_small_for_a_field_group() -> None:
    # The energy group is 5 bytes; with 2 flag bytes it needs at least 7 bytes of payload.
    with pytest.raises(CodecError, match="MTU of 9"):
        encode_treadmill_data_fragments(FULL_RECORD, mtu=9)


def test_only_whole_records_can_be_split() -> None:
    with pytest.raises(CodecError, match="whole record"):
        encode_treadmill_data_fragments(TreadmillData(elapsed_time_s=3, more_data=True), mtu=23)
    with pytest.raises(CodecError, match="integer"):
        encode_treadmill_data_fragments(FULL_RECORD, mtu="23")  # type: ignore[arg-type]


def test_reset_drops_a_partial_record() -> None:
    fragments = encode_treadmill_data_fragments(FULL_RECORD, mtu=20)
    assembler = TreadmillDataAssembler()
    assert assembler.feed(fragments[0]) is None
    holding_a_fragment = assembler.has_partial_record
    assert holding_a_fragment
    assembler.reset()  # the link dropped
    assert not assembler.has_partial_record
    # The next connection's first whole record carries nothing of the lost fragment.
    fresh = assembler.feed(encode_treadmill_data(TreadmillData(instantaneous_speed_kmh=1.0)))
    assert fresh == TreadmillData(instantaneous_speed_kmh=1.0)


def test_a_bad_fragment_discards_the_partial_record() -> None:
    fragments = encode_treadmill_data_fragments(FULL_RECORD, mtu=20)
    assembler = TreadmillDataAssembler()
    assembler.feed(fragments[0])
    with pytest.raises(CodecError):
        assembler.feed(b"\x00\x40")
    assert not assembler.has_partial_record
    assert assembler.feed(fragments[-1]) == decode_treadmill_data(fragments[-1])


def test_unfragmented_records_pass_straight_through() -> None:
    assembler = TreadmillDataAssembler()
    for speed in (1.0, 1.5, 2.0):
        data = encode_treadmill_data(TreadmillData(instantaneous_speed_kmh=speed))
        assert assembler.feed(data) == TreadmillData(instantaneous_speed_kmh=speed)


def test_merge_keeps_older_values_the_newer_record_lacks() -> None:
    older = TreadmillData(instantaneous_speed_kmh=3.0, total_distance_m=100, heart_rate_bpm=90)
    newer = TreadmillData(instantaneous_speed_kmh=3.5, elapsed_time_s=60)
    assert merge_treadmill_data(older, newer) == TreadmillData(
        instantaneous_speed_kmh=3.5, total_distance_m=100, heart_rate_bpm=90, elapsed_time_s=60
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (TreadmillData(), "instantaneous_speed_kmh is None"),
        (TreadmillData(instantaneous_speed_kmh=1.0, more_data=True), "fragment"),
        (TreadmillData(instantaneous_speed_kmh=655.36), "instantaneous_speed_kmh=655.36"),
        (TreadmillData(instantaneous_speed_kmh=-0.01), "instantaneous_speed_kmh"),
        (TreadmillData(instantaneous_speed_kmh=1.0, total_distance_m=2**24), "total_distance_m"),
        # 0x7fff is the "not available" value, so 3276.7 % cannot be sent as a real value.
        (TreadmillData(instantaneous_speed_kmh=1.0, inclination_pct=3276.7), "inclination_pct"),
        (TreadmillData(instantaneous_speed_kmh=1.0, heart_rate_bpm=256), "heart_rate_bpm"),
        (TreadmillData(instantaneous_speed_kmh=float("nan")), "not a finite number"),
        (TreadmillData(instantaneous_speed_kmh=1.0, step_count="many"), "not a number"),  # type: ignore[arg-type]
        (TreadmillData(instantaneous_speed_kmh=True), "not a number"),
        # Elevation gain has no "not available" value: both travel together.
        (
            TreadmillData(instantaneous_speed_kmh=1.0, positive_elevation_gain_m=2.0),
            "negative_elevation_gain_m is None",
        ),
    ],
)
def test_encoder_refuses_what_it_cannot_send(record: TreadmillData, problem: str) -> None:
    with pytest.raises(CodecError, match=problem):
        encode_treadmill_data(record)


def test_encoder_refuses_other_types() -> None:
    with pytest.raises(CodecError, match="expected TreadmillData"):
        encode_treadmill_data({"instantaneous_speed_kmh": 1.0})  # type: ignore[arg-type]


def test_decoded_values_are_rounded_to_the_resolution() -> None:
    # raw 123 * 0.01 is 1.2300000000000002 in floating point; the codec returns 1.23.
    record = decode_treadmill_data(bytes.fromhex("00 00 7b 00"))
    assert record.instantaneous_speed_kmh == 1.23
    assert encode_treadmill_data(TreadmillData(instantaneous_speed_kmh=1.234)) == bytes.fromhex(
        "00 00 7b 00"
    )
