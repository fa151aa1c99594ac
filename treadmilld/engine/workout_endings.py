"""How a workout ends: finished, stopped by the person, or aborted.

An abort locks the governor, ends the workout as ABORTED (one `workout_aborted` per workout)
and stops the belt until it is measured standing; only a new start leaves ABORTED. A finish or
the person's own stop ends with a summary instead of an alarm, and the belt is locked out and
its stop verified exactly as after an abort.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from treadmilld.ble.api import (
    SET_TARGET_SPEED_REQUEST,
    ControlRejectedError,
    LinkError,
    NotConnectedError,
    TreadmillLink,
)
from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    Phase,
    SessionEvent,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutStopped,
)
from treadmilld.engine.belt import STANDSTILL_KMH, BeltObserver
from treadmilld.engine.executor import WorkoutExecutor
from treadmilld.engine.governor import BeltFaultError, GovernorRefusedError, SafetyGovernor
from treadmilld.engine.session_state import SessionState
from treadmilld.engine.verified_stop import BeltStopper
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)


class WorkoutEndings:
    def __init__(
        self,
        state: SessionState,
        *,
        link: TreadmillLink,
        governor: SafetyGovernor,
        observer: BeltObserver,
        stopper: BeltStopper,
        clock: Clock,
        emit: Callable[[SessionEvent], None],
        changed: Callable[[], None],
    ) -> None:
        self._state = state
        self._link = link
        self._log = _log.bind(treadmill_id=link.treadmill_id)
        self._governor = governor
        self._observer = observer
        self._stopper = stopper
        self._clock = clock
        self._emit = emit
        self._changed = changed

    async def abort(self, reason: AbortReason, detail: str, *, stop_belt: bool = True) -> None:
        """Lock the governor, end the workout as ABORTED and stop the belt until it is measured
        standing. Idempotent: one `workout_aborted` per workout."""
        self._governor.lock_out(reason.value)
        if stop_belt:
            # From now on the belt is expected to slow down, not to follow a target.
            self._governor.stopping()
        if not self._state.active:
            if stop_belt and (
                self._governor.belt_moving or self._observer.state() is not BeltState.STANDING
            ):
                self._stopper.request()
            return
        self.end_aborted(reason, detail)
        await self.cancel_executor()
        if stop_belt:
            self._stopper.request()

    def end_aborted(self, reason: AbortReason, detail: str) -> None:
        state = self._state
        if state.phase is Phase.ABORTED:
            return
        state.end_workout(reason.value)
        state.phase = Phase.ABORTED
        state.abort_reason = reason
        self._log.warning("workout_aborted", reason=reason.value, detail=detail)
        self._emit(
            WorkoutAborted(
                treadmill_id=self._link.treadmill_id,
                at=self._clock.now(),
                reason=reason,
                detail=detail,
            )
        )
        self._changed()

    async def cancel_executor(self) -> None:
        task = self._state.executor_task
        self._state.executor_task = None
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

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

    async def drive(self, executor: WorkoutExecutor) -> None:
        """Run the workout to its end and end it accordingly (the workout's own task)."""
        try:
            finished = await executor.run()
        except NotConnectedError as error:
            await self.abort(AbortReason.LINK_LOST, str(error), stop_belt=False)
            self._stopper.stop_on_reconnect = True
            return
        except BeltFaultError as fault:
            await self.abort(fault.reason, fault.detail)
            return
        except (LinkError, GovernorRefusedError) as error:
            await self.abort(*self._failed_command_reason(error))
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - logged with its traceback below
            self._log.exception("workout_executor_crashed")
            await self.abort(AbortReason.INTERNAL_ERROR, f"the workout failed: {error!r}")
            return
        state = self._state
        if not state.active:
            return
        plan = state.plan
        if not finished:
            # The person's own stop: the executor has ramped the belt down and sent Stop. It
            # ends like a finish (a summary, not an alarm), and the belt is still locked out
            # and verified standing exactly as after an abort.
            self._governor.lock_out("stop")
        phase = Phase.FINISHED if finished else Phase.STOPPED
        summary = WorkoutFinished if finished else WorkoutStopped
        state.end_workout(phase.value)
        state.phase = phase
        totals = state.totals
        self._emit(
            summary(
                treadmill_id=self._link.treadmill_id,
                at=self._clock.now(),
                profile=plan.profile if plan else "",
                elapsed_s=state.elapsed_s(),
                distance_forward_m=totals.distance_forward_m,
                distance_backward_m=totals.distance_backward_m,
                calories_kcal=totals.calories_kcal,
            )
        )
        self._log.info(summary.type, kcal=round(totals.calories_kcal, 1))
        self._changed()
        self._stopper.request()
