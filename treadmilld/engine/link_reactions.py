"""What the session does with each link event: records, the deck's statuses, link loss and
reconnects.

A record feeds the measured belt and the workout's totals, and the belt is judged against what
it was told. The safety key, a console stop or pause, a console Start mid-workout and control
withdrawn abort the workout. After a link loss the belt is stopped first thing once the link is
back, because a treadmill may keep running on its own.
"""

from __future__ import annotations

import structlog

from treadmilld.ble.api import (
    LinkConnected,
    LinkEvent,
    LinkLost,
    LinkLostCause,
    MachineStatusReceived,
    TelemetryReceived,
)
from treadmilld.engine.api import AbortReason, Direction
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.session_state import SessionState
from treadmilld.engine.verified_stop import BeltStopper
from treadmilld.engine.workout_endings import WorkoutEndings
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

_log = structlog.get_logger(__name__)


class LinkReactions:
    def __init__(
        self,
        state: SessionState,
        *,
        treadmill_id: str,
        governor: SafetyGovernor,
        observer: BeltObserver,
        stopper: BeltStopper,
        endings: WorkoutEndings,
    ) -> None:
        self._state = state
        self._log = _log.bind(treadmill_id=treadmill_id)
        self._governor = governor
        self._observer = observer
        self._stopper = stopper
        self._endings = endings

    async def react(self, event: LinkEvent) -> None:
        if isinstance(event, TelemetryReceived):
            await self._on_telemetry(event)
        elif isinstance(event, MachineStatusReceived):
            await self._on_status(event)
        elif isinstance(event, LinkLost):
            await self._on_link_lost(event)
        elif isinstance(event, LinkConnected):
            self._on_connected(event)

    async def _on_telemetry(self, event: TelemetryReceived) -> None:
        state = self._state
        state.telemetry_arrived(event.at)
        data = event.telemetry.data
        self._observer.on_record(data.instantaneous_speed_kmh, data.inclination_pct, event.at)
        if state.active:
            facing = self._governor.facing or Direction.FORWARD
            state.totals.add_sample(
                event.at, data.instantaneous_speed_kmh, data.inclination_pct, facing
            )
        await self.judge_belt()

    async def judge_belt(self) -> None:
        """Act on what the measured belt shows against what it was told."""
        fault = self._governor.check_measured()
        if fault is None:
            return
        if self._state.active:
            await self._endings.abort(fault.reason, fault.detail)
            return
        if not self._stopper.pending:
            self._log.warning(
                "belt_fault_outside_workout",
                reason=fault.reason.value,
                detail=fault.detail,
            )
            self._governor.lock_out(fault.reason.value)
            self._stopper.request()

    async def _on_status(self, event: MachineStatusReceived) -> None:
        status = event.status
        abort = self._endings.abort
        if isinstance(status, StoppedBySafetyKey):
            self._governor.belt_stopped_by_treadmill()
            await abort(AbortReason.SAFETY_KEY, "the safety key was pulled")
        elif isinstance(status, StoppedOrPausedByUser):
            self._governor.belt_stopped_by_treadmill()
            if status.kind is StopKind.PAUSE:
                await abort(AbortReason.PAUSED_AT_CONSOLE, "paused at the console")
            else:
                await abort(AbortReason.STOPPED_AT_CONSOLE, "stopped at the console")
        elif isinstance(status, ControlPermissionLost | ResetStatus):
            await abort(
                AbortReason.CONTROL_LOST,
                "the treadmill withdrew control (another app, the console or a reset)",
            )
        elif isinstance(status, TargetSpeedChanged | TargetInclineChanged):
            self._on_console_target(status)
        elif isinstance(status, StartedOrResumedByUser):
            if self._state.active:
                # Console Start (FTMS §4.17, status 0x04) aborts a running profile: design choice.
                await abort(
                    AbortReason.STARTED_AT_CONSOLE,
                    "the belt was started at the console mid-workout",
                )
            else:
                self._governor.note_console_start()

    def _on_console_target(self, status: TargetSpeedChanged | TargetInclineChanged) -> None:
        """A target changed at the deck mid-workout (a console knob, or a deck echoing its
        deceleration): the executor brings it back within the limits and the plan."""
        executor = self._state.executor
        if not self._state.active or executor is None:
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
        executor.recheck()

    async def _on_link_lost(self, event: LinkLost) -> None:
        self._state.totals.gap()
        self._observer.forget()
        if self._governor.belt_moving or self._state.active or self._stopper.pending:
            # The treadmill may keep running by itself: stop it as soon as the link is back.
            self._stopper.stop_on_reconnect = True
        reason = (
            AbortReason.NO_DATA if event.cause is LinkLostCause.NO_DATA else AbortReason.LINK_LOST
        )
        await self._endings.abort(reason, f"link lost: {event.reason}", stop_belt=False)
        self._governor.belt_stopped_by_treadmill()

    def _on_connected(self, event: LinkConnected) -> None:
        self._log.info("treadmill_connected", name=event.capabilities.name)
        self._observer.forget()
        self._governor.forget_targets()
        if self._stopper.stop_on_reconnect:
            # Stop is the first thing the deck hears after a reconnect.
            self._stopper.stop_on_reconnect = False
            self._log.warning("stopping_belt_after_reconnect")
            self._stopper.request(restart=True)
