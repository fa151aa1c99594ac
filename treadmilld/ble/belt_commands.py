"""The belt rules of the link's commands: what each `TreadmillLink` command writes, and when.

- Start is sent only once the first record says whether the belt moves, never to a belt
  already running (some decks stop on a second Start: TM11GY), and not again while it spins
  up.
- A target is clamped and rounded in the deck's own units (`control.py`); on decks with the
  start gate (KingSmith, 3G Cardio) a speed waits for the belt to move and settle, and a stop
  or pause meanwhile cancels it.
- Incline-table decks get the index of the table entry at or below the asked percent.
- A Stop or Pause refused with Operation Failed counts as done on a belt that stands or is
  already coasting to a halt.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import structlog

from treadmilld.ble.api import (
    SET_TARGET_SPEED_REQUEST,
    BeltNotMovingError,
    ControlRejectedError,
    LinkError,
    Telemetry,
)
from treadmilld.ble.config import LinkSettings
from treadmilld.ble.control import INCLINATION_DECIMALS, clamp_to_range, speed_to_write
from treadmilld.ble.control_channel import ControlChannel
from treadmilld.ble.quirks import speed_from_deck
from treadmilld.ble.session import LinkSession
from treadmilld.ftms import (
    Reset,
    ResultCode,
    SetTargetInclination,
    SetTargetSpeed,
    StartOrResume,
    StopKind,
    StopOrPause,
)
from treadmilld.ftms.vendor import incline_table_index, incline_table_value
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import sleep_until_set

_log = structlog.get_logger(__name__)


class BeltCommands:
    """The link's commands, on its current connection."""

    def __init__(
        self,
        treadmill_id: str,
        settings: LinkSettings,
        *,
        clock: Clock,
        channel: ControlChannel,
        require_session: Callable[[str], LinkSession],
        telemetry: Callable[[], Telemetry],
    ) -> None:
        """`require_session(what)` is the current connection, or raises `NotConnectedError`
        saying what could not be done; `telemetry()` is the link's latest measured values."""
        self._id = treadmill_id
        self._settings = settings
        self._clock = clock
        self._channel = channel
        self._require_session = require_session
        self._telemetry = telemetry
        self._log = _log.bind(treadmill_id=treadmill_id)

    async def start_belt(self) -> None:
        session = self._require_session("start the belt")
        self._channel.require_control_point(session, "Start")
        belt = session.belt
        stops_before = belt.stops
        async with belt.start_lock:
            # Whether the belt moves is only known from data: wait for the first record.
            if not await sleep_until_set(
                belt.first_record, self._settings.liveness_timeout_s, self._clock
            ):
                raise LinkError(
                    f"{self._id}: no treadmill data yet, so whether the belt is moving is "
                    "unknown; not sending Start. Retry in a moment"
                )
            if belt.stops != stops_before:
                raise LinkError(
                    f"{self._id}: the belt was stopped while Start waited; not starting it"
                )
            if self._telemetry().belt_moving and not belt.stopped_since_moving_began:
                # Running: a second Start is at best refused, at worst a stop (TM11GY). A belt
                # still coasting after a stop or pause does get its Start (resume).
                self._log.info("start_skipped", reason="belt already moving")
                return
            pending_since = belt.start_pending_since
            if pending_since is not None and (
                session.quirks.start_toggles_belt
                or self._clock.now() - pending_since < self._settings.start_gate_timeout_s
            ):
                # A second Start while the belt spins up stops it on some decks (TM11GY).
                self._log.info("start_skipped", reason="start already sent, belt spinning up")
                return
            await self._channel.command(session, StartOrResume(), "Start")
            belt.start_pending_since = self._clock.now()

    async def set_target_speed(self, speed_kmh: float) -> float:
        what = SET_TARGET_SPEED_REQUEST
        session = self._require_session("set the speed")
        self._channel.require_control_point(session, what)
        deck_range = session.deck_speed_range
        if deck_range is None:
            raise ControlRejectedError(
                f"{self._id}: the treadmill exposes no Supported Speed Range, so its speed "
                "cannot be controlled",
                request=what,
                result=ResultCode.NOT_SUPPORTED,
            )
        quirks = session.quirks
        deck_value, written_kmh = speed_to_write(
            speed_kmh,
            deck_range,
            range_unit=quirks.speed_range_unit,
            target_unit=quirks.target_speed_unit,
        )
        lowest_kmh = speed_from_deck(deck_range.minimum_kmh, quirks.speed_range_unit)
        highest_kmh = speed_from_deck(deck_range.maximum_kmh, quirks.speed_range_unit)
        if not lowest_kmh <= speed_kmh <= highest_kmh:
            self._log.info("target_clamped", target="speed", asked=speed_kmh, written=written_kmh)
        if session.quirks.start_gate:
            await self._wait_for_belt(session, stops_before=session.belt.stops)
        # On mph decks the value encoded is mph, in the same 0.01 resolution (TM11GY, JFTM).
        await self._channel.command(session, SetTargetSpeed(speed_kmh=deck_value), what)
        return written_kmh

    async def _wait_for_belt(self, session: LinkSession, *, stops_before: int) -> None:
        """Start gate (KingSmith): the belt moves, and has been moving for the settle time.

        A stop or pause while waiting cancels the speed change: it is never sent afterwards.
        """
        settings = self._settings
        belt = session.belt
        if not await sleep_until_set(belt.moving, settings.start_gate_timeout_s, self._clock):
            raise BeltNotMovingError(
                f"{self._id}: the belt did not start moving within "
                f"{settings.start_gate_timeout_s:g} s, and this treadmill must not get a speed "
                "while standing still; start the belt first (start_belt or the console)"
            )
        moving_since = belt.moving_since
        if moving_since is not None:
            settle_left = moving_since + settings.start_gate_settle_s - self._clock.now()
            if settle_left > 0:
                await self._clock.sleep(settle_left)
        if belt.stops != stops_before:
            raise BeltNotMovingError(
                f"{self._id}: the belt was stopped or paused while this speed change waited "
                "for it; the speed was not sent. Start the belt again first"
            )
        if not belt.moving.is_set():
            raise BeltNotMovingError(
                f"{self._id}: the belt stopped while settling after Start; start it again first"
            )

    async def set_target_inclination(self, inclination_pct: float) -> float:
        what = "Set Target Inclination"
        session = self._require_session("set the incline")
        self._channel.require_control_point(session, what)
        table = session.quirks.incline_table
        if table is not None:
            return await self._set_incline_by_table(session, table, inclination_pct, what)
        incline_range = session.inclination_range
        if incline_range is None:
            raise ControlRejectedError(
                f"{self._id}: the treadmill exposes no Supported Inclination Range, so its "
                "incline cannot be controlled",
                request=what,
                result=ResultCode.NOT_SUPPORTED,
            )
        value = clamp_to_range(
            inclination_pct,
            incline_range.minimum_pct,
            incline_range.maximum_pct,
            incline_range.increment_pct,
            decimals=INCLINATION_DECIMALS,
            what="target inclination",
        )
        if not incline_range.minimum_pct <= inclination_pct <= incline_range.maximum_pct:
            self._log.info("target_clamped", target="incline", asked=inclination_pct, written=value)
        await self._channel.command(session, SetTargetInclination(inclination_pct=value), what)
        return value

    async def _set_incline_by_table(
        self, session: LinkSession, table: tuple[float, ...], inclination_pct: float, what: str
    ) -> float:
        """Incline-table decks (Kettler, iConcept: qdomyos-zwift device classes) take the index
        of a table entry as the Set Target Inclination parameter (raw sint16 = index).

        The highest entry at or below the asked percent is written, so the belt never inclines
        more than asked (within the table); the percent of that entry is returned.
        """
        if not math.isfinite(inclination_pct):
            raise LinkError(
                f"target inclination {inclination_pct!r} is not a finite number; send a number "
                "in range"
            )
        clamped = min(max(inclination_pct, table[0]), table[-1])
        index = incline_table_index(table, clamped)
        value = incline_table_value(table, index)
        if clamped != inclination_pct:
            self._log.info("target_clamped", target="incline", asked=inclination_pct, written=value)
        # The encoder scales percent by 10 (0.1 % resolution): index / 10 puts the index itself
        # on the wire.
        await self._channel.command(session, SetTargetInclination(inclination_pct=index / 10), what)
        return value

    async def reset_targets(self) -> None:
        what = "Reset"
        session = self._require_session("reset the targets")
        self._channel.require_control_point(session, what)
        # The deck may notify its Reset status before or after it answers, so the window opens
        # before the write and stays open one answer time after it.
        session.control.own_reset_until = math.inf
        try:
            await self._channel.command(session, Reset(), what)
        finally:
            session.control.own_reset_until = (
                self._clock.now() + self._settings.control_response_timeout_s
            )
        session.control.granted = False
        session.belt.start_pending_since = None
        self._log.info("targets_reset")

    async def pause_belt(self) -> None:
        await self._stop_or_pause(StopKind.PAUSE, "Pause")

    async def stop_belt(self) -> None:
        await self._stop_or_pause(StopKind.STOP, "Stop")

    async def _stop_or_pause(self, kind: StopKind, what: str) -> None:
        session = self._require_session(what.lower())
        belt = session.belt
        # A stop or pause carried out since the belt began moving means it is coasting to a
        # halt already.
        coasting = belt.coasting
        belt.stops += 1  # before the write: a speed change waiting at the gate gives up
        try:
            await self._channel.command(
                session, StopOrPause(kind=kind), what, ask_control_first=False
            )
            belt.halts += 1
        except ControlRejectedError as error:
            # FTMS answers Stop on a stopped belt with Operation Failed (FTMS §4.16.2.22): a belt
            # standing still, or coasting after an accepted stop, is where the caller wants it.
            if error.result is not ResultCode.OPERATION_FAILED or (
                self._telemetry().belt_moving and not coasting
            ):
                raise
            self._log.info("stop_not_needed", request=what, reason="belt already stopped")
        belt.start_pending_since = None
