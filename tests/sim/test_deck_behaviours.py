"""Deck behaviours of real treadmills (docs/simulator.md), seen as a client sees them.

Each test drives the simulated deck through the real BleakClient on the fleet's backend and
asserts what arrives on the wire: Control Point answers, Machine Status, Training Status and
the belt speed and incline in Treadmill Data. Timing runs in virtual time unless the test is
about real time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from bleak.exc import BleakError
from pydantic import ValidationError
from treadmilld_sim import (
    RunningState,
    SimulatedFleet,
    SimulatedTreadmill,
    SimulatedTreadmillConfig,
)

from treadmilld.ftms import (
    ControlRequest,
    ControlResponse,
    MachineStatus,
    ResultCode,
    SetTargetInclination,
    SetTargetSpeed,
    StartOrResume,
    StopKind,
    StopOrPause,
    TargetSpeedChanged,
    TrainingStatusCode,
    TreadmillData,
    decode_treadmill_data,
    encode_control_request,
)
from treadmilld.runtime.clock import Clock, LoopClock

from .session import TEST_TIMEOUT_S, FtmsSession, connected, run_in_virtual_time

T = TypeVar("T")

# Virtual seconds: the longest scenario here waits about 40 s of treadmill time on purpose.
VIRTUAL_TIMEOUT_S = 120.0
# 10 records a second: fine enough to see a ramp, cheap in virtual time.
DATA_RATE_HZ = 10.0


def deck(**behaviours: object) -> SimulatedTreadmillConfig:
    return SimulatedTreadmillConfig.model_validate({"data_rate_hz": DATA_RATE_HZ, **behaviours})


def drain(queue: asyncio.Queue[T]) -> list[T]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def watch_belt(
    session: FtmsSession, clock: Clock, seconds: float
) -> list[tuple[float, TreadmillData]]:
    """Every Treadmill Data record received in the next `seconds`, with its arrival time."""
    drain(session.data)
    end = clock.now() + seconds
    seen: list[tuple[float, TreadmillData]] = []
    while (left := end - clock.now()) > 0:
        try:
            async with asyncio.timeout(left):
                raw = await session.data.get()
        except TimeoutError:
            break
        seen.append((clock.now(), decode_treadmill_data(raw)))
    return seen


def speeds(records: list[tuple[float, TreadmillData]]) -> list[float]:
    return [record.instantaneous_speed_kmh or 0.0 for _, record in records]


async def belt_reaches(session: FtmsSession, predicate: Callable[[float], bool]) -> float:
    """Wait for a Treadmill Data record whose speed satisfies `predicate`; return that speed."""
    while True:
        speed = decode_treadmill_data(await session.data.get()).instantaneous_speed_kmh or 0.0
        if predicate(speed):
            return speed


async def run_belt(session: FtmsSession, speed_kmh: float) -> None:
    """Take control, set the speed, start, and wait until Treadmill Data shows it."""
    await session.take_control()
    assert (await session.send(SetTargetSpeed(speed_kmh))).result is ResultCode.SUCCESS
    assert (await session.send(StartOrResume())).result is ResultCode.SUCCESS
    await belt_reaches(session, lambda speed: speed >= speed_kmh - 1e-6)


def in_virtual_time(
    config: SimulatedTreadmillConfig,
    body: Callable[[SimulatedTreadmill, FtmsSession, Clock], Coroutine[Any, Any, T]],
) -> T:
    """Run `body(treadmill, session, clock)` against one deck, connected, in virtual time."""

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


# -- report_console_status=False: console buttons and the safety key say nothing ------------


def test_silent_console_stop_shows_only_as_the_belt_slowing_in_treadmill_data() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[
        list[float],
        list[MachineStatus],
        list[TrainingStatusCode | None],
        ResultCode,
        list[MachineStatus],
    ]:
        await run_belt(session, 3.0)
        drain(session.statuses)
        drain(session.training)
        assert treadmill.model.press_stop()
        slowing = speeds(await watch_belt(session, clock, 5.0))
        after_stop = drain(session.statuses)
        training_after_stop = [status.code for status in drain(session.training)]
        # Nothing took control away: the client's Start is obeyed (issue 11's restart hazard).
        restart = (await session.send(StartOrResume())).result
        # Other statuses are unaffected: a console speed change is still reported.
        treadmill.model.set_speed_at_console(2.0)
        later = [await session.statuses.get(), await session.statuses.get()]
        return slowing, after_stop, training_after_stop, restart, later

    slowing, after_stop, training, restart, later = in_virtual_time(
        deck(report_console_status=False), body
    )
    assert slowing[-1] == 0.0
    assert any(0.0 < speed < 3.0 for speed in slowing)  # it slowed down, it did not vanish
    assert after_stop == []
    assert training == []
    assert restart is ResultCode.SUCCESS
    assert later[0] == TargetSpeedChanged(2.0)


def test_silent_safety_key_stops_the_belt_without_a_status_and_keeps_start_refused() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[list[float], list[MachineStatus], ResultCode, ResultCode]:
        await run_belt(session, 3.0)
        drain(session.statuses)
        treadmill.model.pull_safety_key()
        stopped = speeds(await watch_belt(session, clock, 1.0))
        statuses = drain(session.statuses)
        # Refused because the key is out, not because control was taken (05).
        with_key_out = (await session.send(StartOrResume())).result
        treadmill.model.insert_safety_key()
        with_key_in = (await session.send(StartOrResume())).result
        return stopped, statuses, with_key_out, with_key_in

    stopped, statuses, with_key_out, with_key_in = in_virtual_time(
        deck(report_console_status=False), body
    )
    assert stopped
    assert all(speed == 0.0 for speed in stopped)
    assert statuses == []
    assert with_key_out is ResultCode.OPERATION_FAILED
    assert with_key_in is ResultCode.SUCCESS


# -- deceleration_kmh_per_s --------------------------------------------------------------------


def test_a_heavy_deck_is_still_moving_long_after_stop() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float, list[tuple[float, TreadmillData]]]:
        await run_belt(session, 4.0)
        assert (await session.send(StopOrPause(StopKind.STOP))).result is ResultCode.SUCCESS
        stopped_at = clock.now()
        return stopped_at, await watch_belt(session, clock, 20.0)

    stopped_at, records = in_virtual_time(deck(deceleration_kmh_per_s=0.25), body)
    at_10_s = next(r for t, r in records if t - stopped_at >= 10.0)
    standing_from = next(t for t, r in records if r.instantaneous_speed_kmh == 0.0)
    assert at_10_s.instantaneous_speed_kmh == pytest.approx(1.5, abs=0.05)
    # 4 km/h at 0.25 km/h/s: 16 s to a standstill.
    assert standing_from - stopped_at == pytest.approx(16.0, abs=0.2)


def slope(records: list[tuple[float, TreadmillData]]) -> float:
    """Belt acceleration between the first and the last record, in km/h per second."""
    (first_at, first), (last_at, last) = records[0], records[-1]
    change = (last.instantaneous_speed_kmh or 0.0) - (first.instantaneous_speed_kmh or 0.0)
    return change / (last_at - first_at)


def test_slowing_follows_the_deceleration_and_speeding_up_the_acceleration() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[list[tuple[float, TreadmillData]], list[tuple[float, TreadmillData]]]:
        await run_belt(session, 4.0)
        assert (await session.send(SetTargetSpeed(2.0))).result is ResultCode.SUCCESS
        slowing = await watch_belt(session, clock, 4.0)  # 4 -> 3 km/h: still on the ramp
        assert (await session.send(SetTargetSpeed(4.0))).result is ResultCode.SUCCESS
        speeding = await watch_belt(session, clock, 0.8)  # 3 -> 3.8 km/h: still on the ramp
        return slowing, speeding

    slowing, speeding = in_virtual_time(
        deck(deceleration_kmh_per_s=0.25, acceleration_kmh_per_s=1.0), body
    )
    assert slope(slowing) == pytest.approx(-0.25, abs=0.01)
    assert slope(speeding) == pytest.approx(1.0, abs=0.05)


def test_the_safety_key_stops_a_slow_decelerating_deck_at_once() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> list[float]:
        await run_belt(session, 4.0)
        treadmill.model.pull_safety_key()
        return speeds(await watch_belt(session, clock, 0.5))

    after_pull = in_virtual_time(deck(deceleration_kmh_per_s=0.25), body)
    assert after_pull
    assert all(speed == 0.0 for speed in after_pull)


@pytest.mark.parametrize("rate", [0.25, 1.0, 5.0])
def test_deceleration_accepts_real_deck_rates(rate: float) -> None:
    assert SimulatedTreadmillConfig(deceleration_kmh_per_s=rate).deceleration_kmh_per_s == rate


@pytest.mark.parametrize("rate", [0.0, 0.05, 20.0])
def test_deceleration_refuses_rates_no_deck_has(rate: float) -> None:
    with pytest.raises(ValidationError, match="deceleration_kmh_per_s"):
        SimulatedTreadmillConfig(deceleration_kmh_per_s=rate)


# -- resume_at_last_target --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resume_at_last_target", "written_before_start", "expected_top_speed"),
    [
        (False, None, 0.5),  # clean default: a Stop clears the target, Start runs at the minimum
        (True, None, 3.0),  # the jump back to the old speed issue 11 saw
        (True, 1.0, 1.0),  # writing the target before Start avoids it
    ],
)
def test_start_after_a_stop(
    resume_at_last_target: bool, written_before_start: float | None, expected_top_speed: float
) -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> list[float]:
        await run_belt(session, 3.0)
        assert (await session.send(StopOrPause(StopKind.STOP))).result is ResultCode.SUCCESS
        await belt_reaches(session, lambda speed: speed == 0.0)
        if written_before_start is not None:
            answer = await session.send(SetTargetSpeed(written_before_start))
            assert answer.result is ResultCode.SUCCESS
        assert (await session.send(StartOrResume())).result is ResultCode.SUCCESS
        return speeds(await watch_belt(session, clock, 10.0))

    seen = in_virtual_time(deck(resume_at_last_target=resume_at_last_target), body)
    assert max(seen) == pytest.approx(expected_top_speed)


@pytest.mark.parametrize("resume_at_last_target", [False, True])
def test_start_after_a_pause_resumes_the_last_target_on_every_deck(
    resume_at_last_target: bool,
) -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> list[float]:
        await run_belt(session, 3.0)
        assert (await session.send(StopOrPause(StopKind.PAUSE))).result is ResultCode.SUCCESS
        await belt_reaches(session, lambda speed: speed == 0.0)
        assert (await session.send(StartOrResume())).result is ResultCode.SUCCESS
        return speeds(await watch_belt(session, clock, 10.0))

    seen = in_virtual_time(deck(resume_at_last_target=resume_at_last_target), body)
    assert max(seen) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("resume_at_last_target", "expected_top_speed"), [(False, 0.5), (True, 3.0)]
)
def test_start_after_the_safety_key_was_pulled_and_put_back(
    resume_at_last_target: bool, expected_top_speed: float
) -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> list[float]:
        await run_belt(session, 3.0)
        treadmill.model.pull_safety_key()
        treadmill.model.insert_safety_key()
        assert (await session.send(StartOrResume())).result is ResultCode.SUCCESS
        return speeds(await watch_belt(session, clock, 10.0))

    seen = in_virtual_time(deck(resume_at_last_target=resume_at_last_target), body)
    assert max(seen) == pytest.approx(expected_top_speed)


# -- initial_incline_pct -------------------------------------------------------------------


def test_a_deck_left_inclined_reports_it_and_comes_down_at_its_motor_rate() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float | None, float | None, float]:
        at_connect = decode_treadmill_data(await session.data.get()).inclination_pct
        await session.take_control()
        assert (await session.send(SetTargetInclination(0.0))).result is ResultCode.SUCCESS
        lowered_at = clock.now()
        after_10_s = (await watch_belt(session, clock, 10.0))[-1][1].inclination_pct
        while decode_treadmill_data(await session.data.get()).inclination_pct != 0.0:
            pass
        return at_connect, after_10_s, clock.now() - lowered_at

    at_connect, after_10_s, time_to_flat = in_virtual_time(
        deck(initial_incline_pct=12.0, incline_rate_pct_per_s=0.5), body
    )
    assert at_connect == 12.0
    assert after_10_s == pytest.approx(7.0, abs=0.1)
    assert time_to_flat == pytest.approx(24.0, abs=0.2)


def test_initial_incline_must_be_in_the_inclination_range() -> None:
    with pytest.raises(ValidationError, match="initial_incline_pct"):
        SimulatedTreadmillConfig(initial_incline_pct=20.0)


def test_a_running_deck_can_be_left_inclined_without_a_status() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float | None, list[MachineStatus]]:
        treadmill.model.leave_inclined_at(13.0)
        incline = (await watch_belt(session, clock, 0.5))[-1][1].inclination_pct
        return incline, drain(session.statuses)

    incline, statuses = in_virtual_time(deck(), body)
    assert incline == 13.0
    assert statuses == []


# -- ignores_speed_commands ---------------------------------------------------------------


def test_a_deck_that_ignores_speed_commands_answers_success_and_keeps_its_speed() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[list[ResultCode], list[float], float]:
        await session.take_control()
        answers = [(await session.send(SetTargetSpeed(4.0))).result]
        answers.append((await session.send(StartOrResume())).result)
        answers.append((await session.send(SetTargetSpeed(3.0))).result)
        ignored = speeds(await watch_belt(session, clock, 10.0))
        # Flipped while the deck runs: speed commands work again.
        treadmill.faults.ignores_speed_commands = False
        assert (await session.send(SetTargetSpeed(2.0))).result is ResultCode.SUCCESS
        obeyed = await belt_reaches(session, lambda speed: speed >= 2.0)
        return answers, ignored, obeyed

    answers, ignored, obeyed = in_virtual_time(deck(ignores_speed_commands=True), body)
    assert answers == [ResultCode.SUCCESS] * 3
    assert max(ignored) == pytest.approx(0.5)  # Start from rest: the minimum speed
    assert obeyed == pytest.approx(2.0)


# -- starts_on_connect --------------------------------------------------------------------


@pytest.mark.parametrize(("starts_on_connect_kmh", "expected"), [(None, 0.5), (1.5, 1.5)])
def test_a_deck_that_starts_on_connect_runs_with_nothing_written(
    starts_on_connect_kmh: float | None, expected: float
) -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[list[float], list[MachineStatus], list[ControlRequest]]:
        requests: list[ControlRequest] = []
        treadmill.add_control_listener(lambda request, _at: requests.append(request))
        running = speeds(await watch_belt(session, clock, 5.0))
        return running, drain(session.statuses), requests

    running, statuses, requests = in_virtual_time(
        deck(starts_on_connect=True, starts_on_connect_kmh=starts_on_connect_kmh), body
    )
    assert requests == []
    assert statuses == []
    assert running[-1] == pytest.approx(expected)


def test_starts_on_every_connection_but_never_with_the_key_out() -> None:
    async def scenario() -> tuple[float, float]:
        clock = LoopClock()
        async with SimulatedFleet(clock) as fleet:
            treadmill = await fleet.add(deck(starts_on_connect=True, starts_on_connect_kmh=1.5))
            async with asyncio.timeout(VIRTUAL_TIMEOUT_S):
                async with connected(fleet, treadmill) as session:
                    await session.take_control()
                    await session.send(StopOrPause(StopKind.STOP))
                    await belt_reaches(session, lambda speed: speed == 0.0)
                async with connected(fleet, treadmill) as session:
                    again = max(speeds(await watch_belt(session, clock, 3.0)))
                    treadmill.model.pull_safety_key()
                async with connected(fleet, treadmill) as session:
                    key_out = max(speeds(await watch_belt(session, clock, 3.0)))
        return again, key_out

    again, key_out = run_in_virtual_time(scenario)
    assert again == pytest.approx(1.5)
    assert key_out == 0.0


def test_starts_on_connect_speed_must_be_in_the_speed_range() -> None:
    with pytest.raises(ValidationError, match="starts_on_connect_kmh"):
        SimulatedTreadmillConfig(starts_on_connect=True, starts_on_connect_kmh=30.0)


# -- refuses_stop / refuses_pause ---------------------------------------------------------


@pytest.mark.parametrize("code", [ResultCode.OPERATION_FAILED, ResultCode.CONTROL_NOT_PERMITTED])
def test_a_refused_stop_is_answered_with_its_code_and_the_belt_keeps_running(
    code: ResultCode,
) -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[ControlResponse, list[float], ResultCode, float]:
        await run_belt(session, 3.0)
        refused = await session.send(StopOrPause(StopKind.STOP))
        running = speeds(await watch_belt(session, clock, 5.0))
        paused = (await session.send(StopOrPause(StopKind.PAUSE))).result  # kind 2 still works
        standing = await belt_reaches(session, lambda speed: speed == 0.0)
        return refused, running, paused, standing

    refused, running, paused, standing = in_virtual_time(deck(refuses_stop=code), body)
    assert refused == ControlResponse(0x08, code)
    assert min(running) == pytest.approx(3.0)
    assert paused is ResultCode.SUCCESS
    assert standing == 0.0


def test_a_refused_pause_is_answered_with_its_code_and_stop_still_works() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[ResultCode, list[float], ResultCode]:
        await run_belt(session, 3.0)
        refused = (await session.send(StopOrPause(StopKind.PAUSE))).result
        running = speeds(await watch_belt(session, clock, 5.0))
        stopped = (await session.send(StopOrPause(StopKind.STOP))).result
        return refused, running, stopped

    refused, running, stopped = in_virtual_time(
        deck(refuses_pause=ResultCode.OPERATION_FAILED), body
    )
    assert refused is ResultCode.OPERATION_FAILED
    assert min(running) == pytest.approx(3.0)
    assert stopped is ResultCode.SUCCESS


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("operation-failed", ResultCode.OPERATION_FAILED),
        ("CONTROL_NOT_PERMITTED", ResultCode.CONTROL_NOT_PERMITTED),
        (4, ResultCode.OPERATION_FAILED),
    ],
)
def test_refusal_codes_are_accepted_by_name_or_number(written: object, code: ResultCode) -> None:
    config = SimulatedTreadmillConfig.model_validate({"refuses_stop": written})
    assert config.refuses_stop is code


def test_an_unknown_refusal_code_is_refused_with_the_choices() -> None:
    with pytest.raises(ValidationError, match="operation_failed"):
        SimulatedTreadmillConfig.model_validate({"refuses_pause": "maybe"})


# -- drops_link_on_stop ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [StopKind.STOP, StopKind.PAUSE])
def test_a_deck_that_drops_the_link_on_stop_keeps_the_belt_running(kind: StopKind) -> None:
    async def scenario() -> tuple[bool, list[ControlResponse], list[ControlRequest], float, float]:
        clock = LoopClock()
        async with SimulatedFleet(clock) as fleet:
            treadmill = await fleet.add(deck(drops_link_on_stop=True))
            requests: list[ControlRequest] = []
            treadmill.add_control_listener(lambda request, _at: requests.append(request))
            async with asyncio.timeout(VIRTUAL_TIMEOUT_S):
                async with connected(fleet, treadmill) as session:
                    await run_belt(session, 3.0)
                    write_failed = False
                    try:
                        await session.write_raw(encode_control_request(StopOrPause(kind)))
                    except BleakError:
                        write_failed = True
                    await session.disconnected.wait()
                    await asyncio.sleep(5.0)
                    answers = drain(session.responses)
                # After reconnecting, the belt is still at its target.
                async with connected(fleet, treadmill) as session:
                    after_reconnect = max(speeds(await watch_belt(session, clock, 1.0)))
                    # Cleared while the deck runs: Stop works again.
                    treadmill.faults.drops_link_on_stop = False
                    await session.take_control()
                    await session.send(StopOrPause(StopKind.STOP))
                    stopped = await belt_reaches(session, lambda speed: speed == 0.0)
        return write_failed, answers, requests, after_reconnect, stopped

    write_failed, answers, requests, after_reconnect, stopped = run_in_virtual_time(scenario)
    assert write_failed  # the link was gone before the write was acknowledged
    assert answers == []
    assert StopOrPause(kind) in requests  # it did reach the deck
    assert after_reconnect == pytest.approx(3.0)
    assert stopped == 0.0


# -- response_delay_s, with the other behaviours ------------------------------------------


def test_a_late_stop_takes_effect_only_when_answered() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float, list[float], float]:
        await run_belt(session, 3.0)
        treadmill.faults.response_delay_s = 2.0
        written_at = clock.now()
        await session.write_raw(encode_control_request(StopOrPause(StopKind.STOP)))
        waiting = speeds(await watch_belt(session, clock, 1.9))
        answer = await session.responses.get()
        assert answer.result is ResultCode.SUCCESS
        answered_after = clock.now() - written_at
        standing = await belt_reaches(session, lambda speed: speed == 0.0)
        return answered_after, waiting, standing

    answered_after, waiting, standing = in_virtual_time(deck(), body)
    assert answered_after >= 2.0
    assert min(waiting) == pytest.approx(3.0)
    assert standing == 0.0


def test_a_late_refusal_is_still_a_refusal() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float, ResultCode, list[float]]:
        await run_belt(session, 3.0)
        written_at = clock.now()
        answer = await session.send(StopOrPause(StopKind.STOP))
        answered_after = clock.now() - written_at
        return answered_after, answer.result, speeds(await watch_belt(session, clock, 3.0))

    answered_after, result, running = in_virtual_time(
        deck(response_delay_s=2.0, refuses_stop=ResultCode.CONTROL_NOT_PERMITTED), body
    )
    assert answered_after >= 2.0
    assert result is ResultCode.CONTROL_NOT_PERMITTED
    assert min(running) == pytest.approx(3.0)


def test_a_link_drop_on_stop_does_not_wait_for_the_response_delay() -> None:
    async def body(treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock) -> float:
        await session.take_control()
        written_at = clock.now()
        with pytest.raises(BleakError):
            await session.write_raw(encode_control_request(StopOrPause(StopKind.STOP)))
        await session.disconnected.wait()
        return clock.now() - written_at

    # (take_control itself waits the delay; the drop must not.)
    dropped_after = in_virtual_time(deck(response_delay_s=5.0, drops_link_on_stop=True), body)
    assert dropped_after < 1.0


# -- echo_target_while_decelerating ------------------------------------------------------


async def echoes_until(
    session: FtmsSession, clock: Clock, goal_kmh: float
) -> list[tuple[float, MachineStatus]]:
    """Machine Status with arrival times, up to Target Speed Changed carrying `goal_kmh`."""
    seen: list[tuple[float, MachineStatus]] = []
    while True:
        status = await session.statuses.get()
        seen.append((clock.now(), status))
        if status == TargetSpeedChanged(goal_kmh):
            return seen


@pytest.mark.parametrize(
    ("slow_down", "goal_kmh", "expected_echoes"),
    [
        (StopOrPause(StopKind.STOP), 0.0, 10),  # 3 km/h at 1 km/h/s: 3 s, one echo per 0.3 s
        (StopOrPause(StopKind.PAUSE), 0.0, 10),
        (SetTargetSpeed(1.5), 1.5, 5),
    ],
)
def test_target_speed_changed_follows_the_belt_down_like_the_urevo_e1l(
    slow_down: ControlRequest, goal_kmh: float, expected_echoes: int
) -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[float, list[tuple[float, MachineStatus]]]:
        await run_belt(session, 3.0)
        drain(session.statuses)
        assert (await session.send(slow_down)).result is ResultCode.SUCCESS
        began = clock.now()
        return began, await echoes_until(session, clock, goal_kmh)

    began, echoes = in_virtual_time(deck(echo_target_while_decelerating=True), body)
    statuses = [status for _, status in echoes]
    assert all(isinstance(status, TargetSpeedChanged) for status in statuses)
    echoed = [status.speed_kmh for status in statuses if isinstance(status, TargetSpeedChanged)]
    assert echoed == sorted(echoed, reverse=True)
    assert len(set(echoed)) == len(echoed)
    assert echoed[0] == pytest.approx(2.7, abs=0.02)  # the measured speed, not the target
    assert len(echoes) == expected_echoes
    times = [began] + [at for at, _ in echoes]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap == pytest.approx(0.3, abs=0.05) for gap in gaps)


def test_the_default_deck_does_not_echo_while_decelerating() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> tuple[list[float], list[MachineStatus]]:
        await run_belt(session, 3.0)
        drain(session.statuses)
        assert (await session.send(StopOrPause(StopKind.STOP))).result is ResultCode.SUCCESS
        return speeds(await watch_belt(session, clock, 5.0)), drain(session.statuses)

    slowing, statuses = in_virtual_time(deck(), body)
    assert slowing[-1] == 0.0
    assert statuses == []


def test_echoes_also_follow_a_console_stop_on_a_deck_that_reports_no_console_status() -> None:
    async def body(
        treadmill: SimulatedTreadmill, session: FtmsSession, clock: Clock
    ) -> list[tuple[float, MachineStatus]]:
        await run_belt(session, 3.0)
        drain(session.statuses)
        treadmill.model.press_stop()
        return await echoes_until(session, clock, 0.0)

    echoes = in_virtual_time(
        deck(echo_target_while_decelerating=True, report_console_status=False), body
    )
    # Only echoes: no Stopped by User (0x02), no Control Permission Lost (0xFF).
    assert all(isinstance(status, TargetSpeedChanged) for _, status in echoes)


async def test_echoes_follow_the_belt_in_real_time(fleet: SimulatedFleet) -> None:
    # Fast motors keep the real-time wait short: 3 km/h down at 5 km/h/s is 0.6 s.
    treadmill = await fleet.add(
        deck(
            echo_target_while_decelerating=True,
            acceleration_kmh_per_s=10.0,
            deceleration_kmh_per_s=5.0,
        )
    )
    async with asyncio.timeout(TEST_TIMEOUT_S), connected(fleet, treadmill) as session:
        await run_belt(session, 3.0)
        drain(session.statuses)
        assert (await session.send(StopOrPause(StopKind.STOP))).result is ResultCode.SUCCESS
        echoes = await echoes_until(session, fleet.clock, 0.0)
    echoed = [status.speed_kmh for _, status in echoes if isinstance(status, TargetSpeedChanged)]
    assert len(echoed) == len(echoes)
    assert 1 <= len(echoed) <= 3
    assert echoed == sorted(echoed, reverse=True)
    assert treadmill.model.running_state is RunningState.STOPPED


# -- the daemon's `simulated = {...}` table carries every behaviour -------------------------


def test_the_daemons_simulated_table_reaches_every_deck_behaviour() -> None:
    from treadmilld.app.settings import TreadmillSettings
    from treadmilld.app.simulation import simulated_config

    table = {
        "report_console_status": False,
        "deceleration_kmh_per_s": 0.25,
        "resume_at_last_target": True,
        "initial_incline_pct": 12.0,
        "ignores_speed_commands": True,
        "starts_on_connect": True,
        "starts_on_connect_kmh": 1.5,
        "refuses_stop": "operation_failed",
        "refuses_pause": 5,
        "drops_link_on_stop": True,
        "response_delay_s": 2.5,
        "echo_target_while_decelerating": True,
    }
    config = simulated_config(0, TreadmillSettings(id="tm01", simulated=table))
    expected = {**table, "refuses_stop": ResultCode.OPERATION_FAILED, "refuses_pause": 5}
    assert {field: getattr(config, field) for field in table} == expected


def test_every_deck_behaviour_starts_as_a_fault_a_test_can_flip() -> None:
    from treadmilld_sim import TreadmillFaults

    config = SimulatedTreadmillConfig(
        report_console_status=False,
        deceleration_kmh_per_s=0.25,
        resume_at_last_target=True,
        ignores_speed_commands=True,
        starts_on_connect=True,
        starts_on_connect_kmh=1.5,
        refuses_stop=ResultCode.OPERATION_FAILED,
        refuses_pause=ResultCode.CONTROL_NOT_PERMITTED,
        drops_link_on_stop=True,
        echo_target_while_decelerating=True,
    )
    faults = TreadmillFaults.from_config(config)
    flippable = (
        "report_console_status",
        "deceleration_kmh_per_s",
        "resume_at_last_target",
        "ignores_speed_commands",
        "starts_on_connect",
        "starts_on_connect_kmh",
        "refuses_stop",
        "refuses_pause",
        "drops_link_on_stop",
        "echo_target_while_decelerating",
    )
    assert {name: getattr(faults, name) for name in flippable} == {
        name: getattr(config, name) for name in flippable
    }
