"""End to end in virtual time: WorkoutSession -> the real BleTreadmillLink (real bleak client)
-> the simulated treadmill on Bumble. A 45-minute profile runs in seconds of wall time."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from treadmilld_sim import RunningState, SimulatedTreadmillConfig

from treadmilld.engine.api import AbortReason, Phase, WorkoutAborted
from treadmilld.engine.planner import WorkoutPlan
from treadmilld.ftms import SetTargetSpeed, StartOrResume

from .sim_rig import sim_rig


def planned_speed(plan: WorkoutPlan, t: float) -> float:
    for segment in plan.segments:
        for step in segment.steps:
            if step.start_s <= t < step.end_s:
                fraction = (t - step.start_s) / step.duration_s
                return step.from_speed_kmh + (step.speed_kmh - step.from_speed_kmh) * fraction
    return 0.0


async def test_a_45_minute_profile_runs_through_the_real_client_and_the_belt_follows() -> None:
    async with sim_rig(SimulatedTreadmillConfig(name="SIM-E2E-WALK"), sample_belt=False) as rig:
        clock = rig.fleet.clock
        await rig.session.start_profile("forward-walk")
        # Plan time starts with the first segment: once the belt is measured standing.
        first = await rig.wait_for("segment_started")
        started = first.at
        plan = rig.session.plan
        assert plan is not None
        trace: list[tuple[float, float]] = []

        async def sample() -> None:
            while True:
                await asyncio.sleep(5.0)
                trace.append((clock.now() - started, rig.deck.model.belt_speed_kmh))

        sampler = asyncio.create_task(sample())
        finished = await rig.wait_for("workout_finished")
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        assert finished.at - started == pytest.approx(2700.0, abs=15.0)
        # The measured belt follows the plan (the simulated deck accelerates at 1 km/h per s,
        # and each write takes a BLE round trip, so allow a little lag).
        errors = [abs(speed - planned_speed(plan, t)) for t, speed in trace if t < plan.total_s]
        assert len(errors) > 500
        assert max(errors) <= 0.75
        assert sorted(errors)[len(errors) // 2] <= 0.1
        snapshot = rig.session.snapshot()
        assert snapshot.phase is Phase.FINISHED
        assert snapshot.distance_forward_m == pytest.approx(3500.0, rel=0.03)
        assert rig.deck.model.running_state is not RunningState.RUNNING


async def test_the_safety_key_aborts_the_profile_and_the_belt_stays_stopped() -> None:
    async with sim_rig(SimulatedTreadmillConfig(name="SIM-E2E-KEY"), sample_belt=False) as rig:
        clock = rig.fleet.clock
        await rig.session.start_profile("p2-retro-core")
        # 300 s in: three minutes of forward walking are done, the user walks backward.
        await asyncio.sleep(300.0)
        assert rig.deck.model.belt_speed_kmh > 2.0
        requests: list[object] = []
        rig.deck.add_control_listener(lambda request, _at: requests.append(request))
        rig.deck.model.pull_safety_key()
        aborted = await rig.wait_for("workout_aborted")
        assert isinstance(aborted, WorkoutAborted)
        assert aborted.reason is AbortReason.SAFETY_KEY
        pulled_at = clock.now()
        rig.deck.model.insert_safety_key()  # even with the key back, nothing restarts
        await asyncio.sleep(1800.0)
        assert rig.deck.model.belt_speed_kmh == 0.0
        assert rig.deck.model.running_state is not RunningState.RUNNING
        assert not [r for r in requests if isinstance(r, StartOrResume | SetTargetSpeed)]
        assert rig.session.snapshot().phase is Phase.ABORTED
        assert clock.now() - pulled_at >= 1800.0
