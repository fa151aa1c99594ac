"""Hypothesis: decode(encode(x)) == x for every characteristic, and arbitrary input into every
decoder (and odd values into every encoder) only ever raises CodecError.

The strategies restate the spec's ranges independently of the codec's own table, so a wrong
width or resolution in the codec shows up as a failed round trip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from treadmilld.ftms import (
    CodecError,
    ControlPermissionLost,
    ControlRequest,
    ControlResponse,
    FitnessMachineFeature,
    FtmsServiceData,
    InclinationRange,
    IndoorBikeSimulationParametersChanged,
    MachineFeatures,
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
    SpeedRange,
    SpinDownStatusChanged,
    StartedOrResumedByUser,
    StartOrResume,
    StopKind,
    StopOrPause,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
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
    TargetInclineChanged,
    TargetPowerChanged,
    TargetResistanceLevelChanged,
    TargetSettingFeatures,
    TargetSpeedChanged,
    TrainingStatus,
    TreadmillData,
    TreadmillDataAssembler,
    WheelCircumferenceChanged,
    decode_control_request,
    decode_control_response,
    decode_feature,
    decode_ftms_service_data,
    decode_inclination_range,
    decode_machine_status,
    decode_speed_range,
    decode_training_status,
    decode_treadmill_data,
    encode_control_request,
    encode_control_response,
    encode_feature,
    encode_ftms_service_data,
    encode_inclination_range,
    encode_machine_status,
    encode_speed_range,
    encode_training_status,
    encode_treadmill_data,
    encode_treadmill_data_fragments,
)

# Modest example counts keep tests/ftms at a few seconds; no deadline (shared, noisy cores).
QUICK = settings(max_examples=150, deadline=None)

U8, U16, U24, U32 = 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF
S16_MIN, S16_MAX = -0x8000, 0x7FFF


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def scaled(low: int, high: int, scale: int, decimals: int) -> st.SearchStrategy[float]:
    """Values on the spec's grid: raw integers in [low, high] times the resolution."""
    return st.integers(low, high).map(lambda raw: round(raw / scale, decimals))


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field that has a "not available" value may be None inside a present group."""
    return st.none() | values


def group(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A flag-bit group: absent (every field None) or present."""
    return st.just({}) | st.fixed_dictionaries(fields)


# FTMS v1.0.1 §4.4.1, each group with its type, resolution and sentinel (the sentinel itself is
# excluded from real values: it would decode as None).
TREADMILL_GROUPS = [
    group(average_speed_kmh=scaled(0, U16, 100, 2)),
    group(total_distance_m=ints(0, U24)),
    group(
        inclination_pct=maybe(scaled(S16_MIN, S16_MAX - 1, 10, 1)),
        ramp_angle_deg=maybe(scaled(S16_MIN, S16_MAX - 1, 10, 1)),
    ),
    group(
        positive_elevation_gain_m=scaled(0, U16, 10, 1),
        negative_elevation_gain_m=scaled(0, U16, 10, 1),
    ),
    group(instantaneous_pace_km_per_min=scaled(0, U8, 10, 1)),
    group(average_pace_km_per_min=scaled(0, U8, 10, 1)),
    group(
        total_energy_kcal=maybe(ints(0, U16 - 1)),
        energy_per_hour_kcal=maybe(ints(0, U16 - 1)),
        energy_per_minute_kcal=maybe(ints(0, U8 - 1)),
    ),
    group(heart_rate_bpm=ints(0, U8)),
    group(metabolic_equivalent=scaled(0, U8, 10, 1)),
    group(elapsed_time_s=ints(0, U16)),
    group(remaining_time_s=ints(0, U16)),
    group(
        force_on_belt_n=maybe(ints(S16_MIN, S16_MAX - 1)),
        power_output_w=maybe(ints(S16_MIN, S16_MAX - 1)),
    ),
    group(step_count=ints(0, U24)),
]


@st.composite
def treadmill_records(draw: st.DrawFn, *, fragment: bool = False) -> TreadmillData:
    fields: dict[str, Any] = {}
    for field_group in TREADMILL_GROUPS:
        fields.update(draw(field_group))
    if fragment:
        return TreadmillData(**fields, more_data=True)
    return TreadmillData(instantaneous_speed_kmh=draw(scaled(0, U16, 100, 2)), **fields)


@QUICK
@given(treadmill_records())
def test_treadmill_data_round_trips(record: TreadmillData) -> None:
    assert decode_treadmill_data(encode_treadmill_data(record)) == record


@QUICK
@given(treadmill_records(fragment=True))
def test_a_single_fragment_round_trips(record: TreadmillData) -> None:
    assert decode_treadmill_data(encode_treadmill_data(record)) == record


@QUICK
@given(treadmill_records(), st.integers(10, 64))
def test_fragments_reassemble_into_the_record(record: TreadmillData, mtu: int) -> None:
    fragments = encode_treadmill_data_fragments(record, mtu)
    assert all(len(fragment) <= mtu - 3 for fragment in fragments)
    assembler = TreadmillDataAssembler()
    outputs = [assembler.feed(fragment) for fragment in fragments]
    assert outputs[:-1] == [None] * (len(fragments) - 1)
    assert outputs[-1] == record


CONTROL_REQUESTS: st.SearchStrategy[ControlRequest] = st.one_of(
    st.just(RequestControl()),
    st.just(Reset()),
    st.just(StartOrResume()),
    st.builds(SetTargetSpeed, scaled(0, U16, 100, 2)),
    st.builds(SetTargetInclination, scaled(S16_MIN, S16_MAX, 10, 1)),
    st.builds(StopOrPause, st.sampled_from(StopKind)),
    st.builds(SetTargetedDistance, ints(0, U24)),
    st.builds(SetTargetedTrainingTime, ints(0, U16)),
)


@QUICK
@given(CONTROL_REQUESTS)
def test_control_requests_round_trip(request_: ControlRequest) -> None:
    assert decode_control_request(encode_control_request(request_)) == request_


@QUICK
@given(st.builds(ControlResponse, ints(0, U8), st.sampled_from(ResultCode)))
def test_control_responses_round_trip(response: ControlResponse) -> None:
    assert decode_control_response(encode_control_response(response)) == response


def zones(count: int) -> st.SearchStrategy[list[int]]:
    return st.lists(ints(0, U16), min_size=count, max_size=count)


MACHINE_STATUSES: st.SearchStrategy[MachineStatus] = st.one_of(
    st.just(ResetStatus()),
    st.builds(StoppedOrPausedByUser, st.sampled_from(StopKind)),
    st.just(StoppedBySafetyKey()),
    st.just(StartedOrResumedByUser()),
    st.builds(TargetSpeedChanged, scaled(0, U16, 100, 2)),
    st.builds(TargetInclineChanged, scaled(S16_MIN, S16_MAX, 10, 1)),
    st.builds(TargetResistanceLevelChanged, scaled(0, U8, 10, 1)),
    st.builds(TargetPowerChanged, ints(S16_MIN, S16_MAX)),
    st.builds(TargetHeartRateChanged, ints(0, U8)),
    st.builds(TargetedExpendedEnergyChanged, ints(0, U16)),
    st.builds(TargetedNumberOfStepsChanged, ints(0, U16)),
    st.builds(TargetedNumberOfStridesChanged, ints(0, U16)),
    st.builds(TargetedDistanceChanged, ints(0, U24)),
    st.builds(TargetedTrainingTimeChanged, ints(0, U16)),
    zones(2).map(lambda z: TargetedTimeInTwoHeartRateZonesChanged(*z)),
    zones(3).map(lambda z: TargetedTimeInThreeHeartRateZonesChanged(*z)),
    zones(5).map(lambda z: TargetedTimeInFiveHeartRateZonesChanged(*z)),
    st.builds(
        IndoorBikeSimulationParametersChanged,
        scaled(S16_MIN, S16_MAX, 1000, 3),
        scaled(S16_MIN, S16_MAX, 100, 2),
        scaled(0, U8, 10000, 4),
        scaled(0, U8, 100, 2),
    ),
    st.builds(WheelCircumferenceChanged, scaled(0, U16, 10, 1)),
    st.builds(SpinDownStatusChanged, ints(0, U8)),
    st.builds(TargetedCadenceChanged, scaled(0, U16, 2, 1)),
    st.just(ControlPermissionLost()),
)


@QUICK
@given(MACHINE_STATUSES)
def test_machine_statuses_round_trip(status: MachineStatus) -> None:
    assert decode_machine_status(encode_machine_status(status)) == status


@QUICK
@given(st.builds(TrainingStatus, ints(0, U8), st.none() | st.text()))
def test_training_status_round_trips(status: TrainingStatus) -> None:
    assert decode_training_status(encode_training_status(status)) == status


@QUICK
@given(
    st.builds(
        FitnessMachineFeature,
        ints(0, U32).map(MachineFeatures),
        ints(0, U32).map(TargetSettingFeatures),
    )
)
def test_feature_round_trips(feature: FitnessMachineFeature) -> None:
    assert decode_feature(encode_feature(feature)) == feature


@QUICK
@given(st.builds(SpeedRange, *[scaled(0, U16, 100, 2)] * 3))
def test_speed_range_round_trips(speed_range: SpeedRange) -> None:
    assert decode_speed_range(encode_speed_range(speed_range)) == speed_range


@QUICK
@given(
    st.builds(
        InclinationRange,
        scaled(S16_MIN, S16_MAX, 10, 1),
        scaled(S16_MIN, S16_MAX, 10, 1),
        scaled(0, U16, 10, 1),
    )
)
def test_inclination_range_round_trips(inclination_range: InclinationRange) -> None:
    assert decode_inclination_range(encode_inclination_range(inclination_range)) == (
        inclination_range
    )


@QUICK
@given(st.builds(FtmsServiceData, st.booleans(), ints(0, U8).map(MachineType)))
def test_service_data_round_trips(service_data: FtmsServiceData) -> None:
    assert decode_ftms_service_data(encode_ftms_service_data(service_data)) == service_data


# --- Arbitrary input: CodecError or a value, never anything else ------------------------------

DECODERS: list[Callable[[bytes], object]] = [
    decode_treadmill_data,
    decode_control_request,
    decode_control_response,
    decode_machine_status,
    decode_training_status,
    decode_feature,
    decode_speed_range,
    decode_inclination_range,
    decode_ftms_service_data,
]


def flags_biased_bytes() -> st.SearchStrategy[bytes]:
    """Random bytes, plus valid-looking Treadmill Data flags with random bodies."""
    return st.binary(max_size=48) | st.builds(
        lambda flags, body: flags.to_bytes(2, "little") + body,
        ints(0, U16),
        st.binary(max_size=40),
    )


@settings(max_examples=300, deadline=None)
@given(flags_biased_bytes() | st.from_type(bytearray))
def test_decoders_raise_only_codec_error(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(CodecError):
            decode(data)


@QUICK
@given(st.lists(flags_biased_bytes(), max_size=12))
def test_assembler_raises_only_codec_error(notifications: list[bytes]) -> None:
    assembler = TreadmillDataAssembler()
    for data in notifications:
        try:
            record = assembler.feed(data)
        except CodecError:
            continue
        assert record is None or not record.more_data


@QUICK
@given(st.none() | st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2))
def test_decoders_refuse_non_bytes_with_codec_error(value: object) -> None:
    for decode in DECODERS:
        with contextlib.suppress(CodecError):
            decode(value)  # type: ignore[arg-type]


ODD_VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=3)
    | st.binary(max_size=3)
)


@QUICK
@given(st.lists(ODD_VALUES, min_size=19, max_size=19), st.booleans(), st.integers(-5, 40))
def test_treadmill_encoders_raise_only_codec_error(
    values: list[Any], more_data: bool, mtu: int
) -> None:
    names = [name for name in TreadmillData.__dataclass_fields__ if name != "more_data"]
    record = TreadmillData(**dict(zip(names, values, strict=True)), more_data=more_data)
    for encode in (encode_treadmill_data, lambda r: encode_treadmill_data_fragments(r, mtu)):
        with contextlib.suppress(CodecError):
            encode(record)


@QUICK
@given(ODD_VALUES, ODD_VALUES, ODD_VALUES)
def test_other_encoders_raise_only_codec_error(first: Any, second: Any, third: Any) -> None:
    attempts: list[Callable[[], bytes]] = [
        lambda: encode_control_request(SetTargetSpeed(first)),
        lambda: encode_control_request(SetTargetInclination(first)),
        lambda: encode_control_request(StopOrPause(first)),
        lambda: encode_control_request(SetTargetedDistance(first)),
        lambda: encode_control_response(ControlResponse(first, second)),
        lambda: encode_machine_status(TargetSpeedChanged(first)),
        lambda: encode_machine_status(StoppedOrPausedByUser(first)),
        lambda: encode_training_status(TrainingStatus(first, second)),
        lambda: encode_feature(FitnessMachineFeature(first, second)),
        lambda: encode_speed_range(SpeedRange(first, second, third)),
        lambda: encode_inclination_range(InclinationRange(first, second, third)),
        lambda: encode_ftms_service_data(FtmsServiceData(first, second)),
    ]
    for attempt in attempts:
        with contextlib.suppress(CodecError):
            attempt()
