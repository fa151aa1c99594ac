"""The session's watchdog: a workout whose deck sends no data, and the belt judged between
records, looked at on the session's clock every `WATCHDOG_INTERVAL_S`."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from treadmilld.engine.api import AbortReason
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.session_state import SessionState
from treadmilld.runtime.clock import Clock

# How often the no-data watchdog looks (clock seconds).
WATCHDOG_INTERVAL_S = 0.5


class SessionWatchdog:
    def __init__(
        self,
        state: SessionState,
        *,
        governor: SafetyGovernor,
        clock: Clock,
        judge_belt: Callable[[], Awaitable[None]],
        abort: Callable[[AbortReason, str], Awaitable[None]],
    ) -> None:
        self._state = state
        self._governor = governor
        self._clock = clock
        self._judge_belt = judge_belt
        self._abort = abort

    async def run(self) -> None:
        state = self._state
        while True:
            await self._clock.sleep(WATCHDOG_INTERVAL_S)
            # Deadlines (a target never reached, coasting that never ends) pass between records
            # too; judge the belt on the clock as well.
            await self._judge_belt()
            limits = self._governor.limits
            if not state.active or limits is None or state.started_at is None:
                continue
            # Any phase of a workout, not only a moving belt: a turn waits for the belt to be
            # measured standing, which a silent deck would make it do for ever. (The link's
            # own liveness check expects data at all times too.)
            last = max(state.telemetry_at or -math.inf, state.started_at)
            if self._clock.now() - last > limits.telemetry_timeout_s:
                await self._abort(
                    AbortReason.NO_DATA,
                    f"no treadmill data for more than {limits.telemetry_timeout_s:g} s",
                )
