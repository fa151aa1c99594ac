"""The person's commands to a running workout: pause, resume, skip a segment, confirm a turn,
nudge the speed or the incline.

Each is checked against the workout's phase and refused (`CommandRejectedError`) with what to
do instead; an accepted one is handed to the executor, which carries it out on its own clock.
Starting, stopping and the emergency stop are the session's own (`session.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from treadmilld.engine.api import CommandRejectedError, Phase
from treadmilld.engine.executor import WorkoutExecutor
from treadmilld.engine.governor import LimitNotice, SafetyGovernor
from treadmilld.engine.session_state import SessionState


def active_executor(state: SessionState) -> WorkoutExecutor:
    if not state.active or state.executor is None:
        raise CommandRejectedError("no_workout", "no workout is running; start a profile")
    return state.executor


def pause(state: SessionState) -> None:
    executor = active_executor(state)
    if executor.phase is Phase.PAUSED or executor.pause_pending:
        raise CommandRejectedError("invalid_state", "the workout is already paused")
    executor.request_pause()


def resume(state: SessionState) -> None:
    executor = active_executor(state)
    if executor.phase is not Phase.PAUSED and not executor.pause_pending:
        raise CommandRejectedError("invalid_state", "the workout is not paused")
    executor.request_resume()


def skip_segment(state: SessionState) -> None:
    executor = active_executor(state)
    if executor.phase in (Phase.TURNING, Phase.AWAITING_CONFIRMATION):
        raise CommandRejectedError(
            "invalid_state", "a turn cannot be cut short; wait for it to finish"
        )
    if executor.phase is Phase.PAUSED or executor.pause_pending:
        raise CommandRejectedError("invalid_state", "the workout is paused; resume first")
    executor.request_skip()


def confirm_turn(state: SessionState) -> None:
    executor = active_executor(state)
    if executor.phase is not Phase.AWAITING_CONFIRMATION:
        raise CommandRejectedError("invalid_state", "no turn is waiting for confirmation right now")
    executor.confirm_turn()


def _walking_executor(state: SessionState, what: str) -> WorkoutExecutor:
    executor = active_executor(state)
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


def _nudge(
    state: SessionState,
    what: str,
    wanted: float,
    target_for: Callable[[float], tuple[float, str | None]],
    nudge: Callable[[WorkoutExecutor, float], None],
    *,
    on_limit: Callable[[LimitNotice], None],
) -> float:
    """`wanted` for the rest of the walking segment as far as the limits allow (`target_for`
    says where it settles and which limit changed it); the target set."""
    executor = _walking_executor(state, what)
    target, limit = target_for(wanted)
    if limit is not None:
        on_limit(LimitNotice(limit, wanted, target))
    nudge(executor, target)
    return target


def set_speed(
    state: SessionState,
    governor: SafetyGovernor,
    speed_kmh: float,
    *,
    on_limit: Callable[[LimitNotice], None],
) -> float:
    """The walk's speed for the rest of its segment, within the limits; the target set."""
    if not math.isfinite(speed_kmh) or speed_kmh <= 0:
        raise CommandRejectedError(
            "invalid_argument",
            f"speed must be above 0 km/h (use pause to stop), got {speed_kmh}",
        )
    return _nudge(
        state,
        "speed",
        speed_kmh,
        governor.speed_target_for,
        WorkoutExecutor.nudge_speed,
        on_limit=on_limit,
    )


def set_incline(
    state: SessionState,
    governor: SafetyGovernor,
    incline_pct: float,
    *,
    on_limit: Callable[[LimitNotice], None],
) -> float:
    """The walk's incline for the rest of its segment, within the limits; the target set."""
    if not math.isfinite(incline_pct):
        raise CommandRejectedError(
            "invalid_argument", f"incline must be a number, got {incline_pct}"
        )
    return _nudge(
        state,
        "incline",
        incline_pct,
        governor.incline_target_for,
        WorkoutExecutor.nudge_incline,
        on_limit=on_limit,
    )
