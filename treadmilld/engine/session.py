"""`WorkoutSession`: one treadmill's workout engine, implementing `TreadmillController`.

It listens to the link (telemetry, console actions, safety key, link loss), runs workouts
through a `WorkoutExecutor` and a `SafetyGovernor`, integrates distance and energy from the
treadmill's measured values, and publishes events to any number of subscribers.

Safety rules kept here: the belt never starts on connect; an abort (safety key, console stop or
pause, control lost, link lost, no data, emergency stop) locks the governor and stops the belt,
and only a new `start_profile` leaves ABORTED; after a link loss the belt is stopped as soon as
the link is back, because a treadmill may keep running on its own. The `stop` command ends a
workout as STOPPED, with a summary like a finish; the belt is locked out and its stop verified
exactly as after an abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

import structlog

from treadmilld.ble.api import (
    SET_TARGET_SPEED_REQUEST,
    ConnectionState,
    ControlRejectedError,
    LinkConnected,
    LinkError,
    LinkEvent,
    LinkLost,
    LinkLostCause,
    MachineStatusReceived,
    NotConnectedError,
    TelemetryReceived,
    TreadmillLink,
)
from treadmilld.engine.api import (
    MAX_BODY_WEIGHT_KG,
    MIN_BODY_WEIGHT_KG,
    AbortReason,
    BeltState,
    CommandRejectedError,
    DeviceInfo,
    Direction,
    LimitApplied,
    Phase,
    Range,
    SessionEvent,
    SessionSnapshot,
    StateChanged,
    StopConfirmed,
    StopOutcome,
    StopUnconfirmed,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStarted,
    WorkoutStopped,
)
from treadmilld.engine.belt import STANDSTILL_KMH, BeltObserver, deceleration_allowance_s
from treadmilld.engine.calories import WorkoutTotals
from treadmilld.engine.executor import DEFAULT_TICK_S, WorkoutExecutor
from treadmilld.engine.governor import (
    EMERGENCY_STOP_TIMEOUT_S,
    BeltFaultError,
    GovernorRefusedError,
    LimitNotice,
    SafetyGovernor,
)
from treadmilld.engine.library import ProfileLibrary, UnknownProfileError
from treadmilld.engine.limits import (
    LimitConflictError,
    SafetyLimits,
    TreadmillRanges,
    effective_limits,
)
from treadmilld.engine.planner import WorkoutPlan, plan_workout
from treadmilld.ftms import (
    ControlPermissionLost,
    ResetStatus,
    StartedOrResumedByUser,
    StopKind,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetInclineChanged,
    TargetSpeedChanged,
)
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.fanout import FanOut
from treadmilld.runtime.waiting import wait_any

_log = structlog.get_logger(__name__)

ACTIVE_PHASES = frozenset(
    {
        Phase.RUNNING,
        Phase.TURNING,
        Phase.AWAITING_CONFIRMATION,
        Phase.RESTING,
        Phase.PAUSED,
    }
)
# How often the no-data watchdog looks (clock seconds).
WATCHDOG_INTERVAL_S = 0.5
# How often a stop the deck has not carried out is sent again.
STOP_RETRY_S = 2.0
# A stop allows at least the time the slowest deck takes from this speed, even when the last
# measured speed was lower (a record can be a second old).
MIN_STOP_ALLOWANCE_KMH = 1.0
# Events kept per subscriber before the oldest are dropped (a stalled reader loses old news,
# never blocks the engine; runtime/fanout.py has the policy).
SUBSCRIBER_QUEUE_SIZE = 1000


def _check_body_weight(weight: float) -> None:
    if not (math.isfinite(weight) and MIN_BODY_WEIGHT_KG <= weight <= MAX_BODY_WEIGHT_KG):
        raise CommandRejectedError(
            "invalid_argument",
            f"body weight must be {MIN_BODY_WEIGHT_KG:g}-{MAX_BODY_WEIGHT_KG:g} kg, got {weight}",
        )


def _range(minimum: float, maximum: float, increment: float) -> Range:
    return Range(minimum=minimum, maximum=maximum, increment=increment)


class WorkoutSession:
    def __init__(
        self,
        link: TreadmillLink,
        *,
        library: ProfileLibrary,
        limits: SafetyLimits,
        clock: Clock,
        default_body_weight_kg: float = 70.0,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        self._link = link
        self._library = library
        # Every line about this treadmill carries its id, whichever task logs it (the MQTT
        # worker calls in here too).
        self._log = _log.bind(treadmill_id=link.treadmill_id)
        self._limits = limits
        self._clock = clock
        self._tick_s = tick_s
        self._default_body_weight_kg = default_body_weight_kg
        self._observer = BeltObserver(clock)
        self._governor = SafetyGovernor(
            link, clock, observer=self._observer, on_limit=self._on_limit
        )
        self._subscribers: FanOut[SessionEvent] = FanOut(
            f"session {link.treadmill_id}", maxsize=SUBSCRIBER_QUEUE_SIZE
        )
        self._phase = Phase.IDLE
        self._plan: WorkoutPlan | None = None
        self._executor: WorkoutExecutor | None = None
        self._executor_task: asyncio.Task[None] | None = None
        self._totals = WorkoutTotals(body_weight_kg=default_body_weight_kg)
        self._clinical = False
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._abort_reason: AbortReason | None = None
        # How the last workout ended and how far it got (see SessionSnapshot), kept until the
        # next start.
        self._outcome: str | None = None
        self._final_progress_pct: float | None = None
        self._telemetry_at: float | None = None
        self._stop_on_reconnect = False
        self._closed = asyncio.Event()
        self._last_limit_notice: LimitNotice | None = None
        # The session's TaskGroup while `run()` runs: the executor and stop tasks live in it.
        self._tasks: asyncio.TaskGroup | None = None
        self._stop_task: asyncio.Task[None] | None = None
        # Counts accepted workouts: a verified stop stops sending once a new one began.
        self._generation = 0
        # (asked at, alarm due) of the verified stop running last: an emergency stop that
        # replaces one not yet confirmed keeps its alarm time (see `emergency_stop`).
        self._stop_clock: tuple[float, float] | None = None

    # ------------------------------------------------------------------ seam: state

    @property
    def treadmill_id(self) -> str:
        return self._link.treadmill_id

    @property
    def phase(self) -> Phase:
        if self._executor is not None and self._phase in ACTIVE_PHASES:
            return self._executor.phase
        return self._phase

    @property
    def plan(self) -> WorkoutPlan | None:
        return self._plan

    @property
    def plan_origin(self) -> float | None:
        """Clock time of the running plan's time zero (a step planned at `start_s` is due at
        `plan_origin + start_s`), or None before the belt first moves or with no workout."""
        return self._executor.plan_origin if self._executor is not None else None

    @property
    def governor(self) -> SafetyGovernor:
        return self._governor

    def snapshot(self) -> SessionSnapshot:
        phase = self.phase
        caps = self._link.capabilities
        data = self._link.telemetry.data
        executor = self._executor
        plan = self._plan
        active = phase in ACTIVE_PHASES and executor is not None
        segment = executor.segment if active and executor is not None else None
        direction: Direction | None = None
        if segment is not None:
            direction = Direction.REST if phase is not Phase.RUNNING else segment.direction
        # Targets are live only while the workout drives the belt: in a turn, a rest, a pause,
        # after any ending (and before the first Start) nothing does, even while the belt
        # still coasts down; a dashboard showing the last target then would be a lie.
        driving = phase is Phase.RUNNING and self._governor.belt_moving
        elapsed = self._elapsed_s()
        return SessionSnapshot(
            treadmill_id=self.treadmill_id,
            connection=self._link.connection_state.value,
            phase=phase,
            direction=direction,
            profile=plan.profile if plan else None,
            profile_title=plan.title if plan else None,
            segment_index=executor.segment_index if active and executor else None,
            segment_count=len(plan.segments) if plan else None,
            segment_cue=segment.cue if segment else None,
            segment_remaining_s=executor.segment_remaining_s() if active and executor else None,
            speed_kmh=data.instantaneous_speed_kmh,
            target_speed_kmh=self._governor.target_speed_kmh if driving else None,
            incline_pct=data.inclination_pct,
            target_incline_pct=self._governor.target_incline_pct if driving else None,
            distance_m=self._totals.distance_m,
            distance_forward_m=self._totals.distance_forward_m,
            distance_backward_m=self._totals.distance_backward_m,
            elapsed_s=elapsed,
            remaining_s=executor.remaining_s() if active and executor else None,
            backward_s=self._governor.backward_used_s() if plan else 0.0,
            calories_kcal=self._totals.calories_kcal,
            heart_rate_bpm=data.heart_rate_bpm,
            turn_countdown_s=executor.turn_countdown_s if active and executor else None,
            abort_reason=self._abort_reason if phase is Phase.ABORTED else None,
            # The weight in use: the workout's while one runs, else what the next start
            # that names none will use (a dashboard's body weight control shows this).
            body_weight_kg=(
                self._totals.body_weight_kg
                if phase in ACTIVE_PHASES
                else self._default_body_weight_kg
            ),
            clinical=self._clinical,
            belt=self._observer.state(),
            speed_range=(
                _range(
                    caps.speed_range.minimum_kmh,
                    caps.speed_range.maximum_kmh,
                    caps.speed_range.increment_kmh,
                )
                if caps and caps.speed_range
                else None
            ),
            incline_range=(
                _range(
                    caps.inclination_range.minimum_pct,
                    caps.inclination_range.maximum_pct,
                    caps.inclination_range.increment_pct,
                )
                if caps and caps.inclination_range
                else None
            ),
            progress_pct=self._progress_pct(active),
            outcome=self._outcome,
        )

    def device_info(self) -> DeviceInfo | None:
        caps = self._link.capabilities
        if caps is None:
            return None
        dis = caps.device_information
        return DeviceInfo(
            address=caps.address,
            name=caps.name,
            manufacturer=dis.manufacturer,
            model=dis.model,
            serial_number=dis.serial_number,
            hardware_revision=dis.hardware_revision,
            firmware_revision=dis.firmware_revision,
            software_revision=dis.software_revision,
        )

    def _elapsed_s(self, until: float | None = None) -> float:
        """Workout time: from the start to now (or the end), time spent paused left out."""
        if self._started_at is None:
            return 0.0
        if until is None:
            until = self._ended_at if self._ended_at is not None else self._clock.now()
        paused = self._executor.paused_s(until) if self._executor is not None else 0.0
        return max(until - self._started_at - paused, 0.0)

    def _progress_pct(self, active: bool) -> float | None:
        """Share of the planned time done (plan time: a pause or a turn waiting for its
        confirmation does not advance it)."""
        plan = self._plan
        executor = self._executor
        if not active or plan is None or executor is None:
            return self._final_progress_pct
        if plan.total_s <= 0:
            return 0.0
        done = plan.total_s - executor.remaining_s()
        return min(max(100.0 * done / plan.total_s, 0.0), 100.0)

    def _end_workout(self, outcome: str) -> None:
        """Freeze what a finished, stopped or aborted workout shows until the next start."""
        self._ended_at = self._clock.now()
        if self._plan is None:
            # An emergency stop with no workout ever started: no workout had an outcome.
            return
        finished = outcome == Phase.FINISHED.value
        self._final_progress_pct = 100.0 if finished else self._progress_pct(active=True)
        self._outcome = outcome

    def events(self) -> AsyncIterator[SessionEvent]:
        return self._subscribers.subscribe()

    def _emit(self, event: SessionEvent) -> None:
        self._subscribers.publish(event)

    def _changed(self) -> None:
        self._emit(
            StateChanged(
                treadmill_id=self.treadmill_id, at=self._clock.now(), snapshot=self.snapshot()
            )
        )

    def _on_limit(self, notice: LimitNotice) -> None:
        if notice == self._last_limit_notice:
            return
        self._last_limit_notice = notice
        self._log.info(
            "limit_applied", limit=notice.limit, requested=notice.requested, applied=notice.applied
        )
        self._emit(
            LimitApplied(
                treadmill_id=self.treadmill_id,
                at=self._clock.now(),
                limit=notice.limit,
                requested=notice.requested,
                applied=notice.applied,
            )
        )

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Consume link events until the link closes or `shutdown()`; a named task in the
        daemon's TaskGroup.

        The link consumer, the watchdog, the workout executor and any verified stop run in one
        TaskGroup. An unexpected exception in the executor aborts the workout with
        `internal_error` and stops the belt; one in the consumer or the watchdog does the same
        and then crashes `run()` loudly (the supervisor restarts the session idle)."""
        self._closed.clear()
        link_events = self._link.events()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                consumer = tasks.create_task(
                    self._guarded("link_consumer", lambda: self._consume(link_events)),
                    name=f"session-link-events-{self.treadmill_id}",
                )
                watchdog = tasks.create_task(
                    self._guarded("watchdog", self._watchdog),
                    name=f"session-watchdog-{self.treadmill_id}",
                )
                try:
                    await wait_any(events=(self._closed,), futures=(consumer,))
                finally:
                    consumer.cancel()
                    watchdog.cancel()
                    # Nothing outlives the session's loops: with no link events a workout
                    # cannot be watched, and a stop cannot be verified.
                    for task in (self._executor_task, self._stop_task):
                        if task is not None:
                            task.cancel()
            finally:
                self._tasks = None

    async def _guarded(self, what: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run one of the session's own loops; if it raises, abort and stop the belt before
        the error goes up (never the other way round)."""
        try:
            await work()
        except Exception as error:
            self._log.exception("session_task_crashed", task=what)
            await self._abort(AbortReason.INTERNAL_ERROR, f"the session's {what} failed: {error!r}")
            with contextlib.suppress(LinkError, TimeoutError):
                async with asyncio.timeout(EMERGENCY_STOP_TIMEOUT_S):
                    await self._governor.stop_attempt()
            raise

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        tasks = self._tasks
        if tasks is None:
            # Not running under run() (a test driving the session by hand): a plain task.
            return asyncio.create_task(work, name=name)
        return tasks.create_task(work, name=name)

    async def _consume(self, link_events: AsyncIterator[LinkEvent]) -> None:
        async for event in link_events:
            await self._on_link_event(event)

    async def shutdown(self, mode: Literal["stop", "pause"] = "stop") -> None:
        """Stop (or pause) the belt and end `run()`; the daemon calls it on exit. The belt is
        told to stop before anything else happens, errors included."""
        self._governor.lock_out("shutdown")
        # The workout ends as `shutdown` before anything is cancelled, so an error the
        # cancellation provokes in the executor cannot claim the abort.
        if self._phase in ACTIVE_PHASES:
            self._end_aborted(AbortReason.SHUTDOWN, f"the daemon is shutting down ({mode})")
        await self._cancel_executor()
        stop_task = self._stop_task
        self._stop_task = None
        if stop_task is not None:
            stop_task.cancel()
        if self._link.connection_state is ConnectionState.CONNECTED:
            try:
                if mode == "pause":
                    await self._governor.pause_belt()
                else:
                    await self._governor.stop_attempt()
            except LinkError as error:
                self._log.warning("shutdown_stop_failed", error=str(error))
        self._changed()
        if stop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await stop_task
        self._closed.set()
        self._subscribers.end_subscriptions()

    async def _cancel_executor(self) -> None:
        task = self._executor_task
        self._executor_task = None
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # ------------------------------------------------------------------ link events

    async def _on_link_event(self, event: LinkEvent) -> None:
        if isinstance(event, TelemetryReceived):
            await self._on_telemetry(event)
        elif isinstance(event, MachineStatusReceived):
            await self._on_status(event)
        elif isinstance(event, LinkLost):
            await self._on_link_lost(event)
        elif isinstance(event, LinkConnected):
            await self._on_connected(event)
        self._changed()

    async def _on_telemetry(self, event: TelemetryReceived) -> None:
        self._telemetry_at = event.at
        data = event.telemetry.data
        self._observer.on_record(data.instantaneous_speed_kmh, data.inclination_pct, event.at)
        if self._phase in ACTIVE_PHASES:
            facing = self._governor.facing or Direction.FORWARD
            self._totals.add_sample(
                event.at, data.instantaneous_speed_kmh, data.inclination_pct, facing
            )
        await self._judge_belt()

    async def _judge_belt(self) -> None:
        """Act on what the measured belt shows against what it was told."""
        fault = self._governor.check_measured()
        if fault is None:
            return
        if self._phase in ACTIVE_PHASES:
            await self._abort(fault.reason, fault.detail)
            return
        if self._stop_task is None or self._stop_task.done():
            self._log.warning(
                "belt_fault_outside_workout",
                reason=fault.reason.value,
                detail=fault.detail,
            )
            self._governor.lock_out(fault.reason.value)
            self._request_verified_stop()

    async def _on_status(self, event: MachineStatusReceived) -> None:
        status = event.status
        if isinstance(status, StoppedBySafetyKey):
            self._governor.belt_stopped_by_treadmill()
            await self._abort(AbortReason.SAFETY_KEY, "the safety key was pulled")
        elif isinstance(status, StoppedOrPausedByUser):
            self._governor.belt_stopped_by_treadmill()
            if status.kind is StopKind.PAUSE:
                await self._abort(AbortReason.PAUSED_AT_CONSOLE, "paused at the console")
            else:
                await self._abort(AbortReason.STOPPED_AT_CONSOLE, "stopped at the console")
        elif isinstance(status, ControlPermissionLost | ResetStatus):
            await self._abort(
                AbortReason.CONTROL_LOST,
                "the treadmill withdrew control (another app, the console or a reset)",
            )
        elif isinstance(status, TargetSpeedChanged | TargetInclineChanged):
            self._on_console_target(status)
        elif isinstance(status, StartedOrResumedByUser):
            if self._phase in ACTIVE_PHASES:
                # Console Start (FTMS §4.17, status 0x04) aborts a running profile: design choice.
                await self._abort(
                    AbortReason.STARTED_AT_CONSOLE,
                    "the belt was started at the console mid-workout",
                )
            else:
                self._governor.note_console_start()

    def _on_console_target(self, status: TargetSpeedChanged | TargetInclineChanged) -> None:
        """A target changed at the deck mid-workout (a console knob, or a deck echoing its
        deceleration): the executor brings it back within the limits and the plan."""
        if self._phase not in ACTIVE_PHASES or self._executor is None:
            return
        if isinstance(status, TargetSpeedChanged):
            self._log.info(
                "deck_speed_target_changed",
                speed_kmh=status.speed_kmh,
            )
            self._governor.note_console_speed(status.speed_kmh)
        else:
            self._log.info(
                "deck_incline_target_changed",
                incline_pct=status.inclination_pct,
            )
            self._governor.note_console_incline(status.inclination_pct)
        self._executor.recheck()

    async def _on_link_lost(self, event: LinkLost) -> None:
        self._totals.gap()
        self._observer.forget()
        if self._governor.belt_moving or self._phase in ACTIVE_PHASES or self._stop_pending():
            # The treadmill may keep running by itself: stop it as soon as the link is back.
            self._stop_on_reconnect = True
        reason = (
            AbortReason.NO_DATA if event.cause is LinkLostCause.NO_DATA else AbortReason.LINK_LOST
        )
        await self._abort(reason, f"link lost: {event.reason}", stop_belt=False)
        self._governor.belt_stopped_by_treadmill()

    def _stop_pending(self) -> bool:
        return self._stop_task is not None and not self._stop_task.done()

    async def _on_connected(self, event: LinkConnected) -> None:
        self._log.info("treadmill_connected", name=event.capabilities.name)
        self._observer.forget()
        self._governor.forget_targets()
        if self._stop_on_reconnect:
            # Stop is the first thing the deck hears after a reconnect.
            self._stop_on_reconnect = False
            self._log.warning("stopping_belt_after_reconnect")
            self._request_verified_stop(restart=True)

    async def _watchdog(self) -> None:
        while True:
            await self._clock.sleep(WATCHDOG_INTERVAL_S)
            # Deadlines (a target never reached, coasting that never ends) pass between records
            # too; judge the belt on the clock as well.
            await self._judge_belt()
            limits = self._governor.limits
            if self._phase not in ACTIVE_PHASES or limits is None or self._started_at is None:
                continue
            # Any phase of a workout, not only a moving belt: a turn waits for the belt to be
            # measured standing, which a silent deck would make it do for ever. (The link's
            # own liveness check expects data at all times too.)
            last = max(self._telemetry_at or -math.inf, self._started_at)
            if self._clock.now() - last > limits.telemetry_timeout_s:
                await self._abort(
                    AbortReason.NO_DATA,
                    f"no treadmill data for more than {limits.telemetry_timeout_s:g} s",
                )

    # ------------------------------------------------------------------ verified stops

    def _request_verified_stop(
        self,
        *,
        restart: bool = False,
        stop_accepted: bool = False,
        asked_at: float | None = None,
        alarm_by: float | None = None,
    ) -> None:
        """Stop the belt until the deck's data shows it standing (in the background; one at a
        time). `restart` replaces a running one (after a reconnect its link is gone)."""
        running = self._stop_task
        if running is not None and not running.done():
            if not restart:
                return
            running.cancel()
        self._stop_task = self._spawn(
            self._guarded(
                "verified_stop",
                lambda: self._stop_until_standing(
                    stop_accepted=stop_accepted, asked_at=asked_at, alarm_by=alarm_by
                ),
            ),
            f"stop-{self.treadmill_id}",
        )

    async def _stop_until_standing(
        self,
        *,
        stop_accepted: bool = False,
        asked_at: float | None = None,
        alarm_by: float | None = None,
    ) -> None:
        """The stop ladder until the belt is measured standing: Stop, then Pause (control is
        asked for again on refusal), retried every `STOP_RETRY_S`. If the belt is not standing
        after the slowest deck's deceleration time (or by `alarm_by`, an earlier stop's alarm
        time, if sooner), `stop_unconfirmed` is raised once; if the link drops, Stop is sent
        first thing after the reconnect."""
        # The clock starts when the stop was asked for (an emergency stop's own Stop may have
        # waited for the deck's answer, or for a write in flight, before this runs).
        started = self._clock.now() if asked_at is None else asked_at
        speed = self._governor.stop_from_kmh
        deadline = started + deceleration_allowance_s(max(speed, MIN_STOP_ALLOWANCE_KMH))
        if alarm_by is not None:
            deadline = min(deadline, alarm_by)
        self._stop_clock = (started, deadline)
        # The alarm keeps its own time: a Stop retry the deck is slow to answer must not
        # hold it back.
        alarm = asyncio.ensure_future(self._alarm_if_still_moving(started, deadline))
        try:
            await self._stop_ladder(started, deadline, stop_accepted=stop_accepted)
            if self._observer.state() is not BeltState.STANDING:
                # The link went down mid-stop: the alarm still comes in time (a reconnect
                # starts a new stop, with its own alarm, and cancels this one).
                await alarm
        finally:
            alarm.cancel()

    async def _alarm_if_still_moving(self, started: float, deadline: float) -> None:
        await self._clock.sleep(deadline - self._clock.now())
        observer = self._observer
        if observer.state() is BeltState.STANDING:
            return
        now = self._clock.now()
        detail = (
            "the deck's data does not show the belt standing after the slowest deck's stopping time"
            if observer.fresh()
            else "no data from the deck, so the stop cannot be confirmed"
        )
        self._log.error(
            "stop_unconfirmed",
            after_s=round(now - started, 1),
            speed_kmh=observer.speed_kmh,
            detail=detail,
            hint="pull the safety key; treadmilld keeps sending Stop",
        )
        self._emit(
            StopUnconfirmed(
                treadmill_id=self.treadmill_id,
                at=now,
                after_s=now - started,
                speed_kmh=observer.speed_kmh,
                detail=detail,
            )
        )

    async def _stop_ladder(self, started: float, deadline: float, *, stop_accepted: bool) -> None:
        observer = self._observer
        generation = self._generation
        # A Stop the deck accepted just before (the emergency stop's own) is not sent again
        # until the deck has had its stopping time.
        accepted = stop_accepted
        next_attempt = started
        while True:
            if observer.state() is BeltState.STANDING:
                after = self._clock.now() - started
                self._log.info("stop_confirmed", after_s=round(after, 2))
                self._emit(
                    StopConfirmed(
                        treadmill_id=self.treadmill_id, at=self._clock.now(), after_s=after
                    )
                )
                return
            now = self._clock.now()
            sending = generation == self._generation
            if sending and now >= next_attempt and (not accepted or now >= deadline):
                try:
                    async with asyncio.timeout(EMERGENCY_STOP_TIMEOUT_S):
                        accepted = await self._governor.stop_attempt()
                except NotConnectedError:
                    self._stop_on_reconnect = True
                    self._log.warning(
                        "stop_waits_for_reconnect",
                        hint="Stop is sent first thing when the treadmill is back; pull the "
                        "safety key if someone is on the belt",
                    )
                    return
                except (LinkError, TimeoutError) as error:
                    accepted = False
                    self._log.warning("stop_attempt_failed", error=str(error))
                next_attempt = self._clock.now() + STOP_RETRY_S
            now = self._clock.now()
            wait = next_attempt - now
            if now < deadline:
                wait = min(wait, deadline - now) if not accepted else deadline - now
            await observer.wait_standing(max(wait, 0.05))

    # ------------------------------------------------------------------ aborts and endings

    async def _abort(self, reason: AbortReason, detail: str, *, stop_belt: bool = True) -> None:
        """Lock the governor, end the workout as ABORTED and stop the belt until it is measured
        standing. Idempotent: one `workout_aborted` per workout."""
        self._governor.lock_out(reason.value)
        if stop_belt:
            # From now on the belt is expected to slow down, not to follow a target.
            self._governor.stopping()
        if self._phase not in ACTIVE_PHASES:
            if stop_belt and (
                self._governor.belt_moving or self._observer.state() is not BeltState.STANDING
            ):
                self._request_verified_stop()
            return
        self._end_aborted(reason, detail)
        await self._cancel_executor()
        if stop_belt:
            self._request_verified_stop()

    def _end_aborted(self, reason: AbortReason, detail: str) -> None:
        if self._phase is Phase.ABORTED:
            return
        self._end_workout(reason.value)
        self._phase = Phase.ABORTED
        self._abort_reason = reason
        self._log.warning("workout_aborted", reason=reason.value, detail=detail)
        self._emit(
            WorkoutAborted(
                treadmill_id=self.treadmill_id, at=self._clock.now(), reason=reason, detail=detail
            )
        )
        self._changed()

    def _failed_command_reason(self, error: Exception) -> tuple[AbortReason, str]:
        """Why a workout whose command failed ends, as the deck's own data tells it."""
        if not isinstance(error, ControlRejectedError) or not self._governor.belt_moving:
            return AbortReason.COMMAND_FAILED, str(error)
        measured = self._observer.speed_kmh
        if measured is not None and measured <= STANDSTILL_KMH:
            # A deck refusing a command while its own data shows standing the belt that was
            # told to move: it was stopped at the console or by the safety key on a deck that
            # did not report it. Say so, not "command failed" (property soak seed 400).
            return (
                AbortReason.BELT_STOPPED,
                f"{error}; the belt is measured standing while it was told to move: a console "
                "stop or the safety key on a deck that did not report it",
            )
        caps = self._link.capabilities
        if (
            caps is not None
            and caps.speed_needs_running_belt
            and error.request == SET_TARGET_SPEED_REQUEST
        ):
            # A belt-first deck refuses a speed exactly when its belt is not running: told to
            # move, it was paused or stopped at the console (or by the key) without saying so,
            # and its belt may still be coasting down (property soak seed 600).
            return (
                AbortReason.BELT_STOPPED,
                f"{error}; this deck takes no speed while its belt is not running, so it was "
                "stopped or paused at the console (or by the safety key) without reporting it",
            )
        return AbortReason.COMMAND_FAILED, str(error)

    async def _drive(self, executor: WorkoutExecutor) -> None:
        try:
            finished = await executor.run()
        except NotConnectedError as error:
            await self._abort(AbortReason.LINK_LOST, str(error), stop_belt=False)
            self._stop_on_reconnect = True
            return
        except BeltFaultError as fault:
            await self._abort(fault.reason, fault.detail)
            return
        except (LinkError, GovernorRefusedError) as error:
            await self._abort(*self._failed_command_reason(error))
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - logged with its traceback below
            self._log.exception("workout_executor_crashed")
            await self._abort(AbortReason.INTERNAL_ERROR, f"the workout failed: {error!r}")
            return
        if self._phase not in ACTIVE_PHASES:
            return
        plan = self._plan
        if not finished:
            # The person's own stop: the executor has ramped the belt down and sent Stop. It
            # ends like a finish (a summary, not an alarm), and the belt is still locked out
            # and verified standing exactly as after an abort.
            self._governor.lock_out("stop")
        phase = Phase.FINISHED if finished else Phase.STOPPED
        summary = WorkoutFinished if finished else WorkoutStopped
        self._end_workout(phase.value)
        self._phase = phase
        self._emit(
            summary(
                treadmill_id=self.treadmill_id,
                at=self._clock.now(),
                profile=plan.profile if plan else "",
                elapsed_s=self._elapsed_s(),
                distance_forward_m=self._totals.distance_forward_m,
                distance_backward_m=self._totals.distance_backward_m,
                calories_kcal=self._totals.calories_kcal,
            )
        )
        self._log.info(summary.type, kcal=round(self._totals.calories_kcal, 1))
        self._changed()
        self._request_verified_stop()

    # ------------------------------------------------------------------ commands

    def _active_executor(self) -> WorkoutExecutor:
        if self._phase not in ACTIVE_PHASES or self._executor is None:
            raise CommandRejectedError("no_workout", "no workout is running; start a profile")
        return self._executor

    async def start_profile(
        self, profile: str, *, body_weight_kg: float | None = None, clinical: bool = False
    ) -> None:
        caps = self._link.capabilities
        if self._link.connection_state is not ConnectionState.CONNECTED or caps is None:
            raise CommandRejectedError(
                "not_connected", "the treadmill is not connected; wait for it to connect"
            )
        if self._phase in ACTIVE_PHASES:
            raise CommandRejectedError(
                "workout_running", "a workout is running; stop it before starting another"
            )
        try:
            chosen = self._library.get(profile)
        except UnknownProfileError as error:
            raise CommandRejectedError("unknown_profile", str(error)) from None
        weight = self._default_body_weight_kg if body_weight_kg is None else body_weight_kg
        _check_body_weight(weight)
        if caps.speed_range is None:
            raise CommandRejectedError(
                "not_supported",
                "this treadmill reports no supported speed range, so its speed cannot be "
                "controlled; profiles cannot run on it",
            )
        if self._governor.belt_moving or self._observer.shows_motion():
            # A belt still coasting (or started at the console) is not ours to take over; a
            # belt whose state is not known yet is fine: nothing moves before the governor has
            # measured it standing.
            raise CommandRejectedError(
                "belt_moving",
                "the belt is still moving; wait until it stands (stop it first if it was "
                "started at the console)",
            )
        if self._stop_pending() and not self._observer.fresh():
            # A stop from before is not confirmed and the deck sends no data (gone silent, or
            # just reconnected): the belt was last told to stop and nothing shows it standing.
            # Accepting would silence that stop's retries (a new workout's generation) on a
            # deck that can only abort it again for no_data; refuse as for a moving belt, and
            # let the stop go on until the deck reports the belt standing (soak seed 300).
            raise CommandRejectedError(
                "belt_moving",
                "the last stop is not confirmed: the treadmill sends no data, so the belt may "
                "still be moving; pull the safety key if someone is on it, and start again "
                "once the treadmill reports the belt standing",
            )
        use_clinical = clinical or chosen.clinical
        ranges = TreadmillRanges(
            speed=_range(
                caps.speed_range.minimum_kmh,
                caps.speed_range.maximum_kmh,
                caps.speed_range.increment_kmh,
            ),
            incline=(
                _range(
                    caps.inclination_range.minimum_pct,
                    caps.inclination_range.maximum_pct,
                    caps.inclination_range.increment_pct,
                )
                # An all-zero range is how a deck without incline says so (Urevo E1L,
                # real-decks.md §1): nothing to control, so nothing is written.
                if caps.inclination_range
                and caps.inclination_range.maximum_pct > caps.inclination_range.minimum_pct
                else None
            ),
        )
        try:
            limits = effective_limits(
                self._limits, clinical=use_clinical, profile=chosen.limits, treadmill=ranges
            )
        except LimitConflictError as error:
            raise CommandRejectedError("limit_exceeded", str(error)) from None
        plan = plan_workout(chosen, limits)
        if not plan.segments:
            # The limits cut every segment (e.g. a backward budget no longer than the shortest
            # backward bout, once ramps are fitted): there is nothing to walk.
            cuts = "; ".join(
                f"{a.origin}: {a.limit} {a.requested:g} -> {a.applied:g}" for a in plan.adjustments
            )
            raise CommandRejectedError(
                "limit_exceeded",
                f"under the safety limits profile {chosen.name!r} has nothing left to walk "
                f"({cuts}); raise max_backward_s or shorten min_backward_segment_s, or pick "
                "another profile",
            )

        # Accepted: from here on, state changes. A stop still being verified from before goes
        # on watching the belt (stop_confirmed or its alarm) but sends nothing more: its
        # retries would lock the new workout out, which moves the belt only once it is
        # measured standing anyway.
        self._generation += 1
        self._governor.arm(limits)
        self._plan = plan
        self._clinical = use_clinical
        self._totals = WorkoutTotals(body_weight_kg=weight)
        self._started_at = self._clock.now()
        self._ended_at = None
        self._abort_reason = None
        self._outcome = None
        self._final_progress_pct = None
        self._last_limit_notice = None
        self._phase = Phase.RUNNING
        executor = WorkoutExecutor(
            plan,
            self._governor,
            self._clock,
            treadmill_id=self.treadmill_id,
            emit=self._emit,
            on_change=self._changed,
            tick_s=self._tick_s,
        )
        self._executor = executor
        self._log.info(
            "workout_started",
            profile=plan.profile,
            clinical=use_clinical,
            total_s=plan.total_s,
            backward_s=plan.backward_s,
        )
        self._emit(
            WorkoutStarted(
                treadmill_id=self.treadmill_id,
                at=self._clock.now(),
                profile=plan.profile,
                clinical=use_clinical,
                body_weight_kg=weight,
            )
        )
        self._executor_task = self._spawn(self._drive(executor), f"workout-{self.treadmill_id}")
        self._changed()

    async def pause(self) -> None:
        executor = self._active_executor()
        if executor.phase is Phase.PAUSED or executor.pause_pending:
            raise CommandRejectedError("invalid_state", "the workout is already paused")
        executor.request_pause()

    async def resume(self) -> None:
        executor = self._active_executor()
        if executor.phase is not Phase.PAUSED and not executor.pause_pending:
            raise CommandRejectedError("invalid_state", "the workout is not paused")
        executor.request_resume()

    async def stop(self) -> None:
        if self._phase in ACTIVE_PHASES and self._executor is not None:
            self._executor.request_stop()
            return
        if self._governor.belt_moving or self._observer.state() is BeltState.MOVING:
            try:
                await self._governor.stop_belt()
            except LinkError as error:
                raise CommandRejectedError("command_failed", f"could not stop: {error}") from None
            self._request_verified_stop()
            return
        raise CommandRejectedError("no_workout", "no workout is running and the belt is stopped")

    async def emergency_stop(self) -> StopOutcome:
        """Stop now, ahead of everything queued; never raises. The answer says what really
        happened: the belt measured standing, Stop accepted (the belt still coasting), or not
        confirmed (refused, failed, link down). Verification goes on in the background until
        the deck's data shows the belt standing (`stop_confirmed` / `stop_unconfirmed`)."""
        asked_at = self._clock.now()
        try:
            self._governor.lock_out(AbortReason.EMERGENCY_STOP.value)
            task = self._executor_task
            self._executor_task = None
            if task is not None:
                task.cancel()
            running_stop = self._stop_task
            self._stop_task = None
            alarm_by: float | None = None
            if running_stop is not None:
                if not running_stop.done() and self._stop_clock is not None:
                    # A stop asked for earlier is not confirmed yet (say a no_data abort on a
                    # deck gone silent): the person has been waiting since then, so its alarm
                    # time holds. Counting afresh from this press would put `stop_unconfirmed`
                    # off by however late the press came (soak seed 300).
                    earlier_asked_at, alarm_by = self._stop_clock
                    asked_at = min(asked_at, earlier_asked_at)
                running_stop.cancel()
            # The workout ends the moment the stop is asked for, whatever the link does next.
            if self._phase in ACTIVE_PHASES or self._phase is Phase.IDLE:
                self._end_aborted(AbortReason.EMERGENCY_STOP, "emergency stop")
            if self._link.connection_state is ConnectionState.CONNECTED:
                accepted = await self._governor.emergency_stop(AbortReason.EMERGENCY_STOP.value)
            else:
                accepted = False
                self._stop_on_reconnect = True
                self._log.warning(
                    "emergency_stop_while_disconnected",
                    hint="Stop is sent first thing when the treadmill is back; pull the safety "
                    "key if someone is on the belt",
                )
            if self._link.connection_state is ConnectionState.CONNECTED:
                # Verification carries on from here: no second Stop right after an accepted
                # one. The cancelled executor finishes in the session's TaskGroup; the answer
                # does not wait for it.
                self._request_verified_stop(
                    stop_accepted=accepted, asked_at=asked_at, alarm_by=alarm_by
                )
        except Exception as error:  # noqa: BLE001 - emergency_stop must never raise
            self._log.warning("emergency_stop_error", error=repr(error))
            return StopOutcome.NOT_CONFIRMED
        if self._observer.state() is BeltState.STANDING:
            return StopOutcome.BELT_STANDING
        return StopOutcome.STOP_SENT if accepted else StopOutcome.NOT_CONFIRMED

    async def skip_segment(self) -> None:
        executor = self._active_executor()
        if executor.phase in (Phase.TURNING, Phase.AWAITING_CONFIRMATION):
            raise CommandRejectedError(
                "invalid_state", "a turn cannot be cut short; wait for it to finish"
            )
        if executor.phase is Phase.PAUSED or executor.pause_pending:
            raise CommandRejectedError("invalid_state", "the workout is paused; resume first")
        executor.request_skip()

    async def confirm_turn(self) -> None:
        executor = self._active_executor()
        if executor.phase is not Phase.AWAITING_CONFIRMATION:
            raise CommandRejectedError(
                "invalid_state", "no turn is waiting for confirmation right now"
            )
        executor.confirm_turn()

    def _walking_executor(self, what: str) -> WorkoutExecutor:
        executor = self._active_executor()
        if executor.phase is not Phase.RUNNING or executor.pause_pending:
            raise CommandRejectedError(
                "invalid_state",
                f"{what} can change only while walking, not while {executor.phase.value}",
            )
        # At a segment boundary the next segment's plan would overwrite the nudge unseen:
        # refused instead, saying when to send it again.
        refusal = executor.nudge_refusal(what)
        if refusal is not None:
            raise CommandRejectedError("segment_boundary", refusal)
        return executor

    async def set_speed(self, speed_kmh: float) -> float:
        if not math.isfinite(speed_kmh) or speed_kmh <= 0:
            raise CommandRejectedError(
                "invalid_argument",
                f"speed must be above 0 km/h (use pause to stop), got {speed_kmh}",
            )
        executor = self._walking_executor("speed")
        target, limit = self._governor.speed_target_for(speed_kmh)
        if limit is not None:
            self._on_limit(LimitNotice(limit, speed_kmh, target))
        executor.nudge_speed(target)
        return target

    async def set_body_weight(self, body_weight_kg: float) -> None:
        """From now on: the next start that names no weight, and the rest of a running
        workout's calories (integrated sample by sample, so what is counted stays)."""
        _check_body_weight(body_weight_kg)
        self._default_body_weight_kg = body_weight_kg
        if self._phase in ACTIVE_PHASES:
            self._totals.body_weight_kg = body_weight_kg
        self._log.info("body_weight_set", body_weight_kg=body_weight_kg)
        self._changed()

    async def set_incline(self, incline_pct: float) -> float:
        if not math.isfinite(incline_pct):
            raise CommandRejectedError(
                "invalid_argument", f"incline must be a number, got {incline_pct}"
            )
        executor = self._walking_executor("incline")
        target, limit = self._governor.incline_target_for(incline_pct)
        if limit is not None:
            self._on_limit(LimitNotice(limit, incline_pct, target))
        executor.nudge_incline(target)
        return target
