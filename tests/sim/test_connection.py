"""Connection life cycle through the real BleakClient: drops, reconnects, timeouts, many decks."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection
from treadmilld_sim import SimulatedFleet, SimulatedTreadmill, SimulatedTreadmillConfig

from treadmilld.ftms import (
    FEATURE_UUID,
    FTMS_SERVICE_UUID,
    RequestControl,
    ResultCode,
    SetTargetSpeed,
    StartOrResume,
    decode_feature,
)

from .session import TEST_TIMEOUT_S, connected, find_device


async def test_link_drop_reaches_the_disconnected_callback(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await treadmill.drop_link()
        await session.disconnected.wait()
        assert not session.client.is_connected
        with pytest.raises(BleakError):
            await session.client.read_gatt_char(FEATURE_UUID)


async def test_local_disconnect_also_fires_the_callback_and_reconnect_works(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    drops: list[BleakClient] = []
    async with asyncio.timeout(TEST_TIMEOUT_S):
        device = await find_device(fleet, treadmill)
        client = BleakClient(
            device, disconnected_callback=drops.append, backend=fleet.client_backend
        )
        await client.connect()
        await client.disconnect()
        assert drops == [client]
        await client.connect()  # the same BleakClient again, like a supervisor would
        feature = decode_feature(await client.read_gatt_char(FEATURE_UUID))
        await client.disconnect()
    assert feature.target_settings
    assert len(drops) == 2


async def test_reconnect_by_address_string_after_a_drop(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with connected(fleet, treadmill) as session:
            await treadmill.drop_link()
            await session.disconnected.wait()
        async with BleakClient(treadmill.address, backend=fleet.client_backend) as client:
            assert client.is_connected
            assert client.services.get_service(FTMS_SERVICE_UUID) is not None


async def test_connect_to_a_silent_treadmill_times_out_cleanly(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    controllers_before = fleet.radio.controller_count
    await treadmill.stop_advertising()
    client = BleakClient(treadmill.address, timeout=0.3, backend=fleet.client_backend)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        with pytest.raises(TimeoutError):
            await client.connect()
        assert not client.is_connected
        # The abandoned central must not connect later by itself.
        await treadmill.start_advertising()
        await asyncio.sleep(0.1)
    assert not treadmill.is_connected
    assert fleet.radio.controller_count == controllers_before


async def test_no_controller_is_leaked_per_connection(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    controllers_before = fleet.radio.controller_count
    async with asyncio.timeout(TEST_TIMEOUT_S):
        device = await find_device(fleet, treadmill)
        for cycle in range(10):
            client = BleakClient(device, backend=fleet.client_backend)
            await client.connect()
            if cycle % 2:
                await treadmill.drop_link()
            await client.disconnect()
            await asyncio.sleep(0)
    assert fleet.radio.controller_count == controllers_before


async def test_bleak_retry_connector_establishes_a_connection(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        device = await find_device(fleet, treadmill)
        client = await establish_connection(
            BleakClient, device, treadmill.name, max_attempts=2, backend=fleet.client_backend
        )
        try:
            assert client.is_connected
            feature = decode_feature(await client.read_gatt_char(FEATURE_UUID))
        finally:
            await client.disconnect()
    assert feature.target_settings


async def test_eight_treadmills_on_one_link_all_at_once(fleet: SimulatedFleet) -> None:
    treadmills = [
        await fleet.add(SimulatedTreadmillConfig(name=f"SIM-TM{index:02d}")) for index in range(8)
    ]
    async with asyncio.timeout(TEST_TIMEOUT_S):
        found = await BleakScanner.discover(
            timeout=0.3,
            return_adv=True,
            service_uuids=[FTMS_SERVICE_UUID],
            backend=fleet.scanner_backend,
        )
        async with contextlib.AsyncExitStack() as stack:
            sessions = [
                await stack.enter_async_context(connected(fleet, treadmill))
                for treadmill in treadmills
            ]

            async def drive(index: int) -> ResultCode:
                session = sessions[index]
                await session.take_control()
                await session.send(SetTargetSpeed(1.0 + index * 0.5))
                return (await session.send(StartOrResume())).result

            # All eight connected at once, driven concurrently.
            assert all(session.client.is_connected for session in sessions)
            results = await asyncio.gather(*(drive(index) for index in range(8)))
    assert len({t.address for t in treadmills}) == 8
    assert {found[t.address][1].local_name for t in treadmills} == {t.name for t in treadmills}
    assert results == [ResultCode.SUCCESS] * 8
    assert [t.model.target_speed_kmh for t in treadmills] == [1.0 + i * 0.5 for i in range(8)]


async def test_a_fixed_address_is_kept_and_duplicates_are_refused(fleet: SimulatedFleet) -> None:
    first = await fleet.add(SimulatedTreadmillConfig(name="FIXED", address="f1:00:00:00:00:01"))
    assert first.address == "F1:00:00:00:00:01"
    with pytest.raises(ValueError, match="already used"):
        await fleet.add(SimulatedTreadmillConfig(name="CLASH", address="F1:00:00:00:00:01"))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, first) as session:
        assert (await session.send(RequestControl())).result is ResultCode.SUCCESS


async def test_a_request_whose_caller_is_cancelled_still_completes_cleanly(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    # A daemon shutting down cancels a speed write that is waiting for its ATT response. Like
    # BlueZ, the backend lets the request finish: the response must not hit a cancelled future
    # inside Bumble (InvalidStateError reported to the loop), and the link stays usable.
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
            # Cancel after 1..12 loop turns: some of these land while the ATT response is in
            # flight (5 and 6 turns on bumble 0.0.236), then let that response arrive.
            for turns in range(1, 13):
                request = asyncio.ensure_future(session.client.read_gatt_char(FEATURE_UUID))
                for _ in range(turns):
                    await asyncio.sleep(0)
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
                await asyncio.sleep(0.02)
            assert await session.client.read_gatt_char(FEATURE_UUID)
    finally:
        loop.set_exception_handler(None)
    assert reported == []
