"""FTMS over the air: reads, Control Point procedures and status notifications via BleakClient."""

from __future__ import annotations

import asyncio

import pytest
from bleak.exc import BleakGATTProtocolError
from treadmilld_sim import RunningState, SimulatedFleet, SimulatedTreadmill

from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FIRMWARE_REVISION_UUID,
    INCLINATION_RANGE_UUID,
    MANUFACTURER_NAME_UUID,
    MODEL_NUMBER_UUID,
    SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlOpcode,
    ControlPermissionLost,
    ControlRequest,
    ControlResponse,
    InclinationRange,
    MachineFeatures,
    RequestControl,
    Reset,
    ResultCode,
    SetTargetedTrainingTime,
    SetTargetInclination,
    SetTargetSpeed,
    SpeedRange,
    StartedOrResumedByUser,
    StartOrResume,
    StopKind,
    StopOrPause,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetInclineChanged,
    TargetSettingFeatures,
    TargetSpeedChanged,
    TrainingStatusCode,
    decode_feature,
    decode_inclination_range,
    decode_speed_range,
    decode_training_status,
    decode_treadmill_data,
)

from .session import TEST_TIMEOUT_S, connected


async def test_reads_feature_ranges_and_device_information(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        client = session.client
        feature = decode_feature(await client.read_gatt_char(FEATURE_UUID))
        speed_range = decode_speed_range(await client.read_gatt_char(SPEED_RANGE_UUID))
        incline_range = decode_inclination_range(
            await client.read_gatt_char(INCLINATION_RANGE_UUID)
        )
        manufacturer = bytes(await client.read_gatt_char(MANUFACTURER_NAME_UUID))
        model_number = bytes(await client.read_gatt_char(MODEL_NUMBER_UUID))
        firmware = bytes(await client.read_gatt_char(FIRMWARE_REVISION_UUID))
        training = decode_training_status(await client.read_gatt_char(TRAINING_STATUS_UUID))
        assert client.mtu_size == 247
        assert client.name == "SIM-TM01"
    assert MachineFeatures.INCLINATION in feature.machine
    assert (
        feature.target_settings == TargetSettingFeatures.SPEED | TargetSettingFeatures.INCLINATION
    )
    assert speed_range == SpeedRange(0.5, 16.0, 0.1)
    assert incline_range == InclinationRange(0.0, 15.0, 0.5)
    assert (manufacturer, model_number, firmware) == (b"treadmilld", b"SIM-TM", b"1.0.0")
    assert training.code is TrainingStatusCode.IDLE


async def test_control_point_properties_are_write_and_indicate(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        characteristic = session.client.services.get_characteristic(CONTROL_POINT_UUID)
    assert characteristic is not None
    assert sorted(characteristic.properties) == ["indicate", "write"]


async def test_control_point_refuses_writes_until_indications_are_enabled(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        connected(fleet, treadmill, subscribe=False) as session,
    ):
        with pytest.raises(BleakGATTProtocolError) as refused:
            await session.write_raw(bytes([ControlOpcode.REQUEST_CONTROL]))
        assert not treadmill.model.control_granted
    assert refused.value.code == 0xFD


async def test_every_procedure_and_its_result_codes(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    steps: list[tuple[ControlRequest, ResultCode]] = [
        (StartOrResume(), ResultCode.CONTROL_NOT_PERMITTED),
        (SetTargetSpeed(3.0), ResultCode.CONTROL_NOT_PERMITTED),
        (RequestControl(), ResultCode.SUCCESS),
        (SetTargetSpeed(3.0), ResultCode.SUCCESS),
        (SetTargetSpeed(30.0), ResultCode.INVALID_PARAMETER),
        (SetTargetInclination(2.5), ResultCode.SUCCESS),
        (SetTargetInclination(20.0), ResultCode.INVALID_PARAMETER),
        (StopOrPause(StopKind.STOP), ResultCode.OPERATION_FAILED),
        (StartOrResume(), ResultCode.SUCCESS),
        (StartOrResume(), ResultCode.OPERATION_FAILED),
        (StopOrPause(StopKind.PAUSE), ResultCode.SUCCESS),
        (StopOrPause(StopKind.PAUSE), ResultCode.OPERATION_FAILED),
        (StartOrResume(), ResultCode.SUCCESS),
        (StopOrPause(StopKind.STOP), ResultCode.SUCCESS),
        (SetTargetedTrainingTime(600), ResultCode.NOT_SUPPORTED),
        (Reset(), ResultCode.SUCCESS),
        (StartOrResume(), ResultCode.CONTROL_NOT_PERMITTED),
    ]
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        answers = [(request, (await session.send(request)).result) for request, _ in steps]
        # An opcode a treadmill does not implement (target resistance), and a malformed one.
        await session.write_raw(bytes([ControlOpcode.SET_TARGET_RESISTANCE_LEVEL, 10]))
        not_supported = await session.responses.get()
        await session.write_raw(bytes([ControlOpcode.SET_TARGET_SPEED, 0x90]))  # 1 byte short
        malformed = await session.responses.get()
    assert answers == steps
    assert not_supported == ControlResponse(0x04, ResultCode.NOT_SUPPORTED)
    assert malformed == ControlResponse(0x02, ResultCode.INVALID_PARAMETER)
    assert treadmill.model.running_state is RunningState.IDLE


async def test_one_procedure_at_a_time(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    treadmill.faults.response_delay_s = 0.5
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.write_raw(bytes([ControlOpcode.REQUEST_CONTROL]))
        with pytest.raises(BleakGATTProtocolError) as busy:
            await session.write_raw(bytes([ControlOpcode.START_OR_RESUME]))
        first = await session.responses.get()
    assert busy.value.code == 0xFE
    assert first == ControlResponse(ControlOpcode.REQUEST_CONTROL, ResultCode.SUCCESS)
    assert treadmill.model.running_state is RunningState.IDLE  # the refused Start never ran


async def test_console_actions_reach_the_client_as_status_notifications(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    model = treadmill.model
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        model.press_start()
        started = [await session.statuses.get(), await session.statuses.get()]
        model.set_speed_at_console(5.0)
        model.set_incline_at_console(3.0)
        model.press_pause()
        model.press_start()
        model.press_stop()
        later = [await session.statuses.get() for _ in range(5)]
        refused = await session.send(SetTargetSpeed(4.0))
        training = [(await session.training.get()).code for _ in range(4)]
    assert started == [StartedOrResumedByUser(), ControlPermissionLost()]
    assert later == [
        TargetSpeedChanged(5.0),
        TargetInclineChanged(3.0),
        StoppedOrPausedByUser(StopKind.PAUSE),
        StartedOrResumedByUser(),
        StoppedOrPausedByUser(StopKind.STOP),
    ]
    assert refused.result is ResultCode.CONTROL_NOT_PERMITTED
    assert training == [
        TrainingStatusCode.MANUAL_MODE,
        TrainingStatusCode.OTHER,
        TrainingStatusCode.MANUAL_MODE,
        TrainingStatusCode.POST_WORKOUT,
    ]


async def test_safety_key_stops_the_belt_and_start_is_refused_until_it_is_back(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    model = treadmill.model
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        assert (await session.send(SetTargetSpeed(3.0))).result is ResultCode.SUCCESS
        assert (await session.send(StartOrResume())).result is ResultCode.SUCCESS
        # Wait for the belt to be moving, as the daemon would see it: in Treadmill Data.
        while (decode_treadmill_data(await session.data.get()).instantaneous_speed_kmh or 0) < 0.5:
            pass
        model.pull_safety_key()
        status = await session.statuses.get()
        belt_after_pull = model.belt_speed_kmh
        refused = await session.send(StartOrResume())
        model.insert_safety_key()
        accepted = await session.send(StartOrResume())
    assert status == StoppedBySafetyKey()
    assert belt_after_pull == 0.0
    assert refused.result is ResultCode.OPERATION_FAILED
    assert accepted.result is ResultCode.SUCCESS


async def test_control_listener_sees_every_request(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    seen: list[tuple[ControlRequest, float]] = []
    remove = treadmill.add_control_listener(lambda request, at: seen.append((request, at)))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.send(RequestControl())
        await session.send(StopOrPause(StopKind.STOP))
        remove()
        await session.send(StartOrResume())
    assert [request for request, _ in seen] == [RequestControl(), StopOrPause(StopKind.STOP)]
    assert seen[0][1] <= seen[1][1]


async def test_disconnect_loses_control(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with connected(fleet, treadmill) as session:
            await session.take_control()
        async with connected(fleet, treadmill) as session:
            again = await session.send(StartOrResume())
    assert again.result is ResultCode.CONTROL_NOT_PERMITTED


async def test_characteristics_refuse_what_their_properties_do_not_offer(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        client = session.client
        with pytest.raises(BleakGATTProtocolError) as read_notify_only:
            await client.read_gatt_char(TREADMILL_DATA_UUID)
        with pytest.raises(BleakGATTProtocolError) as read_control_point:
            await client.read_gatt_char(CONTROL_POINT_UUID)
        with pytest.raises(BleakGATTProtocolError) as write_feature:
            await client.write_gatt_char(FEATURE_UUID, b"\x00" * 8, response=True)
        feature_after = decode_feature(await client.read_gatt_char(FEATURE_UUID))
    assert read_notify_only.value.code == 0x02
    assert read_control_point.value.code == 0x02
    assert write_feature.value.code == 0x03
    assert feature_after.target_settings  # unchanged by the refused write
