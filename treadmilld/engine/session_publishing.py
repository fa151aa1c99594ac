"""What a session reports as it happens: its events, to any number of subscribers.

Each subscriber has a bounded queue; a stalled reader loses old news and never blocks the engine
(`treadmilld.runtime.fanout`). A state change is published with the snapshot at that moment; a
limit that changed a request (`LimitApplied`) is logged and published once, not again for the
same notice until another comes or a new workout starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import structlog

from treadmilld.engine.api import LimitApplied, SessionEvent, SessionSnapshot, StateChanged
from treadmilld.engine.governor import LimitNotice
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.fanout import FanOut

_log = structlog.get_logger(__name__)

# Events kept per subscriber before the oldest are dropped (a stalled reader loses old news,
# never blocks the engine; runtime/fanout.py has the policy).
SUBSCRIBER_QUEUE_SIZE = 1000


class SessionPublisher:
    def __init__(
        self, treadmill_id: str, clock: Clock, snapshot: Callable[[], SessionSnapshot]
    ) -> None:
        self._treadmill_id = treadmill_id
        self._log = _log.bind(treadmill_id=treadmill_id)
        self._clock = clock
        self._snapshot = snapshot
        self._subscribers: FanOut[SessionEvent] = FanOut(
            f"session {treadmill_id}", maxsize=SUBSCRIBER_QUEUE_SIZE
        )
        self._last_limit_notice: LimitNotice | None = None

    def subscribe(self) -> AsyncIterator[SessionEvent]:
        return self._subscribers.subscribe()

    def emit(self, event: SessionEvent) -> None:
        self._subscribers.publish(event)

    def changed(self) -> None:
        self.emit(
            StateChanged(
                treadmill_id=self._treadmill_id, at=self._clock.now(), snapshot=self._snapshot()
            )
        )

    def limit_applied(self, notice: LimitNotice) -> None:
        if notice == self._last_limit_notice:
            return
        self._last_limit_notice = notice
        self._log.info(
            "limit_applied", limit=notice.limit, requested=notice.requested, applied=notice.applied
        )
        self.emit(
            LimitApplied(
                treadmill_id=self._treadmill_id,
                at=self._clock.now(),
                limit=notice.limit,
                requested=notice.requested,
                applied=notice.applied,
            )
        )

    def new_workout(self) -> None:
        """A new workout reports its first limit notice even when the last one was the same."""
        self._last_limit_notice = None

    def end(self) -> None:
        """The session is over: every subscription ends."""
        self._subscribers.end_subscriptions()
