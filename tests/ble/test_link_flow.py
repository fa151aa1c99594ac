"""The whole link through the real BleakScanner/BleakClient against a simulated treadmill."""

from __future__ import annotations

import asyncio

import pytest
from treadmilld_sim import RunningState, SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.harness import record_requests, running_link
from treadmilld.ble.api import (
    ConnectionState,
    ControlNotPermittedError,
    LinkConnected,
    LinkLost,
    LinkLostCause,
    MachineStatusReceived,
    NotConnectedError,
    TelemetryReceived,
)
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.discovery import scan
from treadmilld.ftms import (
    ControlOpcode,
    ControlPermissionLost,
    MachineType,
    RequestControl,
    ResultCode,
    SetTargetInclination,
    SetTargetSpeed,
    SpeedRange,
    StartOrResume,
    StopKind,
    StopOrPause,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
)


async def test_scan_lists_a_treadmill_by_its_ftms_service_data(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-SCAN"))

    found = await scan(1.0, backend=fleet.scanner_backend, clock=fleet.clock)

    assert [(t.address, t.name) for t in found] == [(treadmill.address, "SIM-SCAN")]
    assert found[0].has_service_data
    assert found[0].available
    assert found[0].machine_types & MachineType.TREADMILL


async def test_full_flow_connect_start_speed_incline_pause_stop_close(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(name="SIM-FLOW", manufacturer="Acme", firmware_revision="2.1")
    )
    requests = record_requests(treadmill)

    async with running_link(fleet, treadmill) as lut:
        connected = await lut.connected()
        capabilities = connected.capabilities
        state_while_connected = lut.link.connection_state
        assert capabilities.name == "SIM-FLOW"
        assert capabilities.device_information.manufacturer == "Acme"
        assert capabilities.device_information.firmware_revision == "2.1"
        assert capabilities.speed_range == SpeedRange(0.5, 16.0, 0.1)
        assert capabilities.inclination_range is not None
        # Connecting never starts the belt, and sends nothing at all to the Control Point.
        assert requests == []

        await lut.link.start_belt()
        written = await lut.link.set_target_speed(4.03)
        assert written == 4.0
        await lut.belt_at(4.0)
        incline = await lut.link.set_target_inclination(2.74)
        assert incline == 2.5  # rounded toward zero onto the deck's 0.5 % grid
        await lut.telemetry_where(lambda t: t.data.inclination_pct == 2.5)

        await lut.link.pause_belt()
        await lut.belt_at(0.0)
        paused = treadmill.model.running_state
        await lut.link.stop_belt()
        stopped = treadmill.model.running_state
    assert (paused, stopped) == (RunningState.PAUSED, RunningState.STOPPED)
    assert requests == [
        RequestControl(),
        StartOrResume(),
        SetTargetSpeed(4.0),
        SetTargetInclination(2.5),
        StopOrPause(StopKind.PAUSE),
        StopOrPause(StopKind.STOP),
    ]
    rest = [event async for event in lut.events]
    assert rest[-1] == LinkLost(reason="link closed", at=rest[-1].at, cause=LinkLostCause.CLOSED)
    assert (state_while_connected, lut.link.connection_state) == (
        ConnectionState.CONNECTED,
        ConnectionState.DISCONNECTED,
    )
    assert not treadmill.is_connected


async def test_close_ends_every_subscription_with_link_lost(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-CLOSE"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        second = lut.link.events()
    remaining = [event async for event in second]
    assert [type(e) for e in remaining if not isinstance(e, TelemetryReceived)] == [LinkLost]
    assert lut.link.connection_state is ConnectionState.DISCONNECTED
    with pytest.raises(NotConnectedError, match="not connected"):
        await lut.link.start_belt()


async def test_targets_are_clamped_to_the_supported_range(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-CLAMP", max_speed_kmh=8.0))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        assert await lut.link.set_target_speed(30.0) == 8.0
        assert await lut.link.set_target_speed(0.0) == 0.5
        assert await lut.link.set_target_inclination(-7.0) == 0.0
        assert await lut.link.set_target_inclination(99.0) == 15.0
    assert [r for r in requests if isinstance(r, SetTargetSpeed)] == [
        SetTargetSpeed(8.0),
        SetTargetSpeed(0.5),
    ]


async def test_start_is_sent_once_even_when_asked_again_while_running(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-START"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.link.start_belt()  # still spinning up: not re-sent
        await lut.telemetry_where(lambda t: t.belt_moving)
        await lut.link.start_belt()  # moving: not re-sent
    assert [r for r in requests if isinstance(r, StartOrResume)] == [StartOrResume()]


async def test_console_actions_and_safety_key_arrive_as_machine_status(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-KEY"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.telemetry_where(lambda t: t.belt_moving)
        treadmill.model.pull_safety_key()
        status = await lut.next_event(
            MachineStatusReceived, lambda e: isinstance(e.status, StoppedBySafetyKey)
        )
        assert status.at >= 0
        treadmill.model.insert_safety_key()
        treadmill.model.press_start()
        await lut.telemetry_where(lambda t: t.belt_moving)
        treadmill.model.press_stop()
        stopped = await lut.next_event(
            MachineStatusReceived, lambda e: isinstance(e.status, StoppedOrPausedByUser)
        )
        assert stopped.status == StoppedOrPausedByUser(StopKind.STOP)


async def test_control_lost_at_the_console_is_requested_again_before_the_next_command(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-LOST"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        treadmill.model.set_speed_at_console(5.0)  # the console takes over: Status 0xFF
        await lut.next_event(
            MachineStatusReceived, lambda e: isinstance(e.status, ControlPermissionLost)
        )
        await lut.link.set_target_speed(3.0)
    assert requests == [RequestControl(), StartOrResume(), RequestControl(), SetTargetSpeed(3.0)]


async def test_control_refused_even_after_asking_again_is_a_typed_error(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-DENY"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        # Another app grabbed control without any status reaching us.
        treadmill.model.release_control()
        await lut.link.set_target_speed(3.0)
        treadmill.model.release_control()
        treadmill.faults.forced_results[ControlOpcode.REQUEST_CONTROL] = (
            ResultCode.CONTROL_NOT_PERMITTED
        )
        with pytest.raises(ControlNotPermittedError, match="close other apps"):
            await lut.link.set_target_speed(4.0)
    assert requests == [
        RequestControl(),
        StartOrResume(),
        SetTargetSpeed(3.0),  # answered 05: control re-requested once, command retried once
        RequestControl(),
        SetTargetSpeed(3.0),
        SetTargetSpeed(4.0),
        RequestControl(),
    ]


async def test_eight_treadmills_driven_at_once(fleet: SimulatedFleet) -> None:
    treadmills = [
        await fleet.add(SimulatedTreadmillConfig(name=f"SIM-GYM{i}", data_rate_hz=2.0))
        for i in range(8)
    ]
    settings = LinkSettings()

    async def drive(index: int) -> tuple[str, float]:
        treadmill = treadmills[index]
        speed = 1.0 + 0.5 * index
        async with running_link(
            fleet, treadmill, settings=settings, treadmill_id=f"tm{index}"
        ) as lut:
            connected = await lut.connected()
            assert connected.capabilities.address == treadmill.address
            await lut.link.start_belt()
            await lut.link.set_target_speed(speed)
            telemetry = await lut.belt_at(speed)
            assert telemetry.data.instantaneous_speed_kmh is not None
            return treadmill.name, telemetry.data.instantaneous_speed_kmh

    results = await asyncio.gather(*(drive(i) for i in range(8)))

    assert sorted(results) == sorted((f"SIM-GYM{i}", 1.0 + 0.5 * i) for i in range(8))
    assert all(t.model.target_speed_kmh == 1.0 + 0.5 * i for i, t in enumerate(treadmills))


async def test_cancelling_run_disconnects_and_ends_subscriptions(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-CANCEL"))
    link = BleTreadmillLink(
        "tm1",
        TargetSelector(address=treadmill.address),
        LinkSettings(),
        clock=fleet.clock,
        scanner_backend=fleet.scanner_backend,
        client_backend=fleet.client_backend,
    )
    events = link.events()
    runner = asyncio.create_task(link.run())
    async with asyncio.timeout(60):
        async for event in events:
            if isinstance(event, LinkConnected):
                break
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        rest = [event async for event in events]
        await asyncio.sleep(0.1)
    assert isinstance(rest[-1], LinkLost)
    assert link.connection_state is ConnectionState.DISCONNECTED
    assert not treadmill.is_connected


async def test_resume_right_after_a_pause_is_sent_while_the_belt_still_coasts(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-RESUME"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.link.set_target_speed(4.0)
        await lut.belt_at(4.0)
        await lut.link.pause_belt()
        coasting = await lut.telemetry_where(
            lambda t: (
                t.data.instantaneous_speed_kmh is not None
                and 0 < t.data.instantaneous_speed_kmh < 4.0
            )
        )
        await lut.link.start_belt()  # resume: the belt is slowing down, not running
        await lut.belt_at(4.0)
    assert coasting.belt_moving
    assert requests.count(StartOrResume()) == 2
    assert treadmill.model.running_state is RunningState.RUNNING


async def test_a_second_stop_while_the_belt_coasts_to_a_halt_is_not_an_error(
    fleet: SimulatedFleet,
) -> None:
    # A finished workout stops the belt, and the daemon's shutdown stops it again while it is
    # still slowing down: the deck answers Operation Failed, but the belt is where we want it.
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-COAST"))
    requests = record_requests(treadmill)

    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()
        await lut.link.set_target_speed(5.0)
        await lut.belt_at(5.0)
        await lut.link.stop_belt()
        coasting = await lut.telemetry_where(lambda t: t.belt_moving)

        await lut.link.stop_belt()  # must not raise

        assert coasting.data.instantaneous_speed_kmh is not None
        assert requests.count(StopOrPause(kind=StopKind.STOP)) == 2
        await lut.belt_at(0.0)
        assert treadmill.model.running_state is not RunningState.RUNNING
