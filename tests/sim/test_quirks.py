"""Each quirk and fault switch, seen by a client through the real BleakClient.

(Dropping the link, stopping advertising and missing service data are covered in
test_connection.py and test_scan.py.)
"""

from __future__ import annotations

import asyncio

import pytest
from treadmilld_sim import (
    RunningState,
    SimulatedFleet,
    SimulatedTreadmill,
    SimulatedTreadmillConfig,
)

from treadmilld.ftms import (
    ControlOpcode,
    RequestControl,
    ResultCode,
    SetTargetSpeed,
    StartOrResume,
    TreadmillDataAssembler,
    decode_treadmill_data,
)
from treadmilld.runtime.clock import LoopClock

from .session import TEST_TIMEOUT_S, FtmsSession, connected, run_in_virtual_time


async def start_belt(session: FtmsSession, speed_kmh: float) -> None:
    await session.take_control()
    assert (await session.send(SetTargetSpeed(speed_kmh))).result is ResultCode.SUCCESS
    assert (await session.send(StartOrResume())).result is ResultCode.SUCCESS


@pytest.mark.parametrize("result", list(ResultCode))
async def test_forced_result_code_answers_and_changes_nothing(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill, result: ResultCode
) -> None:
    treadmill.faults.forced_results[ControlOpcode.START_OR_RESUME] = result
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        answer = await session.send(StartOrResume())
    assert answer.request_opcode == ControlOpcode.START_OR_RESUME
    assert answer.result is result
    assert treadmill.model.running_state is RunningState.IDLE


async def test_silent_control_point_acts_but_never_indicates(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    treadmill.faults.silent_control_point = True
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.write_raw(bytes([ControlOpcode.REQUEST_CONTROL]))
        await session.write_raw(bytes([ControlOpcode.START_OR_RESUME]))
        # A full read round trip later, an indication would long have been delivered.
        await session.client.read_gatt_char("00002ad3-0000-1000-8000-00805f9b34fb")
        await asyncio.sleep(0.05)
    assert session.responses.empty()
    assert treadmill.model.running_state is RunningState.RUNNING


def test_delayed_responses_arrive_after_the_delay_in_treadmill_time() -> None:
    async def scenario() -> tuple[float, float]:
        clock = LoopClock()
        async with SimulatedFleet(clock) as fleet:
            treadmill = await fleet.add(SimulatedTreadmillConfig(response_delay_s=2.5))
            async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
                sent_at = clock.now()
                answer = await session.send(RequestControl())
                answered_at = clock.now()
        assert answer.result is ResultCode.SUCCESS
        return sent_at, answered_at

    sent_at, answered_at = run_in_virtual_time(scenario)
    assert answered_at - sent_at >= 2.5


async def test_require_start_before_speed(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(require_start_before_speed=True))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await session.take_control()
        before_start = await session.send(SetTargetSpeed(3.0))
        await session.send(StartOrResume())
        after_start = await session.send(SetTargetSpeed(3.0))
    assert before_start.result is ResultCode.OPERATION_FAILED
    assert after_start.result is ResultCode.SUCCESS


async def test_start_while_running_stops_the_belt_like_tm11gy(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(start_while_running_stops=True))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await start_belt(session, 3.0)
        second_start = await session.send(StartOrResume())
    assert second_start.result is ResultCode.SUCCESS
    assert treadmill.model.running_state is RunningState.STOPPED


async def test_speed_in_mph_like_bowflex(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(speed_in_mph=True))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await start_belt(session, 2.0)
    assert treadmill.model.target_speed_kmh == pytest.approx(3.2)  # 2 mph = 3.22 km/h


async def test_fragmented_treadmill_data_reassembles_into_whole_records(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(fragment_treadmill_data=True, data_rate_hz=20.0)
    )
    assembler = TreadmillDataAssembler()
    fragments = 0
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        record = None
        while record is None:
            notification = await session.data.get()
            fragments += decode_treadmill_data(notification).more_data
            record = assembler.feed(notification)
    assert fragments >= 1
    assert record.instantaneous_speed_kmh == 0.0
    assert record.total_distance_m == 0
    assert record.elapsed_time_s == 0
    assert record.inclination_pct == 0.0


async def test_bit_13_step_count(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(report_step_count=True, data_rate_hz=20))
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        record = decode_treadmill_data(await session.data.get())
    assert record.step_count == 0


def test_kingsmith_sends_10_hz_while_moving_and_1_hz_at_rest() -> None:
    async def count_records(seconds: float, session: FtmsSession) -> int:
        while not session.data.empty():
            session.data.get_nowait()
        await asyncio.sleep(seconds)
        return session.data.qsize()

    async def scenario() -> tuple[int, int]:
        async with SimulatedFleet() as fleet:
            treadmill = await fleet.add(SimulatedTreadmillConfig.kingsmith())
            # Virtual seconds: the bound must cover the 20 s this scenario waits on purpose.
            async with asyncio.timeout(TEST_TIMEOUT_S * 5), connected(fleet, treadmill) as session:
                at_rest = await count_records(10.0, session)
                await start_belt(session, 3.0)
                moving = await count_records(10.0, session)
        return at_rest, moving

    at_rest, moving = run_in_virtual_time(scenario)
    assert 9 <= at_rest <= 11
    assert 95 <= moving <= 105


async def test_an_answer_owed_when_the_link_drops_does_not_block_the_next_connection(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    treadmill.faults.response_delay_s = 30.0
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with connected(fleet, treadmill) as session:
            await session.write_raw(bytes([ControlOpcode.REQUEST_CONTROL]))
            await treadmill.drop_link()
            await session.disconnected.wait()
        treadmill.faults.response_delay_s = 0.0
        async with connected(fleet, treadmill) as session:
            answer = await session.send(RequestControl())
    assert answer.result is ResultCode.SUCCESS
