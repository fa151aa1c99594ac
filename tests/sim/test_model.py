"""The treadmill model on its own: physics against an injected clock, console, FTMS rules."""

from __future__ import annotations

import asyncio

import pytest
from treadmilld_sim import RunningState, SimulatedTreadmillConfig, TreadmillModel

from treadmilld.ftms import (
    ControlPermissionLost,
    MachineStatus,
    RequestControl,
    Reset,
    ResultCode,
    SetTargetedDistance,
    SetTargetInclination,
    SetTargetSpeed,
    StartedOrResumedByUser,
    StartOrResume,
    StopKind,
    StopOrPause,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetSpeedChanged,
    TrainingStatus,
    TrainingStatusCode,
)
from treadmilld.runtime.clock import LoopClock, ScaledClock

from .session import run_in_virtual_time


class SteppedClock:
    """A Clock whose time only moves when the test says so."""

    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.time += seconds


def make_model(**overrides: object) -> tuple[TreadmillModel, SteppedClock, list[MachineStatus]]:
    clock = SteppedClock()
    model = TreadmillModel(SimulatedTreadmillConfig.model_validate(overrides), clock)
    statuses: list[MachineStatus] = []
    model.add_status_listener(statuses.append)
    return model, clock, statuses


def running_model(speed_kmh: float = 4.0) -> tuple[TreadmillModel, SteppedClock]:
    model, clock, _ = make_model()
    assert model.apply_control_request(RequestControl()) is ResultCode.SUCCESS
    assert model.apply_control_request(SetTargetSpeed(speed_kmh)) is ResultCode.SUCCESS
    assert model.apply_control_request(StartOrResume()) is ResultCode.SUCCESS
    return model, clock


def test_belt_ramps_to_target_at_the_configured_acceleration() -> None:
    model, clock = running_model(4.0)
    clock.advance(1.0)
    assert model.belt_speed_kmh == pytest.approx(1.0)
    clock.advance(2.0)
    assert model.belt_speed_kmh == pytest.approx(3.0)
    clock.advance(5.0)
    assert model.belt_speed_kmh == pytest.approx(4.0)


def test_distance_comes_from_the_real_belt_not_the_target() -> None:
    model, clock = running_model(4.0)
    clock.advance(4.0)  # ramp 0 -> 4 km/h: average 2 km/h for 4 s
    assert model.distance_m == pytest.approx(2.0 / 3.6 * 4.0)
    clock.advance(36.0)  # then 36 s at 4 km/h = 40 m
    assert model.distance_m == pytest.approx(2.0 / 3.6 * 4.0 + 40.0)
    assert model.elapsed_s == pytest.approx(40.0)


def test_energy_grows_with_incline() -> None:
    flat, flat_clock = running_model(5.0)
    hill, hill_clock = running_model(5.0)
    assert hill.apply_control_request(SetTargetInclination(10.0)) is ResultCode.SUCCESS
    flat_clock.advance(600.0)
    hill_clock.advance(600.0)
    assert flat.energy_kcal > 0
    assert hill.energy_kcal > flat.energy_kcal * 1.5


def test_incline_moves_at_its_motor_rate() -> None:
    model, clock = running_model()
    assert model.apply_control_request(SetTargetInclination(5.0)) is ResultCode.SUCCESS
    clock.advance(4.0)
    assert model.incline_pct == pytest.approx(2.0)
    clock.advance(20.0)
    assert model.incline_pct == pytest.approx(5.0)
    assert model.target_incline_pct == 5.0


def test_stop_ramps_the_belt_down_and_freezes_elapsed_time() -> None:
    model, clock = running_model(4.0)
    clock.advance(10.0)
    assert model.apply_control_request(StopOrPause(StopKind.STOP)) is ResultCode.SUCCESS
    clock.advance(2.0)
    assert model.belt_speed_kmh == pytest.approx(2.0)
    clock.advance(10.0)
    assert model.belt_speed_kmh == 0.0
    assert model.elapsed_s == pytest.approx(10.0)
    assert model.running_state is RunningState.STOPPED


def test_everything_but_request_control_needs_permission() -> None:
    model, _, _ = make_model()
    for request in (Reset(), SetTargetSpeed(3.0), StartOrResume(), StopOrPause(StopKind.STOP)):
        assert model.apply_control_request(request) is ResultCode.CONTROL_NOT_PERMITTED
    assert model.running_state is RunningState.IDLE
    assert model.target_speed_kmh == 0.0


def test_result_codes_for_bad_values_and_wrong_states() -> None:
    model, _, _ = make_model()
    assert model.apply_control_request(RequestControl()) is ResultCode.SUCCESS
    assert model.apply_control_request(SetTargetSpeed(16.5)) is ResultCode.INVALID_PARAMETER
    assert model.apply_control_request(SetTargetSpeed(0.2)) is ResultCode.INVALID_PARAMETER
    assert model.apply_control_request(SetTargetInclination(-1.0)) is ResultCode.INVALID_PARAMETER
    assert model.apply_control_request(StopOrPause(StopKind.STOP)) is ResultCode.OPERATION_FAILED
    assert model.apply_control_request(StopOrPause(StopKind.PAUSE)) is ResultCode.OPERATION_FAILED
    assert model.apply_control_request(StartOrResume()) is ResultCode.SUCCESS
    assert model.apply_control_request(StartOrResume()) is ResultCode.OPERATION_FAILED
    assert model.apply_control_request(SetTargetedDistance(1000)) is ResultCode.NOT_SUPPORTED
    assert model.target_speed_kmh == 0.5  # Start from rest runs at the minimum speed


def test_reset_stops_zeroes_and_drops_control() -> None:
    model, clock = running_model(4.0)
    clock.advance(30.0)
    assert model.apply_control_request(Reset()) is ResultCode.SUCCESS
    assert model.running_state is RunningState.IDLE
    assert model.target_speed_kmh == 0.0
    assert model.elapsed_s == 0.0
    assert not model.control_granted
    assert model.apply_control_request(StartOrResume()) is ResultCode.CONTROL_NOT_PERMITTED


def test_console_actions_raise_statuses_and_take_control_away() -> None:
    model, _, statuses = make_model()
    assert model.apply_control_request(RequestControl()) is ResultCode.SUCCESS
    assert model.press_start()
    assert statuses == [StartedOrResumedByUser(), ControlPermissionLost()]
    assert not model.control_granted
    statuses.clear()
    model.set_speed_at_console(3.04)
    model.press_pause()
    model.press_stop()
    assert statuses == [
        TargetSpeedChanged(3.0),
        StoppedOrPausedByUser(StopKind.PAUSE),
        StoppedOrPausedByUser(StopKind.STOP),
    ]


def test_safety_key_stops_the_belt_at_once_and_blocks_start() -> None:
    model, clock = running_model(4.0)
    clock.advance(10.0)
    statuses: list[MachineStatus] = []
    model.add_status_listener(statuses.append)
    model.pull_safety_key()
    assert model.belt_speed_kmh == 0.0
    assert statuses == [StoppedBySafetyKey()]
    assert model.apply_control_request(StartOrResume()) is ResultCode.OPERATION_FAILED
    assert not model.press_start()
    model.insert_safety_key()
    assert model.running_state is RunningState.STOPPED  # never restarts by itself
    assert model.apply_control_request(StartOrResume()) is ResultCode.SUCCESS


def test_training_status_follows_the_belt() -> None:
    model, _, _ = make_model()
    seen: list[TrainingStatus] = []
    model.add_training_status_listener(seen.append)
    assert model.training_status.code is TrainingStatusCode.IDLE
    model.press_start()
    model.press_stop()
    assert [s.code for s in seen] == [
        TrainingStatusCode.MANUAL_MODE,
        TrainingStatusCode.POST_WORKOUT,
    ]


def test_quirk_require_start_before_speed() -> None:
    model, _, _ = make_model(require_start_before_speed=True)
    model.apply_control_request(RequestControl())
    assert model.apply_control_request(SetTargetSpeed(3.0)) is ResultCode.OPERATION_FAILED
    model.apply_control_request(StartOrResume())
    assert model.apply_control_request(SetTargetSpeed(3.0)) is ResultCode.SUCCESS


def test_quirk_start_while_running_stops_the_belt() -> None:
    model, _, _ = make_model(start_while_running_stops=True)
    model.apply_control_request(RequestControl())
    model.apply_control_request(StartOrResume())
    assert model.apply_control_request(StartOrResume()) is ResultCode.SUCCESS
    assert model.running_state is RunningState.STOPPED


def test_quirk_speed_in_mph() -> None:
    model, clock, _ = make_model(speed_in_mph=True)
    model.apply_control_request(RequestControl())
    assert model.apply_control_request(SetTargetSpeed(3.0)) is ResultCode.SUCCESS
    model.apply_control_request(StartOrResume())
    clock.advance(30.0)
    assert model.belt_speed_kmh == pytest.approx(4.8)  # 3 mph, snapped to the 0.1 km/h step
    assert model.apply_control_request(SetTargetSpeed(12.0)) is ResultCode.INVALID_PARAMETER


def test_a_45_minute_session_runs_in_virtual_time() -> None:
    async def session() -> tuple[float, float]:
        model = TreadmillModel(SimulatedTreadmillConfig(), LoopClock())
        model.apply_control_request(RequestControl())
        model.apply_control_request(SetTargetSpeed(3.0))
        model.apply_control_request(StartOrResume())
        await asyncio.sleep(45 * 60)
        return model.elapsed_s, model.distance_m

    elapsed, distance = run_in_virtual_time(session)
    assert elapsed == pytest.approx(45 * 60, abs=0.01)
    # 45 min at 3 km/h = 2250 m, less the 3 s ramp (1.5 km/h average).
    assert distance == pytest.approx(2250 - 1.5 / 3.6 * 3, abs=0.1)


async def test_model_follows_a_scaled_clock() -> None:
    # 1000x: 50 ms of wall time is at least 50 s on the treadmill, far more than the 3 s ramp.
    model = TreadmillModel(SimulatedTreadmillConfig(), ScaledClock(1000.0))
    model.apply_control_request(RequestControl())
    model.apply_control_request(SetTargetSpeed(3.0))
    model.apply_control_request(StartOrResume())
    await asyncio.sleep(0.05)
    assert model.belt_speed_kmh == 3.0
    assert model.elapsed_s >= 50.0
