"""The safety governor on its own, over an obedient test treadmill."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from treadmilld.ble.api import TelemetryReceived
from treadmilld.engine.api import Direction
from treadmilld.engine.governor import GovernorRefusedError, LimitNotice, SafetyGovernor
from treadmilld.engine.limits import LimitSet, SafetyLimits, effective_limits
from treadmilld.runtime.clock import LoopClock

from .doubles import ObedientTreadmill


@contextlib.asynccontextmanager
async def armed(
    limits: SafetyLimits | None = None,
    *,
    clinical: bool = False,
    make: Callable[[LoopClock], ObedientTreadmill] = ObedientTreadmill,
) -> AsyncIterator[tuple[SafetyGovernor, ObedientTreadmill, list[LimitNotice]]]:
    """An armed governor over a running test treadmill whose records feed the governor's
    belt observer (as the session does), with the belt measured standing to begin with."""
    clock = LoopClock()
    treadmill = make(clock)
    notices: list[LimitNotice] = []
    governor = SafetyGovernor(treadmill, clock, on_limit=notices.append)
    governor.arm(effective_limits(limits or SafetyLimits(), clinical=clinical))
    async with fed(governor, treadmill):
        assert await governor.observer.wait_standing(5.0)
        yield governor, treadmill, notices


@contextlib.asynccontextmanager
async def fed(governor: SafetyGovernor, treadmill: ObedientTreadmill) -> AsyncIterator[None]:
    events = treadmill.events()

    async def feed() -> None:
        async for event in events:
            if isinstance(event, TelemetryReceived):
                data = event.telemetry.data
                governor.observer.on_record(
                    data.instantaneous_speed_kmh, data.inclination_pct, event.at
                )

    tasks = [asyncio.create_task(treadmill.run()), asyncio.create_task(feed())]
    await asyncio.sleep(0)
    try:
        yield
    finally:
        await treadmill.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def speeds(treadmill: ObedientTreadmill) -> list[float | None]:
    return [w.value for w in treadmill.writes if w.kind == "speed"]


async def test_nothing_moves_before_it_is_armed() -> None:
    clock = LoopClock()
    treadmill = ObedientTreadmill(clock)
    treadmill.connect()
    governor = SafetyGovernor(treadmill, clock)
    with pytest.raises(GovernorRefusedError) as refused:
        await governor.start_belt(Direction.FORWARD)
    assert refused.value.limit == "locked_out"
    assert treadmill.writes == []


async def test_the_belt_starts_at_the_restart_speed() -> None:
    async with armed() as (governor, treadmill, _):
        assert await governor.start_belt(Direction.FORWARD) == 1.0
        # The restart speed reaches the deck before Start: a deck that resumes at its last
        # target starts slowly.
        assert [w.kind for w in treadmill.writes] == ["speed", "start"]
        assert speeds(treadmill) == [1.0]


async def test_speed_is_capped_for_the_way_the_user_faces() -> None:
    async with armed() as (governor, treadmill, notices):
        await governor.start_belt(Direction.BACKWARD)
        for _ in range(20):
            await asyncio.sleep(1.0)
            await governor.set_speed(9.0)
        assert max(v or 0 for v in speeds(treadmill)) == 5.0
        assert LimitNotice("max_backward_speed_kmh", 9.0, 5.0) in notices


async def test_each_write_keeps_the_ramp_rate() -> None:
    async with armed() as (governor, _, _):
        await governor.start_belt(Direction.FORWARD)
        await asyncio.sleep(1.0)
        assert await governor.set_speed(5.0) == 1.5
        await asyncio.sleep(0.4)
        assert await governor.set_speed(5.0) == 1.7
        await asyncio.sleep(600)  # a long steady spell does not license a jump
        assert await governor.set_speed(5.0) == 2.2
        await asyncio.sleep(1.0)
        assert await governor.set_speed(0.5) == 1.7  # down is ramped too


async def wait_standing_for(governor: SafetyGovernor, seconds: float) -> None:
    assert await governor.observer.wait_standing(120.0, for_s=seconds)


async def test_a_turn_needs_the_belt_measured_standing_for_the_turn_time() -> None:
    async with armed() as (governor, treadmill, _):
        await governor.start_belt(Direction.FORWARD)
        for _ in range(6):
            await asyncio.sleep(1.0)
            await governor.set_speed(3.0)
        with pytest.raises(GovernorRefusedError):
            await governor.start_belt(Direction.BACKWARD)  # still moving
        await governor.pause_belt()
        paused_at = governor.observer.last_record_at
        await asyncio.sleep(10.0)
        # Ten seconds after the Pause was acknowledged the belt has not *stood* ten seconds:
        # the deck needed time to slow down, and standing counts from measured standstill.
        assert governor.standing_for_s() < 10.0
        with pytest.raises(GovernorRefusedError) as early:
            await governor.start_belt(Direction.BACKWARD)
        assert early.value.limit == "turn_pause_s"
        assert early.value.seconds_left is not None
        assert 0 < early.value.seconds_left <= 10.0
        await wait_standing_for(governor, 10.0)
        assert paused_at is not None
        await governor.start_belt(Direction.BACKWARD)
        assert governor.facing is Direction.BACKWARD
        assert [w.kind for w in treadmill.writes].count("start") == 2


async def test_clinical_turns_need_twenty_seconds_of_measured_standstill() -> None:
    async with armed(clinical=True) as (governor, _, _):
        await governor.start_belt(Direction.FORWARD)
        await governor.pause_belt()
        await wait_standing_for(governor, 15.0)
        with pytest.raises(GovernorRefusedError):
            await governor.start_belt(Direction.BACKWARD)
        await wait_standing_for(governor, 20.0)
        await governor.start_belt(Direction.BACKWARD)


async def test_the_direction_last_walked_outlives_the_workout() -> None:
    """After an abort while walking forward, a new workout that starts backward still needs
    the full turn: the governor remembers the last direction across arm()."""
    async with armed() as (governor, _, _):
        await governor.start_belt(Direction.FORWARD)
        await governor.emergency_stop("test")
        limits = governor.limits
        assert limits is not None
        governor.arm(limits)
        await wait_standing_for(governor, 2.0)
        with pytest.raises(GovernorRefusedError) as refused:
            await governor.start_belt(Direction.BACKWARD)
        assert refused.value.limit == "turn_pause_s"
        await wait_standing_for(governor, 10.0)
        await governor.start_belt(Direction.BACKWARD)


async def test_a_pause_from_speed_lowers_the_target_first() -> None:
    async with armed() as (governor, treadmill, notices):
        await governor.start_belt(Direction.FORWARD)
        for _ in range(6):
            await asyncio.sleep(1.0)
            await governor.set_speed(4.0)
        await governor.pause_belt()
        assert [w.kind for w in treadmill.writes][-2:] == ["speed", "pause"]
        assert speeds(treadmill)[-1] == 1.0
        assert notices[-1].limit == "restart_speed_kmh"


async def test_backward_incline_is_capped_and_lowered_before_a_restart() -> None:
    async with armed() as (governor, treadmill, _):
        await governor.start_belt(Direction.FORWARD)
        assert await governor.set_incline(12.0) == 12.0
        await governor.pause_belt()
        await wait_standing_for(governor, 10.0)
        await governor.start_belt(Direction.BACKWARD)
        inclines = [w.value for w in treadmill.writes if w.kind == "incline"]
        assert inclines == [12.0, 5.0]  # lowered to the turn maximum before the belt moved
        assert await governor.set_incline(14.0) == 10.0


async def test_the_backward_budget_stops_new_backward_walking() -> None:
    async with armed(SafetyLimits(general=LimitSet(max_backward_s=30.0))) as (governor, _, _):
        await governor.start_belt(Direction.BACKWARD)
        await asyncio.sleep(30.0)
        await governor.pause_belt()
        assert governor.backward_remaining_s() == 0.0
        with pytest.raises(GovernorRefusedError) as refused:
            await governor.start_belt(Direction.BACKWARD)
        assert refused.value.limit == "max_backward_s"


async def test_after_an_emergency_stop_only_a_new_arm_moves_the_belt() -> None:
    async with armed() as (governor, treadmill, _):
        await governor.start_belt(Direction.FORWARD)
        assert await governor.emergency_stop("test")
        assert treadmill.writes[-1].kind == "stop"
        with pytest.raises(GovernorRefusedError):
            await governor.start_belt(Direction.FORWARD)
        with pytest.raises(GovernorRefusedError):
            await governor.set_speed(2.0)
        await governor.stop_belt()  # stopping is always allowed
        limits = governor.limits
        assert limits is not None
        governor.arm(limits)
        await wait_standing_for(governor, 0.0)
        await governor.start_belt(Direction.FORWARD)


async def test_an_emergency_stop_on_a_dead_link_does_not_raise() -> None:
    async with armed() as (governor, treadmill, _):
        await treadmill.close()
        await governor.emergency_stop("test")
        assert governor.locked_out == "test"


async def test_after_turn_now_either_direction_needs_the_full_turn_time() -> None:
    """An abort after "turn now": the person may already face the other way, so even the
    direction they last walked needs the full turn time standing."""
    async with armed() as (governor, _, _):
        await governor.start_belt(Direction.FORWARD)
        await governor.pause_belt()
        await wait_standing_for(governor, 1.0)
        governor.turn_announced(Direction.BACKWARD)
        governor.lock_out("emergency_stop")
        limits = governor.limits
        assert limits is not None
        governor.arm(limits)
        with pytest.raises(GovernorRefusedError) as refused:
            await governor.start_belt(Direction.FORWARD)
        assert refused.value.limit == "turn_pause_s"
        await wait_standing_for(governor, 10.0)
        await governor.start_belt(Direction.FORWARD)
