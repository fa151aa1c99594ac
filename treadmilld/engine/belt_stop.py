"""Stopping the belt, for the safety governor: Stop, and Pause when the deck refuses Stop; the
belt judged as told to stand from the moment a stop is on its way, its standing counted only
from records after the deck has answered.

`BeltStopper` is a part of `SafetyGovernor`: the governor locks itself out first (a stop
without a lock-out would let a queued write start the belt again), then hands the stop to it.
"""

from __future__ import annotations

import asyncio

import structlog

from treadmilld.ble.api import ControlRejectedError, LinkError, TreadmillLink
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.control_state import ControlState
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

# How long emergency_stop waits for the deck to answer Stop before it reports "not confirmed"
# (design choice: pyftms waits 2 s for an answer; slow decks get more).
EMERGENCY_STOP_TIMEOUT_S = 5.0


class BeltStopper:
    def __init__(
        self, link: TreadmillLink, clock: Clock, observer: BeltObserver, state: ControlState
    ) -> None:
        self._link = link
        # Every line about this treadmill carries its id (docs/configuration.md).
        self._log = _log.bind(treadmill_id=link.treadmill_id)
        self._clock = clock
        self._observer = observer
        self._belt = state.belt
        self._turns = state.turns
        self._judge = state.judge
        self._speed = state.speed

    def halted(self) -> None:
        """The belt is told to stand from now on (a Stop or Pause on its way, or the treadmill
        stopped it itself)."""
        now = self._clock.now()
        belt = self._belt
        told_to_move = belt.told_to_move
        if told_to_move:
            # Standing counts only from records after this: earlier ones may predate a Start
            # the belt was still obeying. (A repeated Stop to a belt already told to stand
            # does not restart the count.) Again once the deck answers the Stop or Pause.
            self._observer.count_standing_from(now)
            belt.halt_pending = True
        measured = self._observer.speed_kmh or 0.0
        speed = max(measured, self._speed.highest_kmh) if belt.moving else measured
        belt.halted(now, self._turns.facing)
        self._judge.halted(told_to_move=told_to_move, from_kmh=speed)

    def halt_answered(self) -> None:
        """The deck answered the first Stop or Pause sent to a belt told to move (or the write
        ended without an answer): it acts on it now, so standing counts from the records after
        this (a belt started and stopped again between two records may have moved although no
        record shows it; soak seeds 1900 and 1901)."""
        if self._belt.halt_pending:
            self._belt.halt_pending = False
            self._observer.count_standing_from(self._clock.now())

    async def pause(self) -> None:
        """Stop/Pause with 'pause'; standing counts from its answer."""
        await self._link.pause_belt()
        self.halted()
        self._belt.halt_pending = False  # marked after the answer: counted from it

    async def stop(self) -> None:
        """Stop/Pause with 'stop', once."""
        self.halted()
        try:
            await self._link.stop_belt()
        finally:
            self.halt_answered()

    async def attempt(self) -> bool:
        """One rung of the stop ladder: Stop, and if the deck refuses it, Pause (the link asks
        for control again on Control Not Permitted). True if the deck accepted one of them."""
        self.halted()
        try:
            await self._link.stop_belt()
        except ControlRejectedError as refused:
            self._log.warning("stop_refused", result=refused.result, error=str(refused))
            try:
                await self._link.pause_belt()
            except ControlRejectedError as error:
                self._log.warning("pause_refused", result=error.result, error=str(error))
                return False
            finally:
                self.halt_answered()
        finally:
            self.halt_answered()
        return True

    async def emergency(self, reason: str) -> bool:
        """A stop attempt bounded by `EMERGENCY_STOP_TIMEOUT_S`. Never raises; True if the deck
        accepted Stop (or Pause)."""
        try:
            async with asyncio.timeout(EMERGENCY_STOP_TIMEOUT_S):
                accepted = await self.attempt()
        except (LinkError, TimeoutError) as error:
            self._log.warning("emergency_stop_failed", reason=reason, error=str(error))
            return False
        self._log.warning("emergency_stop_sent", reason=reason, accepted=accepted)
        return accepted
