"""Heart Rate Measurement (0x2A37): vectors built by hand from HRS v1.0 §3.1 and the SIG's GATT
definition of the characteristic, and Hypothesis round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadmilld.ftms import (
    CodecError,
    HeartRateMeasurement,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
)

QUICK = settings(max_examples=150, deadline=None)

# (bytes on air, decoded). Flags bit 0 value format, bits 1-2 sensor contact (bit 2 supported,
# bit 1 detected), bit 3 energy expended, bit 4 RR intervals.
VECTORS = [
    ("00 48", HeartRateMeasurement(72)),
    ("06 48", HeartRateMeasurement(72, contact_supported=True, contact_detected=True)),
    ("04 00", HeartRateMeasurement(0, contact_supported=True, contact_detected=False)),
    ("01 2c 01", HeartRateMeasurement(300, wide=True)),
    ("01 48 00", HeartRateMeasurement(72, wide=True)),
    ("08 5a 10 27", HeartRateMeasurement(90, energy_expended_kj=10_000)),
    ("08 5a ff ff", HeartRateMeasurement(90, energy_expended_kj=0xFFFF)),
    ("10 48 00 04 00 03", HeartRateMeasurement(72, rr_intervals=(1024, 768))),
    ("10 48", HeartRateMeasurement(72, rr_intervals=())),
    (
        "1e 5a 34 12 00 04",
        HeartRateMeasurement(
            90,
            contact_supported=True,
            contact_detected=True,
            energy_expended_kj=0x1234,
            rr_intervals=(1024,),
        ),
    ),
    (
        "1d 2c 01 e8 03 55 03 a0 03",
        HeartRateMeasurement(
            300,
            wide=True,
            contact_supported=True,
            energy_expended_kj=1000,
            rr_intervals=(853, 928),
        ),
    ),
]


@pytest.mark.parametrize(("hex_bytes", "measurement"), VECTORS)
def test_vectors_decode_and_encode(hex_bytes: str, measurement: HeartRateMeasurement) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_heart_rate_measurement(data) == measurement
    assert encode_heart_rate_measurement(measurement) == data


def test_contact_is_unknown_unless_the_strap_supports_detecting_it() -> None:
    # 0b01 in bits 1-2 means "not supported", like 0b00: bit 1 alone says nothing.
    assert decode_heart_rate_measurement(bytes.fromhex("02 48")).contact is None
    assert decode_heart_rate_measurement(bytes.fromhex("00 48")).contact is None
    assert decode_heart_rate_measurement(bytes.fromhex("04 48")).contact is False
    assert decode_heart_rate_measurement(bytes.fromhex("06 48")).contact is True


def test_rr_intervals_read_in_seconds() -> None:
    decoded = decode_heart_rate_measurement(bytes.fromhex("10 48 00 04 00 03"))
    assert decoded.rr_intervals_s == (1.0, 0.75)
    assert decode_heart_rate_measurement(bytes.fromhex("00 48")).rr_intervals_s == ()


def test_reserved_flag_bits_are_ignored() -> None:
    assert decode_heart_rate_measurement(bytes.fromhex("e6 48")) == HeartRateMeasurement(
        72, contact_supported=True, contact_detected=True
    )


def test_bytearray_from_bleak_decodes() -> None:
    assert decode_heart_rate_measurement(bytearray.fromhex("00 48")).heart_rate_bpm == 72


@pytest.mark.parametrize(
    ("hex_bytes", "problem"),
    [
        ("", "empty value"),
        ("01 48", "too short for the uint16"),
        ("08 48 10", "energy-expended flag is set"),
        ("10 48 00 04 00", "RR intervals are uint16 each"),
        ("00 48 00", "follow the last field"),
    ],
)
def test_malformed_values_raise_codec_error_with_the_bytes(hex_bytes: str, problem: str) -> None:
    with pytest.raises(CodecError, match=problem) as raised:
        decode_heart_rate_measurement(bytes.fromhex(hex_bytes))
    assert "Heart Rate Measurement (0x2A37)" in str(raised.value)


@pytest.mark.parametrize(
    ("measurement", "problem"),
    [
        (HeartRateMeasurement(256), "set wide=True"),
        (HeartRateMeasurement(70_000, wide=True), "heart_rate_bpm"),
        (HeartRateMeasurement(-1), "heart_rate_bpm"),
        (HeartRateMeasurement(70, energy_expended_kj=0x10000), "energy_expended_kj"),
        (HeartRateMeasurement(70, rr_intervals=(0x10000,)), "rr_intervals"),
        (HeartRateMeasurement(70, contact_detected=True), "contact_supported"),
    ],
)
def test_unencodable_values_raise_codec_error(
    measurement: HeartRateMeasurement, problem: str
) -> None:
    with pytest.raises(CodecError, match=problem):
        encode_heart_rate_measurement(measurement)


def test_encoding_something_else_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="expected HeartRateMeasurement"):
        encode_heart_rate_measurement("72")  # type: ignore[arg-type]


@st.composite
def measurements(draw: st.DrawFn) -> HeartRateMeasurement:
    """Every valid measurement, restated from the spec: a uint8 or uint16 value, the contact
    pair (detected only when supported), an optional uint16 energy, an optional RR run."""
    wide = draw(st.booleans())
    supported = draw(st.booleans())
    return HeartRateMeasurement(
        heart_rate_bpm=draw(st.integers(0, 0xFFFF if wide else 0xFF)),
        wide=wide,
        contact_supported=supported,
        contact_detected=supported and draw(st.booleans()),
        energy_expended_kj=draw(st.none() | st.integers(0, 0xFFFF)),
        rr_intervals=draw(st.none() | st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple)),
    )


@QUICK
@given(measurements())
def test_measurements_round_trip(measurement: HeartRateMeasurement) -> None:
    assert decode_heart_rate_measurement(encode_heart_rate_measurement(measurement)) == measurement


@QUICK
@given(st.binary(max_size=24))
def test_any_bytes_decode_or_raise_codec_error(data: bytes) -> None:
    try:
        decoded = decode_heart_rate_measurement(data)
    except CodecError:
        return
    # What decodes re-encodes to the same bytes, reserved flag bits aside.
    assert encode_heart_rate_measurement(decoded)[1:] == data[1:]
