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

The session is made of parts, each in its own module, sharing one `SessionState`:
`link_reactions` (what each link event does), `workout_endings` (finish, stop, abort),
`verified_stop` (the verified stop), `watchdog` (no data, the belt between records),
`start_admission` (whether a start may run), `workout_commands` (the person's commands to a
running workout), `session_heart_rate` (heart-rate readings in, judged by the governor, a
verdict answered with the turn-safe pause), `session_snapshot` (what the session shows) and
`session_publishing` (its events to subscribers). This module wires them, runs their tasks,
starts workouts, stops the belt and shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

import structlog

from treadmilld.ble.api import (
    ConnectionState,
    LinkError,
    LinkEvent,
    TelemetryReceived,
    TreadmillLink,
)
from treadmilld.engine import workout_commands
from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    CommandRejectedError,
    DeviceInfo,
    Phase,
    SessionEvent,
    SessionSnapshot,
    StopOutcome,
    WorkoutStarted,
)
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.executor import DEFAULT_TICK_S, WorkoutExecutor
from treadmilld.engine.governor import EMERGENCY_STOP_TIMEOUT_S, SafetyGovernor
from treadmilld.engine.heart_rate import HeartRateReading
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import ProfileLimits, SafetyLimits
from treadmilld.engine.link_reactions import LinkReactions
from treadmilld.engine.planner import WorkoutPlan
from treadmilld.engine.session_heart_rate import HeartRateIntake
from treadmilld.engine.session_publishing import SessionPublisher
from treadmilld.engine.session_snapshot import build_snapshot, device_info
from treadmilld.engine.session_state import SessionState
from treadmilld.engine.start_admission import admit_start, check_body_weight
from treadmilld.engine.verified_stop import BeltStopper
from treadmilld.engine.watchdog import SessionWatchdog
from treadmilld.engine.workout_endings import WorkoutEndings
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_any

_log = structlog.get_logger(__name__)


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
        self._state = SessionState(clock, default_body_weight_kg=default_body_weight_kg)
        self._observer = BeltObserver(clock)
        # Events out: subscribers, state changes, limit notices (`session_publishing`).
        self._publisher = SessionPublisher(link.treadmill_id, clock, self.snapshot)
        self._governor = SafetyGovernor(
            link, clock, observer=self._observer, on_limit=self._publisher.limit_applied
        )
        self._closed = asyncio.Event()
        # The session's TaskGroup while `run()` runs: the executor and stop tasks live in it.
        self._tasks: asyncio.TaskGroup | None = None
        self._stopper = BeltStopper(
            treadmill_id=link.treadmill_id,
            governor=self._governor,
            observer=self._observer,
            clock=clock,
            emit=self._publisher.emit,
            spawn=lambda work: self._spawn(
                self._guarded("verified_stop", work), f"stop-{link.treadmill_id}"
            ),
        )
        self._endings = WorkoutEndings(
            self._state,
            link=link,
            governor=self._governor,
            observer=self._observer,
            stopper=self._stopper,
            clock=clock,
            emit=self._publisher.emit,
            changed=self._publisher.changed,
        )
        self._reactions = LinkReactions(
            self._state,
            treadmill_id=link.treadmill_id,
            governor=self._governor,
            observer=self._observer,
            stopper=self._stopper,
            endings=self._endings,
        )
        self._watch = SessionWatchdog(
            self._state,
            governor=self._governor,
            observer=self._observer,
            clock=clock,
            judge_belt=self._reactions.judge_belt,
            abort=self._endings.abort,
        )
        self._heart_rate = HeartRateIntake(
            self._state,
            treadmill_id=link.treadmill_id,
            governor=self._governor,
            clock=clock,
            emit=self._publisher.emit,
        )

    # ------------------------------------------------------------------ seam: state

    @property
    def treadmill_id(self) -> str:
        return self._link.treadmill_id

    @property
    def phase(self) -> Phase:
        return self._state.current_phase

    @property
    def plan(self) -> WorkoutPlan | None:
        return self._state.plan

    @property
    def plan_origin(self) -> float | None:
        """Clock time of the running plan's time zero (a step planned at `start_s` is due at
        `plan_origin + start_s`), or None before the belt first moves or with no workout."""
        executor = self._state.executor
        return executor.plan_origin if executor is not None else None

    @property
    def governor(self) -> SafetyGovernor:
        return self._governor

    def snapshot(self) -> SessionSnapshot:
        return build_snapshot(
            self._state, link=self._link, governor=self._governor, observer=self._observer
        )

    def device_info(self) -> DeviceInfo | None:
        return device_info(self._link)

    def events(self) -> AsyncIterator[SessionEvent]:
        return self._publisher.subscribe()

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
                    if self._state.executor_task is not None:
                        self._state.executor_task.cancel()
                    self._stopper.cancel()
            finally:
                self._tasks = None

    async def _guarded(self, what: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run one of the session's own loops; if it raises, abort and stop the belt before
        the error goes up (never the other way round)."""
        try:
            await work()
        except Exception as error:
            self._log.exception("session_task_crashed", task=what)
            await self._endings.abort(
                AbortReason.INTERNAL_ERROR, f"the session's {what} failed: {error!r}"
            )
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

    async def _watchdog(self) -> None:
        # The watchdog's loop, as a method: a subclass may replace it (the tests crash it to
        # see the belt stopped before the session fails).
        await self._watch.run()

    async def _consume(self, link_events: AsyncIterator[LinkEvent]) -> None:
        async for event in link_events:
            await self._reactions.react(event)
            if isinstance(event, TelemetryReceived):
                self._heart_rate.telemetry(event)
            self._publisher.changed()

    # ------------------------------------------------------------------ heart rate

    def heart_rate_received(self, bpm: int | None, contact: bool | None, at: float) -> None:
        """A heart-rate strap's reading (Heart Rate Measurement): `bpm` None when it carried
        none, `contact` None when the strap does not report skin contact, `at` clock time.
        Filtered (range, contact, zero, spikes) before anything acts on it."""
        self._heart_rate.strap_reading(bpm, contact, at)
        self._publisher.changed()

    def current_heart_rate(self) -> HeartRateReading | None:
        """The filtered heart rate that counts now (strap while fresh, else the treadmill's)."""
        return self._heart_rate.current()

    async def shutdown(self, mode: Literal["stop", "pause"] = "stop") -> None:
        """Stop (or pause) the belt and end `run()`; the daemon calls it on exit. The belt is
        told to stop before anything else happens, errors included."""
        self._governor.lock_out("shutdown")
        # The workout ends as `shutdown` before anything is cancelled, so an error the
        # cancellation provokes in the executor cannot claim the abort.
        if self._state.active:
            self._endings.end_aborted(AbortReason.SHUTDOWN, f"the daemon is shutting down ({mode})")
        await self._endings.cancel_executor()
        stop_task = self._stopper.withdraw()
        if self._link.connection_state is ConnectionState.CONNECTED:
            try:
                if mode == "pause":
                    await self._governor.pause_belt()
                else:
                    await self._governor.stop_attempt()
            except LinkError as error:
                self._log.warning("shutdown_stop_failed", error=str(error))
        self._publisher.changed()
        if stop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await stop_task
        self._closed.set()
        self._publisher.end()

    # ------------------------------------------------------------------ commands

    async def start_profile(
        self,
        profile: str,
        *,
        body_weight_kg: float | None = None,
        clinical: bool = False,
        rider_limits: ProfileLimits | None = None,
    ) -> None:
        """Start `profile`. `rider_limits`, a rider's personal limits (and their program's
        rules for this session), tighten the configured ones like a profile's own; they can
        never loosen them."""
        state = self._state
        admitted = admit_start(
            profile,
            body_weight_kg=body_weight_kg,
            clinical=clinical,
            link=self._link,
            library=self._library,
            limits=self._limits,
            workout_running=state.active,
            default_body_weight_kg=state.default_body_weight_kg,
            governor=self._governor,
            observer=self._observer,
            stop_pending=self._stopper.pending,
            rider_limits=rider_limits,
        )
        # Accepted: from here on, state changes.
        plan = admitted.plan
        self._stopper.new_workout()
        self._governor.arm(admitted.limits)
        self._publisher.new_workout()
        executor = WorkoutExecutor(
            plan,
            self._governor,
            self._clock,
            treadmill_id=self.treadmill_id,
            emit=self._publisher.emit,
            on_change=self._publisher.changed,
            tick_s=self._tick_s,
            heart_rate=self.current_heart_rate,
        )
        state.begin(plan, executor, weight_kg=admitted.body_weight_kg, clinical=admitted.clinical)
        self._log.info(
            "workout_started",
            profile=plan.profile,
            clinical=admitted.clinical,
            total_s=plan.total_s,
            backward_s=plan.backward_s,
        )
        self._publisher.emit(
            WorkoutStarted(
                treadmill_id=self.treadmill_id,
                at=self._clock.now(),
                profile=plan.profile,
                clinical=admitted.clinical,
                body_weight_kg=admitted.body_weight_kg,
            )
        )
        state.executor_task = self._spawn(
            self._endings.drive(executor), f"workout-{self.treadmill_id}"
        )
        self._publisher.changed()

    async def pause(self) -> None:
        workout_commands.pause(self._state)

    async def resume(self) -> None:
        workout_commands.resume(self._state)

    async def skip_segment(self) -> None:
        workout_commands.skip_segment(self._state)

    async def confirm_turn(self) -> None:
        workout_commands.confirm_turn(self._state)

    async def set_speed(self, speed_kmh: float) -> float:
        return workout_commands.set_speed(
            self._state, self._governor, speed_kmh, on_limit=self._publisher.limit_applied
        )

    async def set_incline(self, incline_pct: float) -> float:
        return workout_commands.set_incline(
            self._state, self._governor, incline_pct, on_limit=self._publisher.limit_applied
        )

    async def set_body_weight(self, body_weight_kg: float) -> None:
        """From now on: the next start that names no weight, and the rest of a running
        workout's calories (integrated sample by sample, so what is counted stays)."""
        check_body_weight(body_weight_kg)
        self._state.default_body_weight_kg = body_weight_kg
        if self._state.active:
            self._state.totals.body_weight_kg = body_weight_kg
        self._log.info("body_weight_set", body_weight_kg=body_weight_kg)
        self._publisher.changed()

    async def stop(self) -> None:
        state = self._state
        if state.active and state.executor is not None:
            state.executor.request_stop()
            return
        if self._governor.belt_moving or self._observer.state() is BeltState.MOVING:
            try:
                await self._governor.stop_belt()
            except LinkError as error:
                raise CommandRejectedError("command_failed", f"could not stop: {error}") from None
            self._stopper.request()
            return
        raise CommandRejectedError("no_workout", "no workout is running and the belt is stopped")

    async def emergency_stop(self) -> StopOutcome:
        """Stop now, ahead of everything queued; never raises. The answer says what really
        happened: the belt measured standing, Stop accepted (the belt still coasting), or not
        confirmed (refused, failed, link down). Verification goes on in the background until
        the deck's data shows the belt standing (`stop_confirmed` / `stop_unconfirmed`)."""
        asked_at = self._clock.now()
        state = self._state
        try:
            self._governor.lock_out(AbortReason.EMERGENCY_STOP.value)
            task = state.executor_task
            state.executor_task = None
            if task is not None:
                task.cancel()
            alarm_by: float | None = None
            earlier = self._stopper.hand_over()
            if earlier is not None:
                # A stop asked for earlier is not confirmed yet (say a no_data abort on a deck
                # gone silent): the person has been waiting since then, so its alarm time
                # holds. Counting afresh from this press would put `stop_unconfirmed` off by
                # however late the press came (soak seed 300).
                earlier_asked_at, alarm_by = earlier
                asked_at = min(asked_at, earlier_asked_at)
            # The workout ends the moment the stop is asked for, whatever the link does next.
            if state.active or state.phase is Phase.IDLE:
                self._endings.end_aborted(AbortReason.EMERGENCY_STOP, "emergency stop")
            if self._link.connection_state is ConnectionState.CONNECTED:
                accepted = await self._governor.emergency_stop(AbortReason.EMERGENCY_STOP.value)
            else:
                accepted = False
                self._stopper.stop_on_reconnect = True
                self._log.warning(
                    "emergency_stop_while_disconnected",
                    hint="Stop is sent first thing when the treadmill is back; pull the safety "
                    "key if someone is on the belt",
                )
            if self._link.connection_state is ConnectionState.CONNECTED:
                # Verification carries on from here: no second Stop right after an accepted
                # one. The cancelled executor finishes in the session's TaskGroup; the answer
                # does not wait for it.
                self._stopper.request(stop_accepted=accepted, asked_at=asked_at, alarm_by=alarm_by)
        except Exception as error:  # noqa: BLE001 - emergency_stop must never raise
            self._log.warning("emergency_stop_error", error=repr(error))
            return StopOutcome.NOT_CONFIRMED
        if self._observer.state() is BeltState.STANDING:
            return StopOutcome.BELT_STANDING
        return StopOutcome.STOP_SENT if accepted else StopOutcome.NOT_CONFIRMED
