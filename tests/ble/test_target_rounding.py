"""Targets are rounded toward zero in the deck's own units: a cap holds after conversion.

Properties of the pure rules (`treadmilld.ble.control`) over every unit combination, then the
same rule end to end through the real BleakClient against the simulated mph deck.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.harness import record_requests, running_link
from treadmilld.ble.control import INCLINATION_DECIMALS, clamp_to_range, speed_to_write
from treadmilld.ble.quirks import KM_PER_MILE, SpeedUnit, speed_from_deck
from treadmilld.ftms import SetTargetSpeed, SpeedRange

# What the brief allows a written speed above the asked one: float noise only.
NOISE_KMH = 1e-9

UNITS = st.sampled_from(list(SpeedUnit))


@st.composite
def deck_ranges(draw: st.DrawFn) -> SpeedRange:
    """A Supported Speed Range as decoded from the wire: whole 0.01 steps, max maybe off-grid,
    at least 0.02 wide (so it holds a wire value in either unit: 0.01 mph is 0.016 km/h)."""
    low = draw(st.integers(0, 300))
    step = draw(st.integers(1, 50))
    span = draw(st.integers(max(step, 2), 2000))
    return SpeedRange(low / 100, (low + span) / 100, step / 100)


def wire_ticks(value: float) -> int:
    ticks = round(value * 100)
    assert value == ticks / 100, f"{value!r} is not on the wire's 0.01 grid"
    return ticks


@settings(max_examples=1000, deadline=None)
@given(deck_range=deck_ranges(), range_unit=UNITS, target_unit=UNITS, data=st.data())
def test_a_speed_within_range_is_never_written_faster_than_asked(
    deck_range: SpeedRange, range_unit: SpeedUnit, target_unit: SpeedUnit, data: st.DataObject
) -> None:
    lowest_kmh = speed_from_deck(deck_range.minimum_kmh, range_unit)
    highest_kmh = speed_from_deck(deck_range.maximum_kmh, range_unit)
    asked = data.draw(st.floats(lowest_kmh, highest_kmh), label="asked_kmh")

    value, written_kmh = speed_to_write(
        asked, deck_range, range_unit=range_unit, target_unit=target_unit
    )
    # What was encoded, read back the way the deck reads it, is exactly what is returned.
    assert written_kmh == speed_from_deck(value, target_unit)
    ticks = wire_ticks(value)
    assert lowest_kmh - NOISE_KMH <= written_kmh <= highest_kmh + NOISE_KMH
    if range_unit is target_unit:
        low, step = round(deck_range.minimum_kmh * 100), round(deck_range.increment_kmh * 100)
        assert (ticks - low) % step == 0  # on the deck's increment grid
    # The slowest speed the deck can be sent (range and wire grids can differ by a step).
    _, slowest_kmh = speed_to_write(0.0, deck_range, range_unit=range_unit, target_unit=target_unit)
    if asked >= slowest_kmh:
        assert written_kmh <= asked + NOISE_KMH
        # ... and as fast as the grids allow: less than one range step plus one wire step lost.
        lost_at_most = speed_from_deck(deck_range.increment_kmh, range_unit) + speed_from_deck(
            0.01, target_unit
        )
        assert written_kmh > asked - lost_at_most - NOISE_KMH
    else:
        assert written_kmh == slowest_kmh


@settings(max_examples=300, deadline=None)
@given(
    deck_range=deck_ranges(),
    range_unit=UNITS,
    target_unit=UNITS,
    asked=st.floats(-50.0, 100.0),
)
def test_any_speed_is_written_inside_the_range(
    deck_range: SpeedRange, range_unit: SpeedUnit, target_unit: SpeedUnit, asked: float
) -> None:
    value, written_kmh = speed_to_write(
        asked, deck_range, range_unit=range_unit, target_unit=target_unit
    )
    wire_ticks(value)
    lowest_kmh = speed_from_deck(deck_range.minimum_kmh, range_unit)
    highest_kmh = speed_from_deck(deck_range.maximum_kmh, range_unit)
    assert lowest_kmh - NOISE_KMH <= written_kmh <= highest_kmh + NOISE_KMH
    _, slowest_kmh = speed_to_write(0.0, deck_range, range_unit=range_unit, target_unit=target_unit)
    assert written_kmh <= max(asked, slowest_kmh) + NOISE_KMH


@pytest.mark.parametrize(
    ("cap_kmh", "wire_mph"), [(1.0, 0.62), (3.5, 2.17), (5.0, 3.10), (6.0, 3.72)]
)
def test_caps_on_a_km_h_range_read_as_mph_are_rounded_down_in_mph(
    cap_kmh: float, wire_mph: float
) -> None:
    # The TM11GY: range in km/h, commands read as mph. 5.0 km/h is 3.1069 mph; 3.11 mph would
    # be 5.005 km/h, above the cap.
    value, written_kmh = speed_to_write(
        cap_kmh,
        SpeedRange(0.5, 6.0, 0.1),
        range_unit=SpeedUnit.KMH,
        target_unit=SpeedUnit.MPH,
    )
    assert value == wire_mph
    assert written_kmh == wire_mph * KM_PER_MILE
    assert written_kmh <= cap_kmh


def test_on_a_mixed_unit_deck_the_range_floor_wins_over_rounding_down() -> None:
    # 0.5 km/h is 0.3107 mph: 0.31 mph (0.4989 km/h) is below the range, and the deck would
    # refuse it. The slowest speed it accepts, 0.32 mph (0.515 km/h), is written instead.
    value, written_kmh = speed_to_write(
        0.5, SpeedRange(0.5, 6.0, 0.1), range_unit=SpeedUnit.KMH, target_unit=SpeedUnit.MPH
    )
    assert value == 0.32
    assert 0.5 < written_kmh < 0.5 + 0.01 * KM_PER_MILE


def test_a_range_too_narrow_for_any_mph_value_gets_the_one_below_it() -> None:
    # 1.50-1.51 km/h lies between 0.93 mph (1.4967 km/h) and 0.94 mph (1.5128 km/h).
    value, written_kmh = speed_to_write(
        1.51, SpeedRange(1.5, 1.51, 0.01), range_unit=SpeedUnit.KMH, target_unit=SpeedUnit.MPH
    )
    assert value == 0.93
    assert written_kmh < 1.5


def test_an_asked_speed_with_float_noise_is_not_dropped_a_whole_step() -> None:
    # 0.5 + 36 * 0.1 is 4.1000000000000005 and 4.1 * 100 is 409.99999999999994: both are 4.1
    # (pyftms sends 4.09 here: int() in dudanov/pyftms `serializer/num.py`).
    for asked in (0.5 + 36 * 0.1, 4.1, 4.0999999999999996):
        value, written_kmh = speed_to_write(
            asked, SpeedRange(0.5, 16.0, 0.1), range_unit=SpeedUnit.KMH, target_unit=SpeedUnit.KMH
        )
        assert (value, written_kmh) == (4.1, 4.1)


@st.composite
def incline_grids(draw: st.DrawFn) -> tuple[float, float, float]:
    """An inclination range in 0.1 % steps whose grid passes through 0 (as real decks' do)."""
    step = draw(st.integers(1, 10))
    low = -step * draw(st.integers(0, 50))
    high = draw(st.integers(max(low + step, 0), 400))
    return low / 10, high / 10, step / 10


@settings(max_examples=500, deadline=None)
@given(grid=incline_grids(), data=st.data())
def test_an_incline_is_rounded_toward_zero_on_the_deck_grid(
    grid: tuple[float, float, float], data: st.DataObject
) -> None:
    minimum, maximum, increment = grid
    asked = data.draw(st.floats(minimum, maximum), label="asked_pct")
    written = clamp_to_range(
        asked, minimum, maximum, increment, decimals=INCLINATION_DECIMALS, what="incline"
    )
    assert minimum <= written <= maximum
    tenths = round(written * 10)
    assert written == tenths / 10
    assert (tenths - round(minimum * 10)) % round(increment * 10) == 0
    # Never steeper than asked, uphill or down, and never onto the other side of level.
    assert abs(written) <= abs(asked) + NOISE_KMH
    assert written == 0 or math.copysign(1, written) == math.copysign(1, asked)


async def test_the_5_kmh_cap_reaches_the_mph_deck_as_3_10_mph(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig.tm11gy(name="TM11GY-CAP"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        written = await lut.link.set_target_speed(5.0)
        at_the_top = await lut.link.set_target_speed(30.0)  # clamped to the range's 6.0 km/h
    speeds = [r for r in requests if isinstance(r, SetTargetSpeed)]
    # 3.11 mph would be 5.005 km/h, 3.73 mph 6.003 km/h: both above what was allowed.
    assert speeds == [SetTargetSpeed(3.10), SetTargetSpeed(3.72)]
    assert written == 3.10 * KM_PER_MILE
    assert written <= 5.0
    assert at_the_top == 3.72 * KM_PER_MILE
    assert at_the_top <= 6.0
