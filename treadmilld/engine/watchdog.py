"""The session's watchdog: a workout whose deck sends no data, and the belt judged between
records.

It sleeps on the session's clock until the next thing it has to look at, and wakes early when
the session's state says something moved (a record arrived, a workout started):

- No data: in any phase of a workout the deck must send a record at least every
  `telemetry_timeout_s` (counted from the start until the first one). The watchdog wakes at
  that deadline and aborts with `no_data` once the deck has been silent for longer.
- The belt between records: the governor's deadlines (a target never reached, coasting that
  never ends) pass between records too, and the governor keeps them to itself, so there is no
  event for them: while the deck's data is fresh the belt is judged again when
  `BELT_JUDGE_INTERVAL_S` has passed since it was last judged (on a record or here). Once the
  data is stale the measured belt is UNKNOWN, which the governor does not judge, and the
  watchdog waits for the next record instead.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from treadmilld.engine.api import AbortReason, BeltState
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.session_state import SessionState
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_any

# The longest the measured belt goes unjudged while its data is fresh (clock seconds).
BELT_JUDGE_INTERVAL_S = 0.5
# A wake that comes a hair before its deadline (a loop's timer resolution, float rounding)
# sleeps at least this long before it looks again, so it never spins; a millisecond is far
# below any time the engine keeps.
MIN_SLEEP_S = 0.001


class SessionWatchdog:
    def __init__(
        self,
        state: SessionState,
        *,
        governor: SafetyGovernor,
        observer: BeltObserver,
        clock: Clock,
        judge_belt: Callable[[], Awaitable[None]],
        abort: Callable[[AbortReason, str], Awaitable[None]],
    ) -> None:
        self._state = state
        self._governor = governor
        self._observer = observer
        self._clock = clock
        self._judge_belt = judge_belt
        self._abort = abort

    async def run(self) -> None:
        clock = self._clock
        moved = self._state.deadline_moved
        judged_at = clock.now()
        while True:
            # Cleared before anything is read: news that comes while this looks wakes the
            # wait below at once.
            moved.clear()
            next_judge = self._next_judgement(judged_at)
            if next_judge is not None and clock.now() >= next_judge:
                await self._judge_belt()
                judged_at = clock.now()
                next_judge = judged_at + BELT_JUDGE_INTERVAL_S
            silence_deadline = await self._abort_if_silent()
            wake_at = min(
                next_judge if next_judge is not None else math.inf,
                silence_deadline if silence_deadline is not None else math.inf,
            )
            seconds = max(wake_at - clock.now(), MIN_SLEEP_S)
            await wait_any(events=(moved,), seconds=seconds, clock=clock)

    def _next_judgement(self, judged_at: float) -> float | None:
        """When the belt is next judged here: `BELT_JUDGE_INTERVAL_S` after it was last judged,
        here or on a record (every record is judged as it arrives); None while its state is
        unknown, which only a record changes."""
        if self._observer.state() is BeltState.UNKNOWN:
            return None
        record_at = self._state.telemetry_at
        last = judged_at if record_at is None else max(judged_at, record_at)
        return last + BELT_JUDGE_INTERVAL_S

    async def _abort_if_silent(self) -> float | None:
        """Abort with `no_data` if a workout's deck has been silent for longer than its
        `telemetry_timeout_s`; otherwise when that happens (None outside a workout)."""
        state = self._state
        limits = self._governor.limits
        if not state.active or limits is None or state.started_at is None:
            return None
        # Any phase of a workout, not only a moving belt: a turn waits for the belt to be
        # measured standing, which a silent deck would make it do for ever. (The link's own
        # liveness check expects data at all times too.)
        last = max(state.telemetry_at or -math.inf, state.started_at)
        timeout = limits.telemetry_timeout_s
        if self._clock.now() - last > timeout:
            await self._abort(AbortReason.NO_DATA, f"no treadmill data for more than {timeout:g} s")
            return None
        return last + timeout
