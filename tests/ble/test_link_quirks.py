"""Each quirk switch of the simulator, met by the link's quirk table (through real bleak)."""

from __future__ import annotations

import asyncio

import pytest
from treadmilld_sim import RunningState, SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.harness import record_requests, running_link
from treadmilld.ble.api import BeltNotMovingError, ControlRejectedError, TelemetryReceived
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.discovery import scan
from treadmilld.ble.quirks import KM_PER_MILE
from treadmilld.ftms import RequestControl, ResultCode, SetTargetSpeed, StartOrResume


async def test_tm11gy_gets_its_target_in_mph_and_start_is_never_resent(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig.tm11gy(name="TM11GY-A"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        assert lut.link.quirks is not None
        assert lut.link.quirks.name == "tm11gy"
        await lut.link.start_belt()
        written = await lut.link.set_target_speed(4.0)
        assert written == 2.48 * KM_PER_MILE  # exactly what the deck reads from the wire
        await lut.telemetry_where(lambda t: t.belt_moving)
        await lut.link.start_belt()  # on this deck a second Start would stop the belt
        await lut.belt_at(4.0)
    assert treadmill.model.target_speed_kmh == 4.0
    assert treadmill.model.running_state is RunningState.RUNNING
    assert requests.count(StartOrResume()) == 1
    # 4 km/h is 2.4855 mph: 2.48 on the wire (rounded toward zero, never faster than asked).
    assert [r for r in requests if isinstance(r, SetTargetSpeed)] == [SetTargetSpeed(2.48)]


async def test_an_mph_deck_driven_as_standard_gets_the_wrong_speed(fleet: SimulatedFleet) -> None:
    # The contrast that shows the quirk matters: 3.0 read as mph is 4.8 km/h.
    treadmill = await fleet.add(SimulatedTreadmillConfig.tm11gy(name="TM11GY-B"))
    async with running_link(fleet, treadmill, settings=LinkSettings(quirks="standard")) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.link.set_target_speed(3.0)
    assert treadmill.model.target_speed_kmh == pytest.approx(4.8)


async def test_kingsmith_speed_waits_for_the_belt_to_move_then_settles(
    fleet: SimulatedFleet,
) -> None:
    config = SimulatedTreadmillConfig.kingsmith(name="KS-SIM01").model_copy(
        update={"require_start_before_speed": True}
    )
    treadmill = await fleet.add(config)
    requests = record_requests(treadmill)
    settle_s = 1.0
    settings = LinkSettings(start_gate_settle_s=settle_s)
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        assert lut.link.quirks is not None
        assert lut.link.quirks.start_gate
        speed_sent_at: list[float] = []
        treadmill.add_control_listener(
            lambda request, at: (
                speed_sent_at.append(at) if isinstance(request, SetTargetSpeed) else None
            )
        )
        started_moving = asyncio.ensure_future(lut.telemetry_where(lambda t: t.belt_moving))
        speed = asyncio.ensure_future(lut.link.set_target_speed(3.0))
        await asyncio.sleep(0)
        await lut.link.start_belt()
        assert await speed == 3.0
        moving = await started_moving
        await lut.belt_at(3.0)
    assert requests == [RequestControl(), StartOrResume(), SetTargetSpeed(3.0)]
    assert moving.received_at is not None
    assert speed_sent_at[0] >= moving.received_at + settle_s


async def test_kingsmith_speed_without_start_fails_with_belt_not_moving(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig.kingsmith(name="KS-SIM02"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        with pytest.raises(BeltNotMovingError, match="start the belt first"):
            await lut.link.set_target_speed(3.0)
    assert requests == []  # nothing written to a standing KingSmith


async def test_start_before_speed_deck_without_the_gate_rejects_the_speed(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(name="SIM-3G", require_start_before_speed=True)
    )
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        with pytest.raises(ControlRejectedError, match="current state") as rejected:
            await lut.link.set_target_speed(3.0)
        assert rejected.value.result == ResultCode.OPERATION_FAILED


@pytest.mark.parametrize("name", ["FS-BT-D2", "SF-T7515"])
async def test_fitshow_and_sunny_get_no_request_control_preamble(
    fleet: SimulatedFleet, name: str
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name=name))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        assert lut.link.quirks is not None
        assert not lut.link.quirks.request_control_first
        await lut.link.start_belt()
        await lut.link.set_target_speed(3.0)
    # The simulated deck insists on control, so the first command is answered "not permitted"
    # and the link asks then; it never prefixes commands with Request Control on its own.
    assert requests == [StartOrResume(), RequestControl(), StartOrResume(), SetTargetSpeed(3.0)]


async def test_deck_without_service_data_is_found_by_its_service_list_and_by_name(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(name="TOORX-TRL200", advertise_service_data=False)
    )
    found = await scan(1.0, backend=fleet.scanner_backend, clock=fleet.clock)
    assert [(t.name, t.has_service_data) for t in found] == [("TOORX-TRL200", False)]

    target = TargetSelector(name_contains="toorx")
    async with running_link(fleet, target=target) as lut:
        connected = await lut.connected()
        assert connected.capabilities.address == treadmill.address


async def test_fragmented_records_are_reassembled(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(name="SIM-FRAG", fragment_treadmill_data=True)
    )
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        event = await lut.next_event(
            TelemetryReceived,
            lambda e: (
                e.record.instantaneous_speed_kmh is not None
                and e.record.instantaneous_speed_kmh > 0
            ),
        )
    record = event.record
    # One record carries every group the deck sent, though it came in several notifications.
    assert record.total_distance_m is not None
    assert record.inclination_pct is not None
    assert record.total_energy_kcal is not None
    assert record.elapsed_time_s is not None
    assert not record.more_data


async def test_kingsmith_step_count_and_ten_hertz_data(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig.kingsmith(name="KS-SIM03"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        first = await lut.next_event(TelemetryReceived, lambda e: e.telemetry.belt_moving)
        records = [first]
        while len(records) < 21:
            records.append(await lut.next_event(TelemetryReceived))
    assert all(r.record.step_count is not None for r in records)
    span = records[-1].at - records[0].at
    assert span == pytest.approx(2.0, abs=0.2)  # 20 intervals of 0.1 s of virtual time


async def test_a_speed_waiting_at_the_kingsmith_gate_is_dropped_when_the_belt_is_stopped(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig.kingsmith(name="KS-SIM04"))
    requests = record_requests(treadmill)
    settings = LinkSettings(start_gate_settle_s=2.0)
    async with running_link(fleet, treadmill, settings=settings) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.telemetry_where(lambda t: t.belt_moving)
        speed = asyncio.ensure_future(lut.link.set_target_speed(3.0))  # settling for 2 s
        await asyncio.sleep(0.5)
        await lut.link.stop_belt()  # a person wants off while it settles
        with pytest.raises(BeltNotMovingError, match="speed was not sent"):
            await speed
    assert not any(isinstance(r, SetTargetSpeed) for r in requests)
