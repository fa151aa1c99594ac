"""The simulated heart-rate strap: the wearer's physiology, and what the strap puts on the air
(through the real BleakScanner/BleakClient)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from treadmilld_sim import (
    HeartRateModel,
    SimulatedFleet,
    SimulatedStrap,
    SimulatedStrapConfig,
    SimulatedTreadmillConfig,
    Work,
)
from treadmilld_sim.physiology import STANDING_STILL

from treadmilld.ftms import (
    BODY_SENSOR_LOCATION_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    HeartRateMeasurement,
    decode_heart_rate_measurement,
)

from .session import TEST_TIMEOUT_S
from .test_model import SteppedClock

BACKWARD_UPHILL = Work(speed_kmh=4.0, incline_pct=5.0, facing="backward")


def heart(
    work: Work = STANDING_STILL, **overrides: object
) -> tuple[HeartRateModel, SteppedClock, list[Work]]:
    """A model whose wearer does `work` until the test changes `current[0]`."""
    clock = SteppedClock()
    current = [work]
    config = SimulatedStrapConfig.model_validate(overrides)
    return HeartRateModel(config, clock, lambda: current[0]), clock, current


def advance(model: HeartRateModel, clock: SteppedClock, seconds: float) -> None:
    """Move time on reading each second, as the strap does."""
    for _ in range(int(seconds)):
        clock.advance(1.0)
        _ = model.heart_rate_bpm


# --- physiology -------------------------------------------------------------------------------


def test_standing_still_the_heart_stays_at_its_resting_rate() -> None:
    model, clock, _ = heart(resting_bpm=62)
    advance(model, clock, 600)
    assert model.heart_rate_bpm == pytest.approx(62)


def test_the_heart_follows_a_step_of_work_with_the_configured_lag() -> None:
    model, clock, current = heart(
        resting_bpm=60, max_bpm=180, time_constant_s=50, drift_bpm_per_min=0
    )
    target = model.steady_state_bpm(BACKWARD_UPHILL)
    assert target > 100
    current[0] = BACKWARD_UPHILL
    advance(model, clock, 50)
    # One time constant: 63 % of the way (1 - 1/e).
    expected = 60 + (target - 60) * (1 - math.exp(-1))
    assert model.heart_rate_bpm == pytest.approx(expected, abs=0.5)
    advance(model, clock, 450)
    assert model.heart_rate_bpm == pytest.approx(target, abs=0.5)
    current[0] = Work()
    advance(model, clock, 500)
    assert model.heart_rate_bpm == pytest.approx(60, abs=0.5)


def test_backward_walking_costs_more_heart_rate_than_forward() -> None:
    model, _, _ = heart()
    forward = model.steady_state_bpm(Work(speed_kmh=4.0, facing="forward"))
    backward = model.steady_state_bpm(Work(speed_kmh=4.0, facing="backward"))
    assert backward > forward + 5


def test_speed_and_incline_raise_the_heart_rate_up_to_its_maximum() -> None:
    model, _, _ = heart(max_bpm=175)
    slow = model.steady_state_bpm(Work(speed_kmh=2.0))
    faster = model.steady_state_bpm(Work(speed_kmh=4.0))
    steeper = model.steady_state_bpm(Work(speed_kmh=4.0, incline_pct=10.0))
    flat_out = model.steady_state_bpm(Work(speed_kmh=16.0, incline_pct=15.0))
    assert slow < faster < steeper < flat_out == 175


def test_a_long_steady_bout_drifts_up_and_the_drift_recovers_at_rest() -> None:
    model, clock, current = heart(BACKWARD_UPHILL, drift_bpm_per_min=0.3)
    advance(model, clock, 600)
    at_ten_minutes = model.heart_rate_bpm
    advance(model, clock, 1200)
    assert model.heart_rate_bpm > at_ten_minutes + 2
    current[0] = Work()
    advance(model, clock, 1800)
    assert model.drift_bpm < 0.5


def test_rr_intervals_are_the_beats_of_the_current_rate() -> None:
    model, clock, _ = heart(resting_bpm=60)
    intervals: list[float] = []
    for _ in range(60):
        clock.advance(1.0)
        intervals.extend(model.take_rr_intervals())
    assert len(intervals) == pytest.approx(60, abs=1)
    assert all(interval == pytest.approx(1.0) for interval in intervals)


def test_resting_rate_must_be_below_maximum() -> None:
    with pytest.raises(ValueError, match="resting_bpm"):
        SimulatedStrapConfig(resting_bpm=120, max_bpm=110)


# --- on the air -------------------------------------------------------------------------------


@pytest.fixture
async def strap(fleet: SimulatedFleet) -> SimulatedStrap:
    # 20 Hz so tests that wait for a notification do not wait a real second.
    return await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01", notify_rate_hz=20.0))


async def measurements(
    fleet: SimulatedFleet, strap: SimulatedStrap
) -> AsyncGenerator[HeartRateMeasurement]:
    device = await BleakScanner.find_device_by_address(
        strap.address, timeout=5.0, backend=fleet.scanner_backend
    )
    assert device is not None
    received: asyncio.Queue[HeartRateMeasurement] = asyncio.Queue()

    def on_value(_: BleakGATTCharacteristic, value: bytearray) -> None:
        received.put_nowait(decode_heart_rate_measurement(bytes(value)))

    async with BleakClient(device, backend=fleet.client_backend) as client:
        assert await client.read_gatt_char(BODY_SENSOR_LOCATION_UUID) == b"\x01"  # chest
        await client.start_notify(HEART_RATE_MEASUREMENT_UUID, on_value)
        while True:
            yield await received.get()


async def test_the_strap_advertises_the_heart_rate_service(
    fleet: SimulatedFleet, strap: SimulatedStrap
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        found = await BleakScanner.discover(
            timeout=0.2,
            return_adv=True,
            service_uuids=[HEART_RATE_SERVICE_UUID],
            backend=fleet.scanner_backend,
        )
    _device, advertisement = found[strap.address]
    assert advertisement.local_name == "SIM-HR01"
    assert HEART_RATE_SERVICE_UUID in advertisement.service_uuids


async def test_the_strap_notifies_the_wearers_heart_rate_with_contact(
    fleet: SimulatedFleet, strap: SimulatedStrap
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        stream = measurements(fleet, strap)
        first = await anext(stream)
        await stream.aclose()
    assert first.heart_rate_bpm == round(strap.config.resting_bpm)
    assert first.contact is True
    assert first.energy_expended_kj is not None
    assert first.rr_intervals is not None


async def test_faults_change_what_the_strap_sends(
    fleet: SimulatedFleet, strap: SimulatedStrap
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        stream = measurements(fleet, strap)
        await anext(stream)
        strap.faults.spikes_pending = 1
        spike = await anext(stream)
        after_spike = await anext(stream)
        strap.faults.contact_lost = True
        no_contact = await anext(stream)
        while no_contact.contact is not False:
            no_contact = await anext(stream)
        strap.faults.contact_lost = False
        strap.faults.out_of_range_bpm = 300
        wild = await anext(stream)
        while wild.heart_rate_bpm != 300:
            wild = await anext(stream)
        await stream.aclose()
    assert spike.heart_rate_bpm == 240
    assert after_spike.heart_rate_bpm == round(strap.config.resting_bpm)
    assert no_contact.heart_rate_bpm == 0
    assert no_contact.rr_intervals == ()
    assert wild.wide  # 300 needs the uint16 form


async def test_the_wearer_works_on_the_treadmill_named_in_the_config(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-TM07"))
    strap = await fleet.add_strap(SimulatedStrapConfig(treadmill="SIM-TM07"))
    assert strap.work == Work(speed_kmh=0.0, incline_pct=0.0, facing="backward")
    treadmill.model.press_start()
    treadmill.model.set_speed_at_console(3.0)
    treadmill.model.set_incline_at_console(2.0)
    # The belt accelerates from the first instant on (the model is lazy: any time that passes
    # moves it).
    await asyncio.sleep(0.1)
    assert strap.work.speed_kmh > 0
    assert strap.work.incline_pct > 0
    strap.facing = "forward"
    assert strap.work.facing == "forward"
    with pytest.raises(KeyError, match="SIM-TM99"):
        await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR02", treadmill="SIM-TM99"))
