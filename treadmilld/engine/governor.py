"""The safety governor: the one place limits are enforced, between the engine and the link.

The executor and manual commands hold only a `SafetyGovernor`, never the `TreadmillLink`, so no
path can write an unchecked setpoint. Decisions that depend on the belt are taken from what the
deck *measures* (`treadmilld.engine.belt.BeltObserver`), never from acknowledgements: real decks
skip statuses, resume at old targets, decelerate slowly, ignore speed commands and refuse stops.

For every write it applies the effective limits (`treadmilld.engine.limits.EffectiveLimits`,
the strictest of config, clinical mode, profile and the treadmill's range):

- speed: at most the maximum for the way the user faces, at least the treadmill minimum, on the
  treadmill's increment (rounded towards the previous value, so rounding never adds speed);
- ramp: each speed write moves at most `ramp_rate x min(time since the last write, window)`
  from the previous one, up or down (the window, normally 1 s, stops a long steady spell from
  licensing a jump);
- restart: Start is written only while the belt is measured standing, with the restart speed
  written first (a deck that resumes at its last target then restarts slowly), the incline
  brought down (measured) to the turn maximum first; decks that refuse a target while standing
  get Start first and the restart speed at once;
- turns: the belt may move with the user facing the other way only after it has been
  *measured* standing for at least the turn time (standing counted from measured standstill);
  the last direction walked (before any walk: the way the first segment told the person to
  step on) is remembered across workouts and aborts;
- incline: at most the maximum for the way the user faces;
- backward budget: no start or speed-up backward once the session's backward time is used up;
- heart rate: above the soft ceiling incline, then speed, are capped lower step by step (the
  caps only ever lower a target, and the ramp brings the belt down to them); above the hard
  ceiling, or with no valid heart rate for too long where one is required, a verdict the
  session answers with the turn-safe pause (`heart_rate_guard`);
- lock-out: after an abort nothing but stop/pause is accepted until `arm()` (a new workout).

It also judges the measured belt against what it was told (`check_measured`): a belt that
stands while told to move (console stop or safety key on a deck that did not say so), moves
when nothing told it to, runs above its target, or does not follow a target in the time the
slowest deck needs. The session turns each verdict into an abort and a verified stop.

Clamping is reported through `on_limit` (LimitApplied events); refusals raise
`GovernorRefusedError` and write nothing.

The governor holds the limits, the lock-out and the one lock its writes queue on, and checks
every write here. Its parts each do one thing for it and decide nothing of their own:
`limit_clamps` (where a request lands under the limits), `control_state` (what the deck was
told and holds, how fast it answers), `turns` (which way the person faces, when a move is a
turn), `target_writes`, `belt_start` and `belt_stop` (the writes of a target, a Start and a stop,
in the order decks need), `belt_judge` (the measured belt against what it was told),
`heart_rate_guard` (the heart-rate ceilings), `governor_outcomes` (refusals, verdicts, limit
notices). Its class is written in two files: `governor_readings` holds what it shows of its
state (the first layer, reading only); this module builds it and holds every cap, check and write.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import structlog

from treadmilld.ble.api import TreadmillLink
from treadmilld.engine.api import BeltState, Direction
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.belt_start import BeltStarter
from treadmilld.engine.belt_stop import EMERGENCY_STOP_TIMEOUT_S, BeltStopper
from treadmilld.engine.control_state import ControlState
from treadmilld.engine.governor_outcomes import BeltFaultError, GovernorRefusedError, LimitNotice
from treadmilld.engine.governor_readings import GovernorReadings
from treadmilld.engine.heart_rate import HeartRateReading
from treadmilld.engine.heart_rate_guard import HeartRateCheck, HeartRateGuard
from treadmilld.engine.limit_clamps import incline_target_for, speed_target_for
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.target_writes import TargetWriter
from treadmilld.runtime.clock import Clock

__all__ = [
    "EMERGENCY_STOP_TIMEOUT_S",
    "BeltFaultError",
    "GovernorRefusedError",
    "LimitNotice",
    "SafetyGovernor",
]

_log = structlog.get_logger(__name__)

_EPS = 1e-6


class SafetyGovernor(GovernorReadings):
    """The one place limits are enforced: this file holds its construction, caps, checks and
    writes; what it shows of its state is in `governor_readings`."""

    def __init__(
        self,
        link: TreadmillLink,
        clock: Clock,
        *,
        observer: BeltObserver | None = None,
        on_limit: Callable[[LimitNotice], None] | None = None,
    ) -> None:
        self._link = link
        # Every line about this treadmill carries its id (docs/configuration.md).
        self._log = _log.bind(treadmill_id=link.treadmill_id)
        self._clock = clock
        self.observer = observer if observer is not None else BeltObserver(clock)
        self._on_limit = on_limit or (lambda _notice: None)
        self._lock = asyncio.Lock()
        self._limits: EffectiveLimits | None = None
        self._locked_out: str | None = "not armed"
        state = ControlState(self.observer, clock, lambda: self._limits)
        self._belt = state.belt
        self._turns = state.turns
        self._judge = state.judge
        self._answers = state.answers
        self._speed = state.speed
        self._incline = state.incline
        self._starter = BeltStarter(link, clock, self.observer, self._lock, state)
        self._stopper = BeltStopper(link, clock, self.observer, state)
        self._writer = TargetWriter(link, clock, self.observer, state, self._notice)
        self._heart = HeartRateGuard()

    # ----------------------------------------------------------------------------- caps

    def speed_target_for(self, speed_kmh: float) -> tuple[float, str | None]:
        """Where a requested speed would settle under the caps (ramping aside), and which
        limit changed it. For manual nudges, so the caller can report the real target."""
        capped = self._heart.cap_speed(speed_kmh)
        target, limit = speed_target_for(self._limits, self._turns.facing, capped)
        if limit is None and capped < speed_kmh - _EPS:
            limit = "heart_rate_soft_bpm"
        return target, limit

    def incline_target_for(self, incline_pct: float) -> tuple[float, str | None]:
        capped = self._heart.cap_incline(incline_pct)
        target, limit = incline_target_for(self._limits, self._turns.facing, capped)
        if limit is None and capped < incline_pct - _EPS:
            limit = "heart_rate_soft_bpm"
        return target, limit

    # ----------------------------------------------------------------------------- heart rate

    def check_heart_rate(
        self, reading: HeartRateReading | None, *, walking: bool
    ) -> HeartRateCheck:
        """Judge the filtered heart rate (None: no valid one now) while `walking` (a workout
        drives the moving belt): the soft ceiling lowers the incline cap, then the speed cap,
        one step at a time; a verdict asks for the turn-safe pause (the session's to give)."""
        result = self._heart.check(
            self._limits,
            reading,
            self._clock.now(),
            walking=walking and self._locked_out is None and self._belt.moving,
            speed_kmh=self._speed.kmh,
            incline_pct=self._incline.asked if self._incline.pct is not None else None,
        )
        if result.eased or result.released:
            self._log.info(
                "heart_rate_caps",
                bpm=reading.bpm if reading is not None else None,
                speed_cap_kmh=self._heart.speed_cap_kmh,
                incline_cap_pct=self._heart.incline_cap_pct,
            )
        return result

    # ----------------------------------------------------------------------------- turns

    def needs_turn(self, facing: Direction) -> bool:
        """The turn protocol must run before the belt moves this way (`TurnTracker`)."""
        return self._turns.needs_turn(facing)

    def turn_counted_down(self, facing: Direction) -> None:
        """The countdown to `facing` ran to its end: the next Start that way needs no other."""
        self._turns.counted_down(facing)

    def turn_wait_s(self, facing: Direction) -> float:
        """Seconds of measured standing still needed before the belt may move with the person
        facing `facing` (0 when no turn is involved). Infinite while the belt is not measured
        standing."""
        return self._turns.wait_s(facing, self._turn_pause_s())

    def segment_announced(self, facing: Direction) -> None:
        """A walking segment told the person to walk facing `facing` (`TurnTracker`)."""
        self._turns.segment_announced(facing)

    def turn_announced(self, facing: Direction) -> None:
        """The person was told to turn to `facing` (`TurnTracker`)."""
        self._turns.turn_announced(facing)

    def _turn_pause_s(self) -> float:
        return self._limits.turn_pause_s if self._limits is not None else 0.0

    # ----------------------------------------------------------------------------- arming

    def arm(self, limits: EffectiveLimits) -> None:
        """A new workout: new limits, backward budget reset, lock-out cleared. The belt's own
        state (moving or not, the way the person last walked, last targets) carries over."""
        self._limits = limits
        self._locked_out = None
        self._belt.new_workout(self._clock.now())
        self._turns.new_workout()
        self._heart.new_workout(self._clock.now())

    def lock_out(self, reason: str) -> None:
        """Refuse every moving write until the next `arm()`."""
        if self._locked_out is None:
            self._log.info("governor_locked_out", reason=reason)
        self._locked_out = reason

    def lock_out_if_armed_for_stop(self) -> None:
        """A stop without a lock-out would let a queued write start the belt again."""
        if self._locked_out is None:
            self.lock_out("stop")

    # ----------------------------------------------------------------------------- checks

    def _armed(self) -> EffectiveLimits:
        if self._locked_out is not None or self._limits is None:
            raise GovernorRefusedError(
                "locked_out",
                f"the governor refuses to move the belt ({self._locked_out}); "
                "start a profile to re-arm it",
            )
        return self._limits

    def _notice(self, limit: str, requested: float, applied: float) -> None:
        if abs(requested - applied) > _EPS:
            self._on_limit(LimitNotice(limit, requested, applied))

    def _turn_allowed(self, facing: Direction) -> None:
        wait = self.turn_wait_s(facing)
        if wait <= _EPS:
            return
        turn_s = self._turn_pause_s()
        if math.isinf(wait):
            raise GovernorRefusedError(
                "turn_pause_s",
                f"the belt is not measured standing; a turn needs it standing {turn_s:g} s "
                f"before it moves {facing.value}",
            )
        raise GovernorRefusedError(
            "turn_pause_s",
            f"the belt has stood {self.observer.standing_for_s():.1f} s; a turn needs at least "
            f"{turn_s:g} s of measured standstill before it moves {facing.value}",
            seconds_left=wait,
        )

    def _already_running(self, facing: Direction) -> float | None:
        """The target if the belt is already told to move this way; refuses another way."""
        if not self._belt.moving:
            return None
        if facing is not self._turns.facing:
            raise GovernorRefusedError(
                "turn_pause_s",
                f"cannot face {facing.value} while the belt moves; pause it for the turn first",
            )
        return self._speed.kmh or 0.0

    def check_measured(self) -> BeltFaultError | None:
        """Judge the measured belt against what it was told; a verdict, or None. Called on
        every Treadmill Data record and by the session's watchdog."""
        return self._judge.check(
            told_to_move=self._belt.moving,
            start_in_flight=self._belt.start_in_flight,
            target_kmh=self._speed.kmh,
        )

    # ----------------------------------------------------------------------------- writes

    async def start_belt(self, facing: Direction) -> float:
        """Start/Resume with the user facing `facing`; returns the restart speed set.

        Waits (bounded by what the slowest deck needs) for the belt to be measured standing and
        for the measured incline to come down to the restart maximum; raises `BeltFaultError`
        if the deck does not get there."""
        if facing is Direction.REST:
            raise GovernorRefusedError("direction", "a belt cannot start facing 'rest'")
        limits = self._armed()
        running = self._already_running(facing)
        if running is not None:
            return running
        await self._starter.prepare(facing, limits)
        async with self._lock:
            limits = self._armed()
            running = self._already_running(facing)
            if running is not None:
                return running
            self._turn_allowed(facing)
            if self.observer.state() is not BeltState.STANDING:
                raise GovernorRefusedError(
                    "belt_moving", "the belt is not measured standing; not sending Start"
                )
            if facing is Direction.BACKWARD and self.backward_remaining_s() <= _EPS:
                raise GovernorRefusedError(
                    "max_backward_s",
                    f"the {limits.max_backward_s:g} s of backward walking for this session are "
                    "used up",
                )
            started = await self._starter.start(facing, limits)
            self._heart.walking_again(self._clock.now())
            return started

    async def lower_incline_for_start(self, facing: Direction) -> None:
        """Get the standing belt ready for the Start now (before a countdown), so the Start
        that follows need not wait: on a deck that takes no speed while standing, Reset a
        target above the restart speed it may resume at; then bring the measured incline down
        to the restart maximum."""
        await self._starter.get_ready(facing, self._armed())

    async def set_speed(self, speed_kmh: float) -> float:
        """Move the target towards `speed_kmh` as far as the limits allow; returns the target
        written."""
        if not math.isfinite(speed_kmh):
            raise GovernorRefusedError("speed", f"speed must be a number, got {speed_kmh}")
        async with self._lock:
            limits = self._armed()
            if not self._belt.moving:
                raise GovernorRefusedError(
                    "belt_paused", "the belt is paused; start it before setting a speed"
                )
            capped = self._heart.cap_speed(speed_kmh)
            if capped < speed_kmh - _EPS:
                self._notice("heart_rate_soft_bpm", speed_kmh, capped)
            return await self._writer.speed(
                limits, capped, backward_used_up=self.backward_remaining_s() <= _EPS
            )

    async def set_incline(self, incline_pct: float) -> float:
        if not math.isfinite(incline_pct):
            raise GovernorRefusedError("incline", f"incline must be a number, got {incline_pct}")
        async with self._lock:
            limits = self._armed()
            capped = self._heart.cap_incline(incline_pct)
            if capped < incline_pct - _EPS:
                self._notice("heart_rate_soft_bpm", incline_pct, capped)
            return await self._writer.incline(limits, capped)

    # ----------------------------------------------------------------------------- stops

    async def pause_belt(self) -> None:
        """Bring the target down to the restart speed, then Stop/Pause with 'pause'.

        The executor ramps down first, so the first write is normally a no-op; it is the safety
        net for a pause from higher up. Always allowed, even when locked out."""
        async with self._lock:
            await self._writer.restart_speed_before_pause(self._limits)
            await self._stopper.pause()

    async def stop_belt(self) -> None:
        """Stop/Pause with 'stop' (one attempt; `stop_attempt` retries with Pause). Always
        allowed."""
        async with self._lock:
            await self._stopper.stop()

    async def stop_attempt(self) -> bool:
        """One rung of the stop ladder: Stop, and if the deck refuses it, Pause (the link asks
        for control again on Control Not Permitted). True if the deck accepted one of them.
        Raises `NotConnectedError` when there is no link to write on. Never takes the lock: a
        stop must not queue behind a write the deck is slow to answer."""
        self.lock_out_if_armed_for_stop()
        return await self._stopper.attempt()

    async def emergency_stop(self, reason: str) -> bool:
        """Lock out and send Stop now, without waiting for any queued write. Never raises;
        True if the deck accepted Stop (or Pause)."""
        self.lock_out(reason)
        return await self._stopper.emergency(reason)

    def stopping(self) -> None:
        """A stop is on its way (an abort): judge the belt as told to stand from now on."""
        self._stopper.halted()

    def belt_stopped_by_treadmill(self) -> None:
        """The treadmill stopped the belt itself (safety key, console, link loss)."""
        self._stopper.halted()

    # ----------------------------------------------------------------------------- the deck

    def note_console_speed(self, speed_kmh: float) -> None:
        """Target Speed Changed (Machine Status 0x05) arrived. Real decks send it repeatedly
        while the belt slows down (Urevo E1L: blak3r/treadspan captures), so it is no console action
        by itself. While the belt is told to move, ramps continue from the deck's new target
        and the next writes bring it back within the limits; a higher target also raises the
        speed the belt may show (the belt follows it until the executor's next write)."""
        self._speed.set_at_console(speed_kmh)
        if not self._belt.moving:
            return
        self._judge.raise_ceiling(speed_kmh, target_kmh=self._speed.kmh)
        self._speed.set(speed_kmh, self._clock.now())

    def note_console_incline(self, incline_pct: float) -> None:
        self._incline.set_at_console(incline_pct)

    def note_console_start(self) -> None:
        """Someone pressed Start at the console (Machine Status 0x04) while no workout drove
        the belt: it is theirs to walk, not unexpected motion."""
        if not self._belt.moving:
            self._judge.console_started()
            self._speed.held_kmh = None  # the console may have set any target

    def forget_targets(self) -> None:
        """After a reconnect the deck's targets are unknown: write them anew before relying on
        them."""
        self._speed.forget()
        self._incline.forget()
