"""The treadmill itself, without any radio: motors, counters, console and FTMS semantics.

`TreadmillModel` is driven by an injected `Clock`: every read brings the physics up to
`clock.now()` exactly (the belt ramps linearly at the configured acceleration, so distance
is integrated in closed form), which makes it correct under real, scaled and virtual time
without a tick task. The GATT server (`treadmilld_sim.server`) only translates bytes, with the
daemon's codec, to and from the calls here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

import structlog

from treadmilld.clock import Clock
from treadmilld.ftms import (
    ControlPermissionLost,
    ControlRequest,
    FitnessMachineFeature,
    InclinationRange,
    MachineFeatures,
    MachineStatus,
    RequestControl,
    Reset,
    ResultCode,
    SetTargetedDistance,
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
    TrainingStatus,
    TrainingStatusCode,
    TreadmillData,
)
from treadmilld_sim.config import SimulatedTreadmillConfig, TreadmillFaults

log = structlog.get_logger()

KMH_PER_MPH = 1.609344
# Stride length used to turn distance into the step count some decks report (bit 13).
STRIDE_LENGTH_M = 0.7
# ACSM walking equation (ACSM's Guidelines for Exercise Testing, ch. 7): VO2 in ml/kg/min =
# 3.5 (rest) + 0.1 * speed (m/min) + 1.8 * speed * grade; 1 l O2 ~ 5 kcal.
_ACSM_REST = 3.5
_ACSM_HORIZONTAL = 0.1
_ACSM_VERTICAL = 1.8
_KCAL_PER_LITRE_O2 = 5.0
# Values within this of a range limit count as inside it (the wire carries 0.01 km/h, 0.1 %).
_EPSILON = 1e-6


class RunningState(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


_TRAINING_STATUS = {
    RunningState.IDLE: TrainingStatusCode.IDLE,
    RunningState.RUNNING: TrainingStatusCode.MANUAL_MODE,
    RunningState.PAUSED: TrainingStatusCode.OTHER,
    RunningState.STOPPED: TrainingStatusCode.POST_WORKOUT,
}

StatusListener = Callable[[MachineStatus], None]
TrainingStatusListener = Callable[[TrainingStatus], None]


def _ramp(current: float, goal: float, rate: float, dt: float) -> tuple[float, float]:
    """Move `current` toward `goal` at `rate` per second for `dt` s; return (end, integral)."""
    gap = goal - current
    time_to_goal = abs(gap) / rate
    if time_to_goal <= dt:
        return goal, (current + goal) / 2 * time_to_goal + goal * (dt - time_to_goal)
    end = current + math.copysign(rate * dt, gap)
    return end, (current + end) / 2 * dt


def _snap(value: float, minimum: float, increment: float) -> float:
    """Round to the nearest step of the supported range, as a deck's controller does."""
    steps = round((value - minimum) / increment)
    return round(minimum + steps * increment, 2)


class TreadmillModel:
    """One treadmill deck: state is always current when read."""

    def __init__(
        self,
        config: SimulatedTreadmillConfig,
        clock: Clock,
        faults: TreadmillFaults | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.faults = faults if faults is not None else TreadmillFaults.from_config(config)
        self._last_update = clock.now()
        self._state = RunningState.IDLE
        self._belt_kmh = 0.0
        self._target_speed_kmh = 0.0
        self._incline_pct = 0.0
        self._target_incline_pct = 0.0
        self._distance_m = 0.0
        self._elapsed_s = 0.0
        self._energy_kcal = 0.0
        self._safety_key_in = True
        self._control_granted = False
        self._status_listeners: list[StatusListener] = []
        self._training_listeners: list[TrainingStatusListener] = []

    # -- listeners ----------------------------------------------------------------------------

    def add_status_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Hear every Machine Status the treadmill raises; returns an unsubscribe function."""
        self._status_listeners.append(listener)
        return lambda: self._status_listeners.remove(listener)

    def add_training_status_listener(self, listener: TrainingStatusListener) -> Callable[[], None]:
        self._training_listeners.append(listener)
        return lambda: self._training_listeners.remove(listener)

    def _emit(self, status: MachineStatus) -> None:
        log.debug("sim_machine_status", treadmill=self.config.name, status=repr(status))
        for listener in list(self._status_listeners):
            listener(status)

    # -- state (always brought up to date first) --------------------------------------------

    @property
    def running_state(self) -> RunningState:
        return self._state

    @property
    def belt_speed_kmh(self) -> float:
        self._update()
        return self._belt_kmh

    @property
    def target_speed_kmh(self) -> float:
        return self._target_speed_kmh

    @property
    def incline_pct(self) -> float:
        self._update()
        return self._incline_pct

    @property
    def target_incline_pct(self) -> float:
        return self._target_incline_pct

    @property
    def distance_m(self) -> float:
        self._update()
        return self._distance_m

    @property
    def elapsed_s(self) -> float:
        self._update()
        return self._elapsed_s

    @property
    def energy_kcal(self) -> float:
        self._update()
        return self._energy_kcal

    @property
    def steps(self) -> int:
        return int(self.distance_m / STRIDE_LENGTH_M)

    @property
    def safety_key_in(self) -> bool:
        return self._safety_key_in

    @property
    def control_granted(self) -> bool:
        return self._control_granted

    @property
    def training_status(self) -> TrainingStatus:
        return TrainingStatus(status=_TRAINING_STATUS[self._state])

    @property
    def speed_range(self) -> SpeedRange:
        c = self.config
        return SpeedRange(c.min_speed_kmh, c.max_speed_kmh, c.speed_increment_kmh)

    @property
    def inclination_range(self) -> InclinationRange:
        c = self.config
        return InclinationRange(c.min_incline_pct, c.max_incline_pct, c.incline_increment_pct)

    @property
    def feature(self) -> FitnessMachineFeature:
        machine = (
            MachineFeatures.TOTAL_DISTANCE
            | MachineFeatures.INCLINATION
            | MachineFeatures.EXPENDED_ENERGY
            | MachineFeatures.ELAPSED_TIME
        )
        if self.faults.report_step_count:
            machine |= MachineFeatures.STEP_COUNT
        return FitnessMachineFeature(
            machine=machine,
            target_settings=TargetSettingFeatures.SPEED | TargetSettingFeatures.INCLINATION,
        )

    def treadmill_data(self) -> TreadmillData:
        """The record a Treadmill Data notification carries right now."""
        self._update()
        incline = round(self._incline_pct, 1)
        return TreadmillData(
            instantaneous_speed_kmh=round(self._belt_kmh, 2),
            total_distance_m=int(self._distance_m),
            inclination_pct=incline,
            ramp_angle_deg=round(math.degrees(math.atan(incline / 100)), 1),
            total_energy_kcal=int(self._energy_kcal),
            energy_per_hour_kcal=int(self._energy_rate_kcal_per_s(self._belt_kmh, incline) * 3600),
            energy_per_minute_kcal=int(self._energy_rate_kcal_per_s(self._belt_kmh, incline) * 60),
            elapsed_time_s=int(self._elapsed_s),
            step_count=self.steps if self.faults.report_step_count else None,
        )

    # -- physics ------------------------------------------------------------------------------

    def _belt_goal(self) -> float:
        return self._target_speed_kmh if self._state is RunningState.RUNNING else 0.0

    def _energy_rate_kcal_per_s(self, speed_kmh: float, incline_pct: float) -> float:
        if speed_kmh <= 0:
            return 0.0
        speed_m_per_min = speed_kmh * 1000 / 60
        grade = max(incline_pct, 0.0) / 100
        vo2 = _ACSM_REST + _ACSM_HORIZONTAL * speed_m_per_min
        vo2 += _ACSM_VERTICAL * speed_m_per_min * grade
        litres_per_min = vo2 * self.config.user_weight_kg / 1000
        return litres_per_min * _KCAL_PER_LITRE_O2 / 60

    def _update(self) -> None:
        now = self.clock.now()
        dt = now - self._last_update
        if dt <= 0:
            return
        self._last_update = now
        belt_start = self._belt_kmh
        self._belt_kmh, speed_integral = _ramp(
            self._belt_kmh, self._belt_goal(), self.config.acceleration_kmh_per_s, dt
        )
        self._incline_pct, incline_integral = _ramp(
            self._incline_pct, self._target_incline_pct, self.config.incline_rate_pct_per_s, dt
        )
        # Distance from the real belt, not the target: a deck still ramping has not gone far.
        self._distance_m += speed_integral / 3.6
        if belt_start > 0 or self._belt_kmh > 0:
            self._energy_kcal += (
                self._energy_rate_kcal_per_s(speed_integral / dt, incline_integral / dt) * dt
            )
        if self._state is RunningState.RUNNING:
            self._elapsed_s += dt

    def _set_state(self, state: RunningState) -> None:
        self._update()
        if state is self._state:
            return
        self._state = state
        status = self.training_status
        for listener in list(self._training_listeners):
            listener(status)

    def _start_belt(self) -> None:
        self._target_speed_kmh = max(self._target_speed_kmh, self.config.min_speed_kmh)
        self._set_state(RunningState.RUNNING)

    def _revoke_control(self) -> None:
        """The console took over (FTMS §4.16.2.x): the client must request control again."""
        if self._control_granted:
            self._control_granted = False
            self._emit(ControlPermissionLost())

    def _speed_in_range(self, speed_kmh: float) -> bool:
        c = self.config
        return c.min_speed_kmh - _EPSILON <= speed_kmh <= c.max_speed_kmh + _EPSILON

    def _incline_in_range(self, incline_pct: float) -> bool:
        c = self.config
        return c.min_incline_pct - _EPSILON <= incline_pct <= c.max_incline_pct + _EPSILON

    def _clamp_speed(self, speed_kmh: float) -> float:
        c = self.config
        bounded = min(max(speed_kmh, c.min_speed_kmh), c.max_speed_kmh)
        return _snap(bounded, c.min_speed_kmh, c.speed_increment_kmh)

    def _clamp_incline(self, incline_pct: float) -> float:
        c = self.config
        bounded = min(max(incline_pct, c.min_incline_pct), c.max_incline_pct)
        return _snap(bounded, c.min_incline_pct, c.incline_increment_pct)

    # -- a person at the console --------------------------------------------------------------

    def press_start(self) -> bool:
        """Start or resume; refused (False) while the safety key is out or already running."""
        if not self._safety_key_in or self._state is RunningState.RUNNING:
            return False
        self._start_belt()
        self._emit(StartedOrResumedByUser())
        self._revoke_control()
        return True

    def press_pause(self) -> bool:
        if self._state is not RunningState.RUNNING:
            return False
        self._set_state(RunningState.PAUSED)
        self._emit(StoppedOrPausedByUser(StopKind.PAUSE))
        self._revoke_control()
        return True

    def press_stop(self) -> bool:
        if self._state not in (RunningState.RUNNING, RunningState.PAUSED):
            return False
        self._set_state(RunningState.STOPPED)
        self._emit(StoppedOrPausedByUser(StopKind.STOP))
        self._revoke_control()
        return True

    def set_speed_at_console(self, speed_kmh: float) -> float:
        """Turn the speed knob; the value is clamped to the deck's range. Returns the target."""
        self._update()
        self._target_speed_kmh = self._clamp_speed(speed_kmh)
        self._emit(TargetSpeedChanged(self._target_speed_kmh))
        self._revoke_control()
        return self._target_speed_kmh

    def set_incline_at_console(self, incline_pct: float) -> float:
        self._update()
        self._target_incline_pct = self._clamp_incline(incline_pct)
        self._emit(TargetInclineChanged(self._target_incline_pct))
        self._revoke_control()
        return self._target_incline_pct

    def pull_safety_key(self) -> None:
        """The magnet comes off: the belt stops at once (no ramp) and Start is refused."""
        self._update()
        self._safety_key_in = False
        self._belt_kmh = 0.0
        if self._state in (RunningState.RUNNING, RunningState.PAUSED):
            self._set_state(RunningState.STOPPED)
        self._emit(StoppedBySafetyKey())

    def insert_safety_key(self) -> None:
        """Put the key back; the belt stays stopped until someone presses Start."""
        self._safety_key_in = True

    # -- a client on the Control Point (FTMS §4.16) -------------------------------------------

    def release_control(self) -> None:
        """The controlling client went away (disconnect): permission ends without a status."""
        self._control_granted = False

    def apply_control_request(self, request: ControlRequest) -> ResultCode:  # noqa: PLR0911
        """Carry out one Control Point procedure and say how it went."""
        self._update()
        if not isinstance(request, RequestControl) and not self._control_granted:
            return ResultCode.CONTROL_NOT_PERMITTED
        match request:
            case RequestControl():
                self._control_granted = True
                return ResultCode.SUCCESS
            case Reset():
                return self._reset()
            case SetTargetSpeed(speed_kmh=speed):
                return self._client_set_speed(speed)
            case SetTargetInclination(inclination_pct=incline):
                if not self._incline_in_range(incline):
                    return ResultCode.INVALID_PARAMETER
                self._target_incline_pct = self._clamp_incline(incline)
                return ResultCode.SUCCESS
            case StartOrResume():
                return self._client_start()
            case StopOrPause(kind=kind):
                return self._client_stop(kind)
            case SetTargetedDistance() | SetTargetedTrainingTime():
                # Not claimed in the Feature characteristic (FTMS §4.16.2: Not Supported).
                return ResultCode.NOT_SUPPORTED

    def _reset(self) -> ResultCode:
        # FTMS §4.16.2.2: targets and time to zero, state Idle, control permission lost.
        self._set_state(RunningState.IDLE)
        self._target_speed_kmh = 0.0
        self._target_incline_pct = 0.0
        self._elapsed_s = 0.0
        self._distance_m = 0.0
        self._energy_kcal = 0.0
        self._control_granted = False
        return ResultCode.SUCCESS

    def _client_set_speed(self, written: float) -> ResultCode:
        speed = written * KMH_PER_MPH if self.faults.speed_in_mph else written
        if not self._speed_in_range(speed):
            return ResultCode.INVALID_PARAMETER
        if self.faults.require_start_before_speed and self._state is not RunningState.RUNNING:
            return ResultCode.OPERATION_FAILED
        self._target_speed_kmh = self._clamp_speed(speed)
        return ResultCode.SUCCESS

    def _client_start(self) -> ResultCode:
        if not self._safety_key_in:
            return ResultCode.OPERATION_FAILED
        if self._state is RunningState.RUNNING:
            if self.faults.start_while_running_stops:
                self._set_state(RunningState.STOPPED)
                return ResultCode.SUCCESS
            return ResultCode.OPERATION_FAILED
        self._start_belt()
        return ResultCode.SUCCESS

    def _client_stop(self, kind: StopKind) -> ResultCode:
        if kind is StopKind.PAUSE:
            if self._state is not RunningState.RUNNING:
                return ResultCode.OPERATION_FAILED
            self._set_state(RunningState.PAUSED)
            return ResultCode.SUCCESS
        if self._state not in (RunningState.RUNNING, RunningState.PAUSED):
            return ResultCode.OPERATION_FAILED
        self._set_state(RunningState.STOPPED)
        return ResultCode.SUCCESS
