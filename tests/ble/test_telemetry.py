"""What the engine's observed-belt model reads from the link: the *measured* belt.

`TelemetryReceived.telemetry` (and `link.telemetry`) carry the deck's own instantaneous speed in
km/h and inclination in %, whatever unit the deck reports in, stamped with the clock time the
record was complete. A property over random record streams on our GATT seam, then the same
through the real BleakClient against the simulator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.doubles import ObedientDeck
from tests.ble.harness import running_link
from tests.ble.test_link_units import link_on, next_of
from treadmilld.ble.api import LinkConnected, TelemetryReceived
from treadmilld.ble.config import LinkSettings
from treadmilld.ble.quirks import Quirks, SpeedUnit, speed_from_deck
from treadmilld.ftms import TREADMILL_DATA_UUID, TreadmillData, encode_treadmill_data
from treadmilld.runtime.clock import LoopClock, VirtualTimeEventLoop


@dataclass(frozen=True)
class Sent:
    """One record as the deck sends it: speed in the deck's unit, incline when present."""

    after_s: float
    speed: float
    incline_pct: float | None


RECORDS = st.lists(
    st.builds(
        Sent,
        after_s=st.integers(0, 30).map(lambda tenths: tenths / 10),
        speed=st.integers(0, 2000).map(lambda hundredths: hundredths / 100),
        incline_pct=st.none() | st.integers(-30, 150).map(lambda tenths: tenths / 10),
    ),
    min_size=1,
    max_size=12,
)


async def _stream(unit: SpeedUnit, sent: list[Sent]) -> list[tuple[float, TelemetryReceived]]:
    clock = LoopClock()
    deck = ObedientDeck(clock)
    settings_ = LinkSettings(
        liveness_timeout_s=1000.0, quirks=Quirks(name="units", reported_speed_unit=unit)
    )
    received: list[tuple[float, TelemetryReceived]] = []
    async with link_on(deck, settings_) as link:
        events = link.events()
        await next_of(events, LinkConnected)
        for record in sent:
            await clock.sleep(record.after_s)
            pushed_at = clock.now()
            deck.push(
                TREADMILL_DATA_UUID,
                encode_treadmill_data(
                    TreadmillData(
                        instantaneous_speed_kmh=record.speed,
                        inclination_pct=record.incline_pct,
                        ramp_angle_deg=None if record.incline_pct is None else 0.0,
                    )
                ),
            )
            event = await next_of(events, TelemetryReceived)
            assert isinstance(event, TelemetryReceived)
            received.append((pushed_at, event))
        assert link.telemetry == received[-1][1].telemetry
    return received


@settings(max_examples=60, deadline=None)
@given(unit=st.sampled_from(list(SpeedUnit)), sent=RECORDS)
def test_telemetry_is_the_measured_speed_in_km_h_and_incline_in_percent_with_its_time(
    unit: SpeedUnit, sent: list[Sent]
) -> None:
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        received = runner.run(_stream(unit, sent))
    last_incline: float | None = None
    for record, (pushed_at, event) in zip(sent, received, strict=True):
        if record.incline_pct is not None:
            last_incline = record.incline_pct
        telemetry = event.telemetry
        expected_kmh = speed_from_deck(record.speed, unit)
        assert event.record.instantaneous_speed_kmh == expected_kmh
        assert telemetry.data.instantaneous_speed_kmh == expected_kmh
        # Inclination is never converted; a record without it keeps the last measured one.
        assert event.record.inclination_pct == record.incline_pct
        assert telemetry.data.inclination_pct == last_incline
        assert event.at == telemetry.received_at == pushed_at
        assert telemetry.belt_moving == (record.speed > 0)


async def test_the_simulated_belt_is_reported_as_measured_while_it_ramps(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-MEASURED"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.link.set_target_speed(3.0)
        await lut.link.set_target_inclination(2.0)
        # 1 km/h per second from 0.5: the measured speed passes through values below the
        # target before it gets there, and each record carries its own time.
        ramping = await lut.telemetry_where(
            lambda t: (
                t.data.instantaneous_speed_kmh is not None
                and 0 < t.data.instantaneous_speed_kmh < 3.0
            )
        )
        arrived = await lut.belt_at(3.0)
        inclined = await lut.telemetry_where(lambda t: t.data.inclination_pct == 2.0)
    assert ramping.received_at is not None
    assert arrived.received_at is not None
    assert inclined.received_at is not None
    assert ramping.received_at < arrived.received_at <= inclined.received_at
    assert inclined.data.instantaneous_speed_kmh == pytest.approx(3.0, abs=0.01)
