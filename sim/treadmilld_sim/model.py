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

from treadmilld.ftms import (
    CodecError,
    ControlPermissionLost,
    ControlRequest,
    FitnessMachineFeature,
    InclinationRange,
    MachineFeatures,
    MachineStatus,
    RequestControl,
    Reset,
    ResetStatus,
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
from treadmilld.ftms.vendor import incline_table_index, incline_table_value
from treadmilld.runtime.clock import Clock
from treadmilld_sim.config import SimulatedTreadmillConfig, TreadmillFaults

_log = structlog.get_logger(__name__)

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

# The Urevo E1L's Training Status values (vendor_training_status): the FTMS ones it uses for
# running and idle, and two reserved ones, in the order its Kinomap capture shows them while the
# belt slows after a stop and once it stands (blak3r/treadspan urevo-E1L; meanings inferred).
_E1L_RUNNING = TrainingStatusCode.MANUAL_MODE  # 0x0D
_E1L_IDLE = TrainingStatusCode.PRE_WORKOUT  # 0x0E
E1L_SLOWING_AFTER_STOP = 0x10
E1L_STANDING_AFTER_STOP = 0x11

StatusListener = Callable[[MachineStatus], None]
TrainingStatusListener = Callable[[TrainingStatus], None]
DecelerationListener = Callable[[], None]
StateListener = Callable[[], None]


def _ramp(current: float, goal: float, rate: float, dt: float) -> tuple[float, float]:
    """Move `current` toward `goal` at `rate` per second for `dt` s; return (end, integral)."""
    gap = goal - current
    time_to_goal = abs(gap) / rate
    if time_to_goal <= dt:
        return goal, (current + goal) / 2 * time_to_goal + goal * (dt - time_to_goal)
    end = current + math.copysign(rate * dt, gap)
    return end, (current + end) / 2 * dt


def _snap(value: float, minimum: float, increment: float, tolerance: float = 1e-6) -> float:
    """Truncate to the step of the supported range at or below `value`.

    A deck's controller keeps whole steps and drops the rest: real decks truncate written
    setpoints rather than round them (real-decks.md §4, contrasting pyftms, which rounds 4.1
    down to 4.09 on the wire). Truncating never runs the belt faster or steeper than asked.
    `tolerance` keeps a value already on the grid up to what the wire can say from losing a
    step: float noise for km/h (4.1 = 0.5 + 36 x 0.1), one 0.01 mph wire step for an mph deck
    (2.48 mph, the closest the wire comes to 4.0 km/h from below, is 3.991 km/h: it runs 4.0).
    """
    if increment <= 0:
        return round(minimum, 2)
    steps = math.floor((value - minimum + tolerance) / increment)
    return round(minimum + steps * increment, 2)


# One step of Set Target Speed on the wire (0.01, FTMS §4.16.2.4) read as mph, in km/h.
_MPH_WIRE_STEP_KMH = 0.01 * KMH_PER_MPH


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
        # A deck may be left inclined by its previous user (12 to 15 %, field reports for issue 11).
        self._incline_pct = config.initial_incline_pct
        self._target_incline_pct = config.initial_incline_pct
        self._distance_m = 0.0
        self._elapsed_s = 0.0
        self._energy_kcal = 0.0
        # Seconds of Running since the last Start from rest (self_stop_after_s).
        self._run_s = 0.0
        self._self_stopping = False
        self._safety_key_in = True
        self._control_granted = False
        self._status_listeners: list[StatusListener] = []
        self._training_listeners: list[TrainingStatusListener] = []
        self._deceleration_listeners: list[DecelerationListener] = []
        self._state_listeners: list[StateListener] = []

    # -- listeners ----------------------------------------------------------------------------

    def add_status_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Hear every Machine Status the treadmill raises; returns an unsubscribe function."""
        self._status_listeners.append(listener)
        return lambda: self._status_listeners.remove(listener)

    def add_training_status_listener(self, listener: TrainingStatusListener) -> Callable[[], None]:
        self._training_listeners.append(listener)
        return lambda: self._training_listeners.remove(listener)

    def add_deceleration_listener(self, listener: DecelerationListener) -> Callable[[], None]:
        """Hear when the belt starts slowing toward a lower goal (Stop, Pause, lower target).

        Called at once, from inside the call that caused it; the physics stay lazy, so a
        listener that wants to follow the slowdown has to wait on the clock itself (the GATT
        server does, for `echo_target_while_decelerating`).
        """
        self._deceleration_listeners.append(listener)
        return lambda: self._deceleration_listeners.remove(listener)

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Hear every change of running state, announced or not (the GATT server's self-stop
        timer waits on it)."""
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener)

    def _emit(self, status: MachineStatus) -> None:
        _log.debug("sim_machine_status", treadmill=self.config.name, status=repr(status))
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
    def decelerating(self) -> bool:
        """True while the belt is slower-bound: above the speed it is heading for."""
        self._update()
        return self._belt_kmh > self._belt_goal() + _EPSILON

    @property
    def safety_key_in(self) -> bool:
        return self._safety_key_in

    @property
    def control_granted(self) -> bool:
        return self._control_granted

    @property
    def training_status(self) -> TrainingStatus:
        if not self.config.vendor_training_status:
            return TrainingStatus(status=_TRAINING_STATUS[self._state])
        match self._state:
            case RunningState.RUNNING:
                return TrainingStatus(status=_E1L_RUNNING)
            case RunningState.IDLE:
                return TrainingStatus(status=_E1L_IDLE)
            case _:
                self._update()
                moving = self._belt_kmh > _EPSILON
                return TrainingStatus(
                    status=E1L_SLOWING_AFTER_STOP if moving else E1L_STANDING_AFTER_STOP
                )

    @property
    def speed_range(self) -> SpeedRange:
        c = self.config
        return SpeedRange(c.min_speed_kmh, c.max_speed_kmh, c.speed_increment_kmh)

    @property
    def inclination_range(self) -> InclinationRange:
        c = self.config
        if c.incline_table is not None:
            # The parameter a client writes is an index; the range covers the valid ones, read
            # in the 0.1 % unit the wire gives them (index n is "n/10 %").
            return InclinationRange(0.0, (len(c.incline_table) - 1) / 10, 0.1)
        return InclinationRange(c.min_incline_pct, c.max_incline_pct, c.incline_increment_pct)

    @property
    def feature(self) -> FitnessMachineFeature:
        c = self.config
        machine = (
            MachineFeatures.TOTAL_DISTANCE
            | MachineFeatures.EXPENDED_ENERGY
            | MachineFeatures.ELAPSED_TIME
        )
        targets = TargetSettingFeatures.SPEED
        if c.has_incline:
            machine |= MachineFeatures.INCLINATION
            targets |= TargetSettingFeatures.INCLINATION
        if self.faults.report_step_count:
            machine |= MachineFeatures.STEP_COUNT
        if c.machine_features is not None:
            machine = MachineFeatures(c.machine_features)
        if c.target_setting_features is not None:
            targets = TargetSettingFeatures(c.target_setting_features)
        return FitnessMachineFeature(machine=machine, target_settings=targets)

    def treadmill_data(self) -> TreadmillData:
        """The record a Treadmill Data notification carries right now."""
        self._update()
        c = self.config
        incline = round(self._incline_pct, 1)
        ramp = round(math.degrees(math.atan(incline / 100)), 1) if c.reports_ramp_angle else 0.0
        rate = self._energy_rate_kcal_per_s(self._belt_kmh, incline)
        if not c.reports_energy_rates:
            rate = 0.0
        return TreadmillData(
            instantaneous_speed_kmh=round(self._belt_kmh, 2),
            total_distance_m=self._reported_distance_m(),
            inclination_pct=incline if c.has_incline else None,
            ramp_angle_deg=ramp if c.has_incline else None,
            total_energy_kcal=int(self._energy_kcal),
            energy_per_hour_kcal=int(rate * 3600),
            energy_per_minute_kcal=int(rate * 60),
            elapsed_time_s=int(self._elapsed_s),
            step_count=self.steps if self.faults.report_step_count else None,
        )

    def _reported_distance_m(self) -> int:
        """Total distance as this deck puts it in Treadmill Data (total_distance_reporting)."""
        match self.faults.total_distance_reporting:
            case "stuck":
                return 0  # its power-on value, however far the belt has run
            case "10m_steps":
                return int(self._distance_m // 10) * 10
            case _:
                return int(self._distance_m)

    def self_stop_due_in(self) -> float | None:
        """Treadmill seconds until this deck stops itself (self_stop_after_s), or None."""
        self._update()
        limit = self.faults.self_stop_after_s
        if limit is None or self._state is not RunningState.RUNNING:
            return None
        return max(limit - self._run_s, 0.0)

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
        if self._self_stopping:
            return  # time stands at the self-stop instant until the stop is done
        now = self.clock.now()
        limit = self.faults.self_stop_after_s
        if limit is not None and self._state is RunningState.RUNNING:
            due = self._last_update + max(limit - self._run_s, 0.0)
            if due <= now:
                # Exact in lazy time: run to the instant the deck gave up, stop there like a
                # console Stop, then carry on to now with the belt slowing.
                self._advance(due)
                self._self_stop()
        self._advance(now)

    def _self_stop(self) -> None:
        _log.info("sim_self_stop", treadmill=self.config.name, after_s=self._run_s)
        self._self_stopping = True
        try:
            self._stop_belt(announce=self.faults.report_console_status)
        finally:
            self._self_stopping = False
        self._report_console(StoppedOrPausedByUser(StopKind.STOP))

    def _advance(self, now: float) -> None:
        dt = now - self._last_update
        if dt <= 0:
            return
        self._last_update = now
        belt_start = self._belt_kmh
        goal = self._belt_goal()
        # The goal is constant between updates, so the belt moves one way only in between.
        rate = (
            self.faults.deceleration_kmh_per_s
            if goal < belt_start
            else self.config.acceleration_kmh_per_s
        )
        self._belt_kmh, speed_integral = _ramp(belt_start, goal, rate, dt)
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
            self._run_s += dt

    def _set_state(self, state: RunningState, *, announce: bool = True) -> None:
        """Change state; `announce=False` for a deck that tells nobody (report_console_status)."""
        self._update()
        if state is self._state:
            return
        self._state = state
        if announce:
            status = self.training_status
            for listener in list(self._training_listeners):
                listener(status)
        for state_listener in list(self._state_listeners):
            state_listener()
        self._goal_changed()

    def _set_target_speed(self, speed_kmh: float) -> None:
        self._update()
        self._target_speed_kmh = speed_kmh
        self._goal_changed()

    def _goal_changed(self) -> None:
        if self._deceleration_listeners and self.decelerating:
            for listener in list(self._deceleration_listeners):
                listener()

    def _start_belt(self, *, announce: bool = True) -> None:
        """Into Running, at the target kept or written, else at the minimum speed."""
        if self._state is not RunningState.PAUSED:
            self._update()
            self._run_s = 0.0
            if self._state is RunningState.STOPPED and not self.faults.cumulative_sessions:
                # A Stop ended the session: the next one counts from zero.
                self._elapsed_s = self._distance_m = self._energy_kcal = 0.0
        self._set_target_speed(max(self._target_speed_kmh, self.config.min_speed_kmh))
        self._set_state(RunningState.RUNNING, announce=announce)

    def _stop_belt(self, *, announce: bool = True) -> None:
        """Into Stopped. The clean default deck forgets its target, so the next Start begins at
        the minimum speed; a deck with `resume_at_last_target` keeps it, as many real ones do."""
        self._set_state(RunningState.STOPPED, announce=announce)
        if not self.faults.resume_at_last_target:
            self._set_target_speed(0.0)

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

    def _written_incline(self, written_pct: float) -> float | None:
        """The incline a Set Target Inclination parameter asks for, or None if invalid.

        On a table deck the raw sint16 (decoded as 0.1 %) is an index into incline_table.
        """
        table = self.config.incline_table
        if table is None:
            return self._clamp_incline(written_pct) if self._incline_in_range(written_pct) else None
        index = round(written_pct * 10)
        try:
            return incline_table_value(table, index)
        except CodecError:
            return None

    def _clamp_speed(self, speed_kmh: float, tolerance: float = 1e-6) -> float:
        c = self.config
        bounded = min(max(speed_kmh, c.min_speed_kmh), c.max_speed_kmh)
        return _snap(bounded, c.min_speed_kmh, c.speed_increment_kmh, tolerance)

    def _clamp_incline(self, incline_pct: float) -> float:
        c = self.config
        if c.incline_table is not None:
            table = c.incline_table
            bounded = min(max(incline_pct, table[0]), table[-1])
            return table[incline_table_index(table, bounded)]
        if not c.has_incline:
            return 0.0
        bounded = min(max(incline_pct, c.min_incline_pct), c.max_incline_pct)
        return _snap(bounded, c.min_incline_pct, c.incline_increment_pct)

    # -- a person at the console --------------------------------------------------------------

    def _report_console(self, status: MachineStatus) -> None:
        """A console button or the safety key: say so and take control back (FTMS §4.16.2.x),
        unless this deck reports neither (`report_console_status=False`)."""
        if self.faults.report_console_status:
            self._emit(status)
            self._revoke_control()

    def press_start(self) -> bool:
        """Start or resume; refused (False) while the safety key is out or already running."""
        if not self._safety_key_in or self._state is RunningState.RUNNING:
            return False
        self._start_belt(announce=self.faults.report_console_status)
        self._report_console(StartedOrResumedByUser())
        return True

    def press_pause(self) -> bool:
        if self._state is not RunningState.RUNNING:
            return False
        self._set_state(RunningState.PAUSED, announce=self.faults.report_console_status)
        self._report_console(StoppedOrPausedByUser(StopKind.PAUSE))
        return True

    def press_stop(self) -> bool:
        if self._state not in (RunningState.RUNNING, RunningState.PAUSED):
            return False
        self._stop_belt(announce=self.faults.report_console_status)
        self._report_console(StoppedOrPausedByUser(StopKind.STOP))
        return True

    def _status_speed(self, speed_kmh: float) -> float:
        """A speed as this deck puts it in Machine Status 0x05: in the unit it reads targets
        in (FTMS §4.17 gives the status the same parameter as Set Target Speed), so an mph deck
        reports mph."""
        if self.faults.speed_in_mph:
            return round(speed_kmh / KMH_PER_MPH, 2)
        return round(speed_kmh, 2)

    def set_speed_at_console(self, speed_kmh: float) -> float:
        """Turn the speed knob; the value is clamped to the deck's range. Returns the target."""
        self._set_target_speed(self._clamp_speed(speed_kmh))
        self._emit(TargetSpeedChanged(self._status_speed(self._target_speed_kmh)))
        self._revoke_control()
        return self._target_speed_kmh

    def set_incline_at_console(self, incline_pct: float) -> float:
        self._update()
        if not self.config.has_incline:
            return 0.0  # no incline motor, no button
        self._target_incline_pct = self._clamp_incline(incline_pct)
        self._emit(TargetInclineChanged(self._status_incline(self._target_incline_pct)))
        self._revoke_control()
        return self._target_incline_pct

    def _status_incline(self, incline_pct: float) -> float:
        """An incline as this deck puts it in Machine Status 0x06: the parameter it reads
        targets in (FTMS §4.17), so a table deck reports the index (as index/10 %)."""
        table = self.config.incline_table
        if table is None:
            return incline_pct
        return incline_table_index(table, incline_pct) / 10

    def leave_inclined_at(self, incline_pct: float) -> None:
        """The previous user left the deck at this incline (no status: no client was there).

        The same as `initial_incline_pct`, on a deck that is already on; clamped to the range.
        """
        self._update()
        self._incline_pct = self._target_incline_pct = self._clamp_incline(incline_pct)

    def pull_safety_key(self) -> None:
        """The magnet comes off: the belt stops at once (no ramp) and Start is refused."""
        self._update()
        self._safety_key_in = False
        self._belt_kmh = 0.0
        if self._state in (RunningState.RUNNING, RunningState.PAUSED):
            self._stop_belt(announce=self.faults.report_console_status)
        if self.faults.report_console_status:
            self._emit(StoppedBySafetyKey())

    def insert_safety_key(self) -> None:
        """Put the key back; the belt stays stopped until someone presses Start."""
        self._safety_key_in = True

    # -- a client on the Control Point (FTMS §4.16) -------------------------------------------

    def release_control(self) -> None:
        """The controlling client went away (disconnect): permission ends without a status."""
        self._control_granted = False

    def client_connected(self) -> None:
        """A central connected. A deck with `starts_on_connect` starts its belt by itself, with
        no Machine Status (qdomyos-zwift#923); never with the safety key out or if running."""
        faults = self.faults
        if not faults.starts_on_connect or not self._safety_key_in:
            return
        if self._state is RunningState.RUNNING:
            return
        _log.info("sim_belt_started_on_connect", treadmill=self.config.name)
        if faults.starts_on_connect_kmh is not None:
            self._set_target_speed(self._clamp_speed(faults.starts_on_connect_kmh))
        self._start_belt()

    def echo_measured_speed(self) -> None:
        """Send Target Speed Changed carrying the belt's measured speed, as the Urevo E1L does
        while it decelerates (`echo_target_while_decelerating`; blak3r/treadspan captures)."""
        self._update()
        self._emit(TargetSpeedChanged(self._status_speed(self._belt_kmh)))

    def apply_control_request(self, request: ControlRequest) -> ResultCode:  # noqa: PLR0911
        """Carry out one Control Point procedure and say how it went."""
        self._update()
        needs_control = self.faults.requires_request_control
        if needs_control and not isinstance(request, RequestControl) and not self._control_granted:
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
                if not self.config.has_incline:
                    return ResultCode.SUCCESS  # and nothing moves (the Urevo E1L answers 80 03 01)
                target = self._written_incline(incline)
                if target is None:
                    return ResultCode.INVALID_PARAMETER
                self._target_incline_pct = target
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
        self._set_target_speed(0.0)
        self._target_incline_pct = 0.0
        self._elapsed_s = 0.0
        self._distance_m = 0.0
        self._energy_kcal = 0.0
        self._control_granted = False
        # §4.17 sends the Reset status to the *other* clients only; this deck notifies every
        # client, the one that asked included, as a careless firmware would: a client must not
        # take its own Reset for someone else's.
        self._emit(ResetStatus())
        return ResultCode.SUCCESS

    def _client_set_speed(self, written: float) -> ResultCode:
        if self.faults.ignores_speed_commands:
            return ResultCode.SUCCESS  # and nothing changes (hassio-ftms#26)
        speed = written * KMH_PER_MPH if self.faults.speed_in_mph else written
        if not self._speed_in_range(speed):
            return ResultCode.INVALID_PARAMETER
        if self.faults.require_start_before_speed and self._state is not RunningState.RUNNING:
            return ResultCode.OPERATION_FAILED
        tolerance = _MPH_WIRE_STEP_KMH if self.faults.speed_in_mph else 1e-6
        self._set_target_speed(self._clamp_speed(speed, tolerance))
        return ResultCode.SUCCESS

    def _client_start(self) -> ResultCode:
        if not self._safety_key_in:
            return ResultCode.OPERATION_FAILED
        if self._state is RunningState.RUNNING:
            if self.faults.start_while_running_stops:
                self._stop_belt()
                return ResultCode.SUCCESS
            return ResultCode.OPERATION_FAILED
        self._start_belt()
        return ResultCode.SUCCESS

    def _client_stop(self, kind: StopKind) -> ResultCode:
        if kind is StopKind.PAUSE:
            if self.faults.refuses_pause is not None:
                return self.faults.refuses_pause  # and the belt keeps running
            if self._state is not RunningState.RUNNING:
                return ResultCode.OPERATION_FAILED
            self._set_state(RunningState.PAUSED)
            return ResultCode.SUCCESS
        if self.faults.refuses_stop is not None:
            return self.faults.refuses_stop  # and the belt keeps running (qdomyos-zwift#923)
        if self._state not in (RunningState.RUNNING, RunningState.PAUSED):
            return ResultCode.OPERATION_FAILED
        self._stop_belt()
        return ResultCode.SUCCESS
