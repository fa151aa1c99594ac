"""The session's heart-rate intake: readings in, filtered, judged by the governor, acted on.

A strap's readings (`WorkoutSession.heart_rate_received`) and the treadmill's own heart-rate
field (each Treadmill Data record) are filtered (range, contact, zero, spikes) into the
session's `HeartRateSources`; after each, the governor judges the heart rate that counts now.
Its caps changing wakes the executor to write within them; its verdict (the hard ceiling, or no
valid heart rate where one is required) pauses the workout the turn-safe way, with an event
saying why. This part decides nothing itself: the ceilings and caps are the governor's
(`treadmilld.engine.heart_rate_guard`, docs/safety.md).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from treadmilld.ble.api import TelemetryReceived
from treadmilld.engine.api import HeartRateCeilingReached, HeartRateMissing, Phase, SessionEvent
from treadmilld.engine.governor import SafetyGovernor
from treadmilld.engine.heart_rate import HeartRateReading, Rejection
from treadmilld.engine.heart_rate_guard import HeartRateVerdict
from treadmilld.engine.session_state import SessionState
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)


class HeartRateIntake:
    def __init__(
        self,
        state: SessionState,
        *,
        treadmill_id: str,
        governor: SafetyGovernor,
        clock: Clock,
        emit: Callable[[SessionEvent], None],
    ) -> None:
        self._state = state
        self._treadmill_id = treadmill_id
        self._log = _log.bind(treadmill_id=treadmill_id)
        self._governor = governor
        self._clock = clock
        self._emit = emit

    def strap_reading(self, bpm: int | None, contact: bool | None, at: float) -> None:
        """A heart-rate strap's reading (Heart Rate Measurement), filtered, then judged."""
        self._note_rejection(
            "strap", self._state.heart_rate.strap.feed(bpm, contact=contact, at=at)
        )
        self.check()

    def telemetry(self, event: TelemetryReceived) -> None:
        """A Treadmill Data record: its heart-rate field, when it has one, then the judgement."""
        bpm = event.record.heart_rate_bpm
        if bpm is not None:
            # The treadmill's own field (hand grips or a strap paired to the deck):
            # the fallback while no strap reading is fresh. It says nothing of contact.
            self._note_rejection(
                "treadmill",
                self._state.heart_rate.treadmill.feed(bpm, contact=None, at=event.at),
            )
        # Checked on every record too: a strap gone silent sends nothing to check on.
        self.check()

    def _note_rejection(self, source: str, outcome: HeartRateReading | Rejection) -> None:
        if isinstance(outcome, Rejection) and outcome is not Rejection.MISSING:
            self._log.debug("heart_rate_rejected", source=source, reason=outcome.value)

    def current(self) -> HeartRateReading | None:
        """The filtered heart rate that counts now (strap while fresh, else the treadmill's)."""
        return self._state.heart_rate_now()

    def check(self) -> None:
        """The governor judges the heart rate; a verdict pauses the workout the turn-safe way
        (the executor's pause cycle: ramp down, Pause, measured standstill) until the rider
        resumes, with an event saying why."""
        state = self._state
        executor = state.executor
        reading = self.current()
        walking = (
            state.active
            and executor is not None
            and executor.phase is Phase.RUNNING
            and not executor.pause_pending
        )
        result = self._governor.check_heart_rate(reading, walking=walking)
        if executor is None:
            return
        if result.eased or result.released:
            executor.recheck()
        if result.verdict is None:
            return
        limits = self._governor.limits
        now = self._clock.now()
        if result.verdict is HeartRateVerdict.CEILING and reading is not None and limits:
            ceiling = limits.heart_rate_ceiling_bpm or 0.0
            self._log.warning("heart_rate_ceiling", bpm=reading.bpm, ceiling_bpm=ceiling)
            self._emit(
                HeartRateCeilingReached(
                    treadmill_id=self._treadmill_id, at=now, bpm=reading.bpm, ceiling_bpm=ceiling
                )
            )
        else:
            missing = limits.heart_rate_missing_s if limits else 0.0
            self._log.warning("heart_rate_missing", missing_s=missing)
            self._emit(HeartRateMissing(treadmill_id=self._treadmill_id, at=now, missing_s=missing))
        executor.request_pause()
