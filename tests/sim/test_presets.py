"""Deck presets (docs/simulator.md "Deck presets"), seen as a client sees them.

Each test drives a preset through the real BleakScanner/BleakClient on the fleet's backends and
asserts what a client notices on the air: what the deck advertises, its GATT table and
properties, the bytes it serves, and the behaviour that makes it that deck. Timing runs in
virtual time where the deck's behaviour takes treadmill time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDBusError, BleakGATTProtocolError
from pydantic import ValidationError
from treadmilld_sim import (
    RunningState,
    SimulatedFleet,
    SimulatedTreadmill,
    SimulatedTreadmillConfig,
)
from treadmilld_sim.advertising import build_advertising_payloads
from treadmilld_sim.presets import PRESETS
from treadmilld_sim.runner import build_parser, configs_from_arguments

from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FTMS_SERVICE_UUID,
    INCLINATION_RANGE_UUID,
    MANUFACTURER_NAME_UUID,
    SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    ControlRequest,
    ControlResponse,
    RequestControl,
    ResultCode,
    SetTargetInclination,
    SetTargetSpeed,
    StartOrResume,
    StopKind,
    StopOrPause,
    TreadmillData,
    decode_inclination_range,
    decode_treadmill_data,
    encode_control_request,
)
from treadmilld.ftms.uuids import uuid16
from treadmilld.ftms.vendor import KINGSMITH_UNLOCK_CHARACTERISTIC_UUID
from treadmilld.runtime.clock import Clock, LoopClock

from .session import TEST_TIMEOUT_S, FtmsSession, connected, find_device, run_in_virtual_time

T = TypeVar("T")

VIRTUAL_TIMEOUT_S = 3 * 3600.0
SYSTEM_ID_UUID = uuid16(0x2A23)


async def command(session: FtmsSession, request: ControlRequest) -> ControlResponse:
    """Write one request as the Urevo apps do (Write Without Response) and wait for its answer."""
    await session.client.write_gatt_char(
        CONTROL_POINT_UUID, encode_control_request(request), response=False
    )
    return await session.responses.get()


async def latest_record(session: FtmsSession) -> TreadmillData:
    """The next Treadmill Data record after everything already queued."""
    while not session.data.empty():
        session.data.get_nowait()
    return decode_treadmill_data(await session.data.get())


def in_virtual_time(
    config: SimulatedTreadmillConfig,
    body: Callable[[SimulatedTreadmill, FtmsSession, Clock], Coroutine[Any, Any, T]],
) -> T:
    async def scenario() -> T:
        clock = LoopClock()
        async with SimulatedFleet(clock) as fleet:
            treadmill = await fleet.add(config)
            async with (
                asyncio.timeout(VIRTUAL_TIMEOUT_S),
                connected(fleet, treadmill) as session,
            ):
                return await body(treadmill, session, clock)

    return run_in_virtual_time(scenario)


# -- selecting a preset ------------------------------------------------------------------------


def test_every_preset_builds_and_names_its_family() -> None:
    prefixes = {
        "urevo-e1l": "URTM041",
        "fitshow-bc11b7": "FS-BC11B7",
        "horizon": "HORIZON",
        "kingsmith-mc21": "KS-MC21",
        "incline-table": "KETTLER",
        "belt-first": "3G-CARDIO",
    }
    assert set(PRESETS) == set(prefixes)
    for preset, prefix in prefixes.items():
        assert SimulatedTreadmillConfig(preset=preset).name.startswith(prefix)


def test_explicit_fields_override_the_preset_as_a_toml_table_would() -> None:
    table = {"preset": "urevo-e1l", "refuses_stop": "operation_failed", "name": "URTM041-B"}
    config = SimulatedTreadmillConfig.model_validate(table)
    assert config.refuses_stop is ResultCode.OPERATION_FAILED
    assert config.name == "URTM041-B"
    assert config.control_point_answers == "notify"  # the rest still from the preset
    horizon = SimulatedTreadmillConfig(preset="horizon", deceleration_kmh_per_s=0.25)
    assert horizon.deceleration_kmh_per_s == 0.25
    assert horizon.self_stop_after_s == 1800.0


def test_an_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="known presets: belt-first, fitshow-bc11b7"):
        SimulatedTreadmillConfig(preset="treadmill-9000")


def test_runner_takes_a_preset_and_its_name() -> None:
    args = build_parser().parse_args(["--preset", "kingsmith-mc21", "--refuses-stop", "4"])
    [config] = configs_from_arguments(args)
    assert config.name == "KS-MC21-SIM01"
    assert config.vendor_unlock
    assert config.refuses_stop is ResultCode.OPERATION_FAILED


# -- urevo-e1l ---------------------------------------------------------------------------------


def test_urevo_puts_name_and_service_data_only_in_the_scan_response() -> None:
    advertisement, scan_response = build_advertising_payloads(
        "URTM041", with_service_data=True, name_and_service_data_in_scan_response=True
    )
    assert bytes.fromhex("06 16 26 18 01 01 00") in scan_response
    assert bytes.fromhex("06 16 26 18") not in advertisement
    assert b"URTM041" not in advertisement


async def test_urevo_service_data_reaches_an_active_scan_but_not_a_passive_one(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="urevo-e1l"))
    async with asyncio.timeout(TEST_TIMEOUT_S):
        active = await BleakScanner.discover(
            timeout=0.2, return_adv=True, backend=fleet.scanner_backend
        )
        passive = await BleakScanner.discover(
            timeout=0.2, return_adv=True, scanning_mode="passive", backend=fleet.scanner_backend
        )
    device, advertisement = active[treadmill.address]
    assert device.name == advertisement.local_name == "URTM041"
    assert advertisement.service_data[FTMS_SERVICE_UUID] == bytes.fromhex("01 01 00")
    _, heard_passively = passive[treadmill.address]
    assert heard_passively.local_name is None
    assert heard_passively.service_data == {}
    assert FTMS_SERVICE_UUID in heard_passively.service_uuids


async def test_urevo_gatt_table_and_bytes(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="urevo-e1l"))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        client = session.client
        control_point = client.services.get_characteristic(CONTROL_POINT_UUID)
        assert control_point is not None
        assert sorted(control_point.properties) == ["notify", "write-without-response"]
        assert await client.read_gatt_char(FEATURE_UUID) == bytes.fromhex("45560000 05000000")
        assert await client.read_gatt_char(SPEED_RANGE_UUID) == bytes.fromhex("600083022000")
        assert await client.read_gatt_char(INCLINATION_RANGE_UUID) == bytes(6)
        assert await client.read_gatt_char(MANUFACTURER_NAME_UUID) == b"0x01"
        # The address as text, not the spec's 8 bytes of binary.
        assert await client.read_gatt_char(SYSTEM_ID_UUID) == treadmill.address.encode()
        services = {service.uuid for service in client.services}
        assert {uuid16(0xFFF0), uuid16(0xFEE0)} <= services


async def test_urevo_answers_commands_by_notification_without_request_control(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="urevo-e1l"))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        # Kinomap's first write in the capture: `03 3c 00` before any Request Control.
        incline = await command(session, SetTargetInclination(6.0))
        started = await command(session, StartOrResume())
        # A write with response is answered by the deck with Write Not Permitted, which bleak on
        # BlueZ raises as BleakGATTProtocolError (BlueZ >= 5.55 sends it on air regardless).
        with pytest.raises(BleakGATTProtocolError) as refused:
            await session.write_raw(encode_control_request(StopOrPause(StopKind.STOP)))
        # And a subscription to a characteristic without Notify or Indicate: BlueZ's own refusal.
        with pytest.raises(BleakDBusError) as not_supported:
            await session.client.start_notify(FEATURE_UUID, lambda *_: None)
    assert incline.result is ResultCode.SUCCESS
    assert started.result is ResultCode.SUCCESS
    assert refused.value.code == 0x03
    assert not_supported.value.dbus_error == "org.bluez.Error.NotSupported"
    assert treadmill.model.running_state is RunningState.RUNNING  # the refused Stop did nothing
    assert treadmill.model.incline_pct == 0.0  # no incline motor


def test_urevo_session_is_cumulative_across_a_stop_and_says_so_in_its_own_statuses() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, _clock: Clock
    ) -> tuple[TreadmillData, TreadmillData, list[int], float]:
        training: list[int] = []

        def on_training(_: object, value: bytearray) -> None:
            training.append(value[1])

        await session.client.start_notify(TRAINING_STATUS_UUID, on_training)
        assert (await command(session, SetTargetSpeed(4.1))).result is ResultCode.SUCCESS
        target = treadmill.model.target_speed_kmh
        await command(session, StartOrResume())
        await asyncio.sleep(60.0)
        await command(session, StopOrPause(StopKind.STOP))
        await asyncio.sleep(15.0)
        after_stop = await latest_record(session)
        await command(session, StartOrResume())
        await asyncio.sleep(5.0)
        resumed = await latest_record(session)
        return after_stop, resumed, training, target

    after_stop, resumed, training, target = in_virtual_time(
        SimulatedTreadmillConfig(preset="urevo-e1l", advertising_interval_ms=1000), body
    )
    # 4.1 km/h truncated to the deck's 0.32 km/h grid from 0.96: 3.84, never 4.16.
    assert target == pytest.approx(3.84)
    assert after_stop.instantaneous_speed_kmh == 0.0
    assert after_stop.total_distance_m is not None
    assert after_stop.total_distance_m > 50
    assert resumed.total_distance_m is not None
    assert resumed.total_distance_m >= after_stop.total_distance_m
    assert resumed.elapsed_time_s is not None
    assert after_stop.elapsed_time_s is not None
    assert resumed.elapsed_time_s > after_stop.elapsed_time_s > 55
    assert resumed.step_count is not None
    assert resumed.step_count > 0
    # 0x0D running, 0x10 slowing after the stop, 0x11 standing, 0x0D running again.
    assert training == [0x0D, 0x10, 0x11, 0x0D]


def test_the_default_deck_starts_a_new_session_after_a_stop() -> None:
    async def body(
        _treadmill: SimulatedTreadmill, session: FtmsSession, _clock: Clock
    ) -> TreadmillData:
        await session.take_control()
        await session.send(SetTargetSpeed(4.0))
        await session.send(StartOrResume())
        await asyncio.sleep(60.0)
        await session.send(StopOrPause(StopKind.STOP))
        await asyncio.sleep(10.0)
        await session.send(StartOrResume())
        await asyncio.sleep(2.0)
        return await latest_record(session)

    record = in_virtual_time(SimulatedTreadmillConfig(advertising_interval_ms=1000), body)
    assert record.elapsed_time_s is not None
    assert record.elapsed_time_s <= 3
    assert record.total_distance_m is not None
    assert record.total_distance_m < 5


async def test_urevo_console_start_sends_started_with_two_trailing_bytes(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="urevo-e1l"))
    raw: asyncio.Queue[bytes] = asyncio.Queue()
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.client.start_notify(
            "00002ada-0000-1000-8000-00805f9b34fb", lambda _, value: raw.put_nowait(bytes(value))
        )
        assert treadmill.model.press_start()
        assert await raw.get() == bytes.fromhex("04 00 00")


# -- fitshow-bc11b7 ----------------------------------------------------------------------------


async def test_fitshow_swaps_the_service_data_type_bytes(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="fitshow-bc11b7"))
    async with asyncio.timeout(TEST_TIMEOUT_S):
        found = await BleakScanner.discover(
            timeout=0.2, return_adv=True, backend=fleet.scanner_backend
        )
    device, advertisement = found[treadmill.address]
    assert device.name == "FS-BC11B7"
    assert advertisement.service_data[FTMS_SERVICE_UUID] == bytes.fromhex("01 00 01")


@pytest.mark.parametrize("reporting", ["10m_steps", "stuck"])
def test_fitshow_frames_look_like_the_probe_report(reporting: str) -> None:
    real = decode_treadmill_data(
        bytes.fromhex("8c 04 58 02 32 00 00 1e 00 00 00 03 00 00 00 00 ee 00")
    )

    async def body(
        _treadmill: SimulatedTreadmill, session: FtmsSession, _clock: Clock
    ) -> tuple[TreadmillData, bytes, list[int]]:
        await session.take_control()
        await session.send(SetTargetInclination(3.0))
        await session.send(SetTargetSpeed(6.0))
        await session.send(StartOrResume())
        distances = []
        for _ in range(12):
            await asyncio.sleep(10.0)
            record = await latest_record(session)
            assert record.total_distance_m is not None
            distances.append(record.total_distance_m)
        while not session.data.empty():
            session.data.get_nowait()
        raw = await session.data.get()
        return decode_treadmill_data(raw), raw, distances

    config = SimulatedTreadmillConfig(
        preset="fitshow-bc11b7", total_distance_reporting=reporting, advertising_interval_ms=1000
    )
    record, raw, distances = in_virtual_time(config, body)
    assert raw[:2] == bytes.fromhex("8c 04")  # the same fields as the real frame
    assert record.instantaneous_speed_kmh == real.instantaneous_speed_kmh == 6.0
    assert record.inclination_pct == real.inclination_pct == 3.0
    assert record.ramp_angle_deg == real.ramp_angle_deg == 0.0
    assert record.energy_per_hour_kcal == real.energy_per_hour_kcal == 0
    if reporting == "stuck":
        assert set(distances) == {0}
    else:
        assert all(distance % 10 == 0 for distance in distances)
        assert distances[-1] > distances[0] > 0


# -- horizon -----------------------------------------------------------------------------------


def test_horizon_stops_itself_after_thirty_minutes_without_a_word() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float, float, float]:
        await session.take_control()
        await session.send(SetTargetSpeed(5.0))
        started_at = clock.now()
        await session.send(StartOrResume())
        await asyncio.sleep(29 * 60.0)
        before = (await latest_record(session)).instantaneous_speed_kmh
        while (await latest_record(session)).instantaneous_speed_kmh:
            pass
        stopped_after = clock.now() - started_at
        assert treadmill.model.running_state is RunningState.STOPPED
        assert before is not None
        return before, stopped_after, float(session.statuses.qsize())

    before, stopped_after, statuses = in_virtual_time(
        SimulatedTreadmillConfig(preset="horizon", advertising_interval_ms=1000), body
    )
    assert before == 5.0
    # 30 minutes of running, then 5 s of slowing at 1 km/h/s (one record late at most).
    assert 30 * 60 + 4 <= stopped_after <= 30 * 60 + 7
    assert statuses == 0  # like its console stop: only Treadmill Data tells


def test_a_shortened_self_stop_with_status_reads_as_a_console_stop() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, _clock: Clock
    ) -> list[object]:
        await session.take_control()
        await session.send(StartOrResume())
        await asyncio.sleep(5.0)
        await session.send(StopOrPause(StopKind.PAUSE))  # a pause keeps the count
        await asyncio.sleep(30.0)
        await session.send(StartOrResume())
        await asyncio.sleep(6.0)
        assert treadmill.model.running_state is RunningState.STOPPED
        return [session.statuses.get_nowait() for _ in range(session.statuses.qsize())]

    statuses = in_virtual_time(
        SimulatedTreadmillConfig(
            preset="horizon",
            self_stop_after_s=10.0,
            report_console_status=True,
            advertising_interval_ms=1000,
        ),
        body,
    )
    assert [type(status).__name__ for status in statuses] == [
        "StoppedOrPausedByUser",
        "ControlPermissionLost",
    ]


# -- kingsmith-mc21 ----------------------------------------------------------------------------


async def test_kingsmith_ignores_control_until_its_vendor_unlock_on_each_connection(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="kingsmith-mc21"))
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with connected(fleet, treadmill) as session:
            unlock = session.client.services.get_characteristic(
                KINGSMITH_UNLOCK_CHARACTERISTIC_UUID
            )
            assert unlock is not None
            assert unlock.properties == ["write"]
            assert unlock.service_uuid == FTMS_SERVICE_UUID
            await session.write_raw(encode_control_request(RequestControl()))  # ATT accepts it
            await session.write_raw(encode_control_request(StartOrResume()))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await session.responses.get()
            assert treadmill.model.running_state is RunningState.IDLE
            await session.client.write_gatt_char(unlock, b"\x01", response=True)
            await session.take_control()
        async with connected(fleet, treadmill) as again:
            await again.write_raw(encode_control_request(RequestControl()))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await again.responses.get()


# -- incline-table -----------------------------------------------------------------------------


def test_incline_table_takes_an_index_and_reports_the_real_percent() -> None:
    table = SimulatedTreadmillConfig(preset="incline-table").incline_table
    assert table is not None

    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, _clock: Clock
    ) -> tuple[bytes, ResultCode, TreadmillData, ResultCode]:
        advertised = await session.client.read_gatt_char(INCLINATION_RANGE_UUID)
        await session.take_control()
        # Raw parameter 7 (what a percent client sends for "0.7 %") is index 7 of the table.
        chosen = (await session.send(SetTargetInclination(0.7))).result
        await asyncio.sleep(30.0)
        record = await latest_record(session)
        off_table = (await session.send(SetTargetInclination(len(table) / 10))).result
        assert treadmill.model.target_incline_pct == table[7]
        return bytes(advertised), chosen, record, off_table

    advertised, chosen, record, off_table = in_virtual_time(
        SimulatedTreadmillConfig(preset="incline-table", advertising_interval_ms=1000), body
    )
    incline_range = decode_inclination_range(advertised)
    assert incline_range.minimum_pct == 0.0
    assert incline_range.maximum_pct == pytest.approx((len(table) - 1) / 10)
    assert incline_range.increment_pct == pytest.approx(0.1)
    assert chosen is ResultCode.SUCCESS
    assert record.inclination_pct == table[7] == 5.0
    assert off_table is ResultCode.INVALID_PARAMETER


# -- belt-first --------------------------------------------------------------------------------


async def test_belt_first_refuses_speed_until_the_belt_runs(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(preset="belt-first"))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        refused = await session.send(SetTargetSpeed(3.0))
        started = await session.send(StartOrResume())
        taken = await session.send(SetTargetSpeed(3.0))
    assert refused.result is ResultCode.OPERATION_FAILED
    assert started.result is ResultCode.SUCCESS
    assert taken.result is ResultCode.SUCCESS
    assert treadmill.model.target_speed_kmh == 3.0


# -- what every deck's GATT refuses, like BlueZ and a real server ------------------------------


async def test_a_write_command_to_a_control_point_without_it_is_dropped(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.client.write_gatt_char(
            CONTROL_POINT_UUID, encode_control_request(RequestControl()), response=False
        )
        # A later round trip on the same link: any answer would have arrived before it.
        await session.client.read_gatt_char(FEATURE_UUID)
        await asyncio.sleep(0.05)
    assert session.responses.empty()
    assert not treadmill.model.control_granted


async def test_setpoints_truncate_to_the_step_below(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(speed_increment_kmh=0.5))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        await session.send(SetTargetSpeed(4.49))
        first = treadmill.model.target_speed_kmh
        await session.send(SetTargetSpeed(4.5))
    assert first == 4.0
    assert treadmill.model.target_speed_kmh == 4.5


async def test_a_client_reaches_every_preset(fleet: SimulatedFleet) -> None:
    for preset in PRESETS:
        treadmill = await fleet.add(SimulatedTreadmillConfig(preset=preset))
        device = await find_device(fleet, treadmill)
        async with asyncio.timeout(TEST_TIMEOUT_S):
            async with BleakClient(device, backend=fleet.client_backend) as client:
                assert client.services.get_service(FTMS_SERVICE_UUID) is not None


async def test_an_mph_deck_truncates_within_one_wire_step(fleet: SimulatedFleet) -> None:
    # 2.48 mph (3.991 km/h) is the closest the 0.01 mph wire comes to 4.0 km/h from below: the
    # deck runs 4.0, not 3.9; 2.47 mph (3.975 km/h) is more than a wire step short and runs 3.9.
    treadmill = await fleet.add(SimulatedTreadmillConfig.tm11gy())
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        await session.send(SetTargetSpeed(2.48))
        closest = treadmill.model.target_speed_kmh
        await session.send(SetTargetSpeed(2.47))
    assert closest == 4.0
    assert treadmill.model.target_speed_kmh == 3.9
