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
- lock-out: after an abort nothing but stop/pause is accepted until `arm()` (a new workout).

It also judges the measured belt against what it was told (`check_measured`): a belt that
stands while told to move (console stop or safety key on a deck that did not say so), moves
when nothing told it to, runs above its target, or does not follow a target in the time the
slowest deck needs. The session turns each verdict into an abort and a verified stop.

Clamping is reported through `on_limit` (LimitApplied events); refusals raise
`GovernorRefusedError` and write nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from treadmilld.ble.api import ControlRejectedError, LinkError, TreadmillLink
from treadmilld.engine.api import AbortReason, BeltState, Direction
from treadmilld.engine.belt import (
    INCLINE_TOLERANCE_PCT,
    SLOWEST_DECELERATION_KMH_PER_S,
    SPEED_TOLERANCE_KMH,
    STANDSTILL_KMH,
    START_DELAY_S,
    BeltObserver,
    acceleration_allowance_s,
    deceleration_allowance_s,
    incline_allowance_s,
)
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

# The ramp allowance never accumulates beyond one second of ramping (see `ramp_window_s`).
RAMP_WINDOW_S = 1.0
_EPS = 1e-6
# How long emergency_stop waits for the deck to answer Stop before it reports "not confirmed"
# (design choice: pyftms waits 2 s for an answer; slow decks get more).
EMERGENCY_STOP_TIMEOUT_S = 5.0
# How many recent Control Point answer times the backward margin looks at.
ANSWER_TIMES_KEPT = 10
# Records above the allowed speed needed before overspeed is called (one record can be a
# glitch or a record from just before a write landed).
OVERSPEED_RECORDS = 2


def ramp_window_s(limits: EffectiveLimits) -> float:
    """The most clock time one speed write may count towards its ramp allowance: 1 s, or the
    time one treadmill increment takes at the ramp rate if that is longer (otherwise a coarse
    deck could never move at all)."""
    return max(RAMP_WINDOW_S, limits.speed_increment_kmh / limits.ramp_rate_kmh_per_s)


class GovernorRefusedError(Exception):
    """The governor refused a write that would break a limit; nothing was written."""

    def __init__(self, limit: str, message: str, *, seconds_left: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.seconds_left = seconds_left


class BeltFaultError(Exception):
    """The measured belt does not do what it was told; the workout must abort and stop."""

    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class LimitNotice:
    limit: str
    requested: float
    applied: float


class SafetyGovernor:
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
        # The way the person last walked (or faces to walk), kept across workouts and aborts so
        # that any change of direction goes through a turn.
        self._facing: Direction | None = None
        # A turn the person was told to make ("turn now") before the belt moved again: they
        # may face either way until the belt has moved again. Before they have walked at all,
        # also the way the first walking segment told them to step on (`segment_announced`).
        self._turn_announced: Direction | None = None
        self._counted_down_to: Direction | None = None
        self._start_in_flight = False
        # How long the deck took to answer its slowest recent write (seconds of clock time).
        self._answer_times: list[float] = []
        self._moving = False  # as commanded: Start written and no Stop/Pause since
        self._moving_since = 0.0
        self._backward_before_s = 0.0
        # Last target written (or set at the console; after a Start that had to go before it,
        # the restart speed on its way).
        self._speed: float | None = None
        # A speed write on its way to the deck (the belt may follow it before we hear back).
        self._speed_in_flight: float | None = None
        # The highest speed target the deck may still hold, which a deck that resumes at its
        # last target goes back to on Start (docs/safety.md); None when unknown (after a
        # connect, or once the console may have set one). Stop and Pause leave it as it is.
        self._held_kmh: float | None = None
        # The deck refused a speed written while its belt stood: Start has to go first on it.
        self._speed_refused_while_standing = False
        self._speed_at = -math.inf
        self._incline: float | None = None
        # The incline last asked of the deck, beside `_incline`, what the deck made of it: a
        # deck that sets incline by table index (docs/decks.md) settles on the entry below the
        # ask, and asking again would rewrite the same value every tick.
        self._incline_asked: float | None = None
        # The highest incline target the deck may hold after a write was cut short (cancelled by
        # an abort or emergency stop while the deck had not answered yet): the deck may have
        # taken it, so `_incline` is unknown, but a Start must still bring this down.
        self._incline_cut_short: float | None = None
        # -- judging the measured belt --
        # Until then a belt still moving after a Stop/Pause is coasting, not misbehaving.
        self._coast_until = -math.inf
        # A person started the belt at the console while no workout drove it: theirs to walk.
        self._console_started = False
        self._started_at = -math.inf
        self._moved_since_start = False
        # Highest speed the belt may show now: the target, or an earlier higher target decaying
        # at the slowest deck's deceleration.
        self._ceiling_kmh = 0.0
        self._ceiling_at = -math.inf
        self._overspeed_records = 0
        # The record the overspeed count last took in: the watchdog looks again between
        # records, and one record must count once.
        self._overspeed_record_at: float | None = None
        # The belt has been measured standing since it was last told to stop or pause, and
        # nothing has told it to move since: a stop asked for now starts from the measured
        # belt, not from a target it no longer heads for.
        self._stood_since_stop = False
        # A Stop or Pause to a belt told to move is on its way: the deck acts on it when it
        # answers, and records until then may still show the belt under the Start.
        self._recount_on_halt_answer = False
        # A target the belt must reach (within tolerance) by a deadline, or None.
        self._follow_kmh: float | None = None
        self._follow_by = math.inf

    # ----------------------------------------------------------------------------- state

    @property
    def limits(self) -> EffectiveLimits | None:
        return self._limits

    @property
    def locked_out(self) -> str | None:
        """Why moving writes are refused, or None when armed."""
        return self._locked_out

    @property
    def facing(self) -> Direction | None:
        """The way the person last walked (kept across workouts)."""
        return self._facing

    @property
    def belt_moving(self) -> bool:
        """As commanded (Start written and no Stop/Pause since)."""
        return self._moving

    @property
    def belt_state(self) -> BeltState:
        """As measured."""
        return self.observer.state()

    @property
    def target_speed_kmh(self) -> float | None:
        return self._speed

    @property
    def highest_target_kmh(self) -> float:
        """The last target, or a higher one still on its way to the deck: what the belt may be
        heading for right now."""
        return max(self._speed or 0.0, self._speed_in_flight or 0.0)

    @property
    def stop_from_kmh(self) -> float:
        """The speed a stop asked for now has to bring the belt down from: the measured speed,
        or the target the belt may be heading for (`highest_target_kmh`), unless the belt has
        been measured standing since it was last told to stop, with nothing telling it to move
        since: then an old target says nothing about it (an alarm timed from one comes late)."""
        measured = self.observer.speed_kmh or 0.0
        if self._stood_since_stop and not self._moving and not self._start_in_flight:
            return measured
        return max(measured, self.highest_target_kmh)

    @property
    def target_written_at(self) -> float:
        """Clock time of the last speed target written (or set at the console)."""
        return self._speed_at

    @property
    def target_incline_pct(self) -> float | None:
        return self._incline

    @property
    def asked_incline_pct(self) -> float | None:
        """The incline last asked of the deck (after the caps), before the deck's own rounding
        or table; None when unknown (as `target_incline_pct`)."""
        return self._incline_asked if self._incline is not None else None

    @property
    def moving_since(self) -> float | None:
        """Clock time the belt last started, while it is moving."""
        return self._moving_since if self._moving else None

    def speed_target_for(self, speed_kmh: float) -> tuple[float, str | None]:
        """Where a requested speed would settle under the caps (ramping aside), and which
        limit changed it. For manual nudges, so the caller can report the real target."""
        limits = self._limits
        if limits is None:
            return speed_kmh, None
        cap = limits.max_speed_kmh(self._facing)
        if speed_kmh > cap:
            limit = (
                "max_backward_speed_kmh"
                if self._facing is Direction.BACKWARD
                else "max_forward_speed_kmh"
            )
            return cap, limit
        lowest = self._lowest_moving_kmh(limits)
        if speed_kmh < lowest:
            return lowest, "min_speed_kmh"
        return limits.quantize_speed(speed_kmh, toward=0.0), None

    def incline_target_for(self, incline_pct: float) -> tuple[float, str | None]:
        limits = self._limits
        if limits is None:
            return incline_pct, None
        if not limits.incline_controllable:
            return 0.0, "incline_not_controllable"
        cap = limits.max_incline_pct(self._facing)
        if incline_pct > cap:
            limit = (
                "max_backward_incline_pct"
                if self._facing is Direction.BACKWARD
                else "max_forward_incline_pct"
            )
            return cap, limit
        if incline_pct < limits.min_incline_pct:
            return limits.min_incline_pct, "min_incline_pct"
        return limits.quantize_incline(incline_pct, toward=limits.min_incline_pct), None

    @staticmethod
    def _lowest_moving_kmh(limits: EffectiveLimits) -> float:
        """The lowest target the belt is told while it should move: the deck's minimum, but
        never at or below the standstill speed (a belt following such a target would look
        stopped), rounded up to the deck's grid."""
        lowest = limits.min_speed_kmh
        if lowest > STANDSTILL_KMH + _EPS:
            return lowest
        steps = math.floor((STANDSTILL_KMH - lowest) / limits.speed_increment_kmh + _EPS) + 1
        return lowest + steps * limits.speed_increment_kmh

    def standing_for_s(self) -> float:
        """How long the belt has been *measured* standing (0 while it moves or is unknown, and
        while the deck has still to answer the Stop or Pause sent to it: it acts on it then)."""
        if self._recount_on_halt_answer:
            return 0.0
        return self.observer.standing_for_s()

    @property
    def halt_pending(self) -> bool:
        """A Stop or Pause sent to a belt told to move has not been answered yet."""
        return self._recount_on_halt_answer

    def _direction_changes(self, facing: Direction) -> bool:
        """Moving with the person facing `facing` is a change of direction: from the way they
        last walked, or from a turn they were told to make (or a Start that was never
        answered, which may have turned the belt their way), or, before they have walked at all,
        from the way a segment told them to step on."""
        if facing is Direction.REST:
            return False
        announced = self._turn_announced
        if announced is not None and announced is not facing:
            return True
        return self._facing is not None and facing is not self._facing

    def needs_turn(self, facing: Direction) -> bool:
        """The turn protocol ("turn now", the standing time, the countdown) must run before the
        belt moves this way, however long it has stood: a change of direction whose countdown
        has not run yet."""
        return self._direction_changes(facing) and self._counted_down_to is not facing

    def turn_counted_down(self, facing: Direction) -> None:
        """The countdown to `facing` ran to its end: the next Start that way needs no other."""
        self._counted_down_to = facing

    def turn_wait_s(self, facing: Direction) -> float:
        """Seconds of measured standing still needed before the belt may move with the person
        facing `facing` (0 when no turn is involved). Infinite while the belt is not measured
        standing."""
        limits = self._limits
        if not self._direction_changes(facing):
            return 0.0
        turn_s = limits.turn_pause_s if limits is not None else 0.0
        if self.observer.state() is not BeltState.STANDING:
            return math.inf
        return max(turn_s - self.observer.standing_for_s(), 0.0)

    @property
    def answer_time_s(self) -> float:
        """The slowest of the deck's recent Control Point answers: what each write still to
        come may cost (the executor keeps it in hand before the backward budget ends)."""
        return max(self._answer_times, default=0.0)

    def _answered(self, since: float) -> None:
        self._answer_times.append(self._clock.now() - since)
        del self._answer_times[:-ANSWER_TIMES_KEPT]

    def segment_announced(self, facing: Direction) -> None:
        """A walking segment told the person to walk facing `facing`. Before they have walked
        at all, that is the way they now stand, whether or not the belt ever starts: a workout
        aborted before its Start was even sent (the safety key pulled while the restart speed
        was on its way, soak seed 500) leaves them facing it, and the next workout that walks
        the other way must run the turn first. Once they have walked, a change of direction is
        a turn already (the executor runs it before the Start, and says "turn now")."""
        if facing is Direction.REST or self._facing is not None:
            return
        if self._turn_announced is None:
            self._turn_announced = facing

    def turn_announced(self, facing: Direction) -> None:
        """The person was told to turn to `facing`: until the belt moves again, moving either
        way needs the full turn time standing (they may have turned, or not)."""
        self._turn_announced = facing
        self._counted_down_to = None

    def backward_used_s(self) -> float:
        used = self._backward_before_s
        if self._moving and self._facing is Direction.BACKWARD:
            used += self._clock.now() - self._moving_since
        return used

    def backward_remaining_s(self) -> float:
        if self._limits is None:
            return 0.0
        return max(self._limits.max_backward_s - self.backward_used_s(), 0.0)

    def arm(self, limits: EffectiveLimits) -> None:
        """A new workout: new limits, backward budget reset, lock-out cleared. The belt's own
        state (moving or not, the way the person last walked, last targets) carries over."""
        self._limits = limits
        self._locked_out = None
        self._backward_before_s = 0.0
        # A countdown heard in an earlier workout does not count for this one.
        self._counted_down_to = None
        if self._moving:
            self._moving_since = self._clock.now()

    def lock_out(self, reason: str) -> None:
        """Refuse every moving write until the next `arm()`."""
        if self._locked_out is None:
            self._log.info("governor_locked_out", reason=reason)
        self._locked_out = reason

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
        limits = self._limits
        turn_s = limits.turn_pause_s if limits is not None else 0.0
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
        await self._wait_standing_before_start()
        await self._lower_incline_before_start(facing, limits)
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
            restart = limits.restart_speed_kmh
            # The restart speed goes first: decks that resume at their last target would
            # otherwise jump back to it before a later write lands (user reports; docs/safety.md).
            primed = False
            if not self._start_goes_first():
                try:
                    written = await self._write_speed(restart)
                    primed = True
                except ControlRejectedError as error:
                    # Decks that take no target while standing (3G Cardio, qdomyos-zwift#3382):
                    # Start first, then the restart speed at once, and watch the measured speed.
                    self._speed_refused_while_standing = True
                    self._log.info("restart_speed_refused_while_standing", error=str(error))
            reset = not primed and await self._reset_held_target(restart)
            if (primed or reset) and self.observer.state() is not BeltState.STANDING:
                # The restart-speed write took long enough for the picture to change (data
                # went stale, or the belt moved): Start is written only on a fresh standstill.
                state = self.observer.state()
                raise BeltFaultError(
                    AbortReason.NO_DATA
                    if state is BeltState.UNKNOWN
                    else AbortReason.UNEXPECTED_MOTION,
                    f"the belt is {state.value} after the {'restart speed' if primed else 'Reset'} "
                    "was written; not sending Start",
                )
            # Until Start is answered the person may face either way: if it never is (an abort
            # mid-write), the next workout turns whichever way it walks.
            if self._facing is not facing:
                self._turn_announced = facing
                self._counted_down_to = None
            self._start_in_flight = True
            try:
                await self._link.start_belt()
            finally:
                self._start_in_flight = False
            self._mark_started(facing, restart)
            if not primed:
                # Start went first: until the restart speed is answered (one answer time, seconds
                # on a slow deck) the belt runs at the deck's own start speed, its minimum, which
                # `effective_limits` keeps at or below the restart speed. The restart speed is
                # the target from the Start on, so the overspeed ceiling holds at it (or at the
                # lowest speed the deck moves at) instead of decaying from the Start as a
                # superseded target would (soak seed 501: a deck at its 0.8 km/h minimum, its
                # restart speed answered 2.56 s late, was called overspeed). A target left from
                # before the stop no longer counts either, so a deck that resumes at it is
                # caught against the restart speed while the write is still on its way.
                self._speed = max(restart, self._lowest_moving_kmh(limits))
                written = await self._write_speed(restart)
            self._speed = written
            self._speed_at = self._clock.now()
            self._expect_reach(written, from_kmh=0.0, extra_s=START_DELAY_S)
            self._log.info("belt_started", facing=facing.value, restart_kmh=written, primed=primed)
            return written

    async def _write_speed(self, speed_kmh: float) -> float:
        """Set Target Speed, keeping `_held_kmh`: the value written once answered; if the write
        is cut short or refused, the higher of the two, as the deck may have taken it."""
        try:
            written = await self._link.set_target_speed(speed_kmh)
        except BaseException:
            if self._held_kmh is not None:
                self._held_kmh = max(self._held_kmh, speed_kmh)
            raise
        self._held_kmh = written
        return written

    async def _reset_held_target(self, restart_kmh: float) -> bool:
        """Before a Start that has to go ahead of the restart speed (the deck takes no speed
        while its belt stands): a deck that may still hold a target above the restart speed
        (after a stop from speed, or not known since connecting) gets Reset (FTMS §4.16.2.2),
        which sets its targets to zero, so it cannot resume there when Start lands. True if
        the deck was reset. A deck that refuses Reset is started as before: the first seconds
        after Start are judged against the restart speed and the workout aborts if the belt
        runs above it."""
        held = self._held_kmh
        if held is not None and held <= restart_kmh + _EPS:
            return False
        asked_at = self._clock.now()
        try:
            await self._link.reset_targets()
        except ControlRejectedError as error:
            self._log.warning(
                "reset_refused",
                result=error.result,
                error=str(error),
                may_hold_kmh=held,
                hint="this treadmill takes no speed while its belt stands and may resume at "
                "an old target after Start; stand clear of the belt until it has reached the "
                "restart speed",
            )
            return False
        self._answered(asked_at)
        self._held_kmh = 0.0
        # The deck's incline target went to zero as well: the next ask is written.
        self._incline = None
        self._incline_asked = None
        self._incline_cut_short = None
        self._log.info("targets_reset_before_start", may_have_held_kmh=held)
        return True

    def _mark_started(self, facing: Direction, restart_kmh: float) -> None:
        """Start was answered: the belt is told to move, the person faces `facing`, and the
        measured belt is judged against the restart speed from now on."""
        now = self._clock.now()
        self._moving = True
        self._facing = facing
        self._turn_announced = None
        self._counted_down_to = None
        self._moving_since = now
        self._started_at = now
        self._stood_since_stop = False
        self._recount_on_halt_answer = False
        self._moved_since_start = False
        self._console_started = False
        self._ceiling_kmh = restart_kmh
        self._ceiling_at = now
        self._overspeed_records = 0
        self._follow_kmh = None
        self._follow_by = math.inf

    def _already_running(self, facing: Direction) -> float | None:
        """The target if the belt is already told to move this way; refuses another way."""
        if not self._moving:
            return None
        if facing is not self._facing:
            raise GovernorRefusedError(
                "turn_pause_s",
                f"cannot face {facing.value} while the belt moves; pause it for the turn first",
            )
        return self._speed or 0.0

    def _start_goes_first(self) -> bool:
        """The deck takes no speed while its belt stands (its quirks say so, or it refused
        one): Start has to go ahead of the restart speed."""
        caps = self._link.capabilities
        needs_running_belt = caps is not None and caps.speed_needs_running_belt
        return needs_running_belt or self._speed_refused_while_standing

    async def _wait_standing_before_start(self) -> None:
        observer = self.observer
        if observer.state() is BeltState.STANDING:
            return
        speed = max(observer.speed_kmh or 0.0, self._speed or 0.0)
        wait_s = max(self._coast_until - self._clock.now(), 0.0) + deceleration_allowance_s(speed)
        if not await observer.wait_standing(wait_s):
            state = observer.state()
            raise BeltFaultError(
                AbortReason.UNEXPECTED_MOTION if state is BeltState.MOVING else AbortReason.NO_DATA,
                f"the belt was not measured standing within {wait_s:.0f} s "
                f"({state.value}, {observer.speed_kmh} km/h); not starting it",
            )

    async def lower_incline_for_start(self, facing: Direction) -> None:
        """Get the standing belt ready for the Start now (before a countdown), so the Start
        that follows need not wait: on a deck that takes no speed while standing, Reset a
        target above the restart speed it may resume at; then bring the measured incline down
        to the restart maximum."""
        limits = self._armed()
        if self._start_goes_first():
            async with self._lock:
                if not self._moving and self.observer.state() is BeltState.STANDING:
                    await self._reset_held_target(limits.restart_speed_kmh)
        await self._lower_incline_before_start(facing, limits)

    async def _lower_incline_before_start(self, facing: Direction, limits: EffectiveLimits) -> None:
        """Bring the *measured* incline down to the restart maximum before the belt moves (a
        deck may be left inclined by the previous user; its incline motor is slow)."""
        if not limits.incline_controllable:
            return
        cap = min(limits.max_incline_pct(facing), limits.max_turn_incline_pct)
        measured = self.observer.incline_pct
        target = self._incline
        if target is None:
            # A write cut short may have left the deck heading for a higher target (soak seed
            # 800: the 6 % write an emergency stop cancelled; nothing lowered it again).
            target = self._incline_cut_short
        goal: float | None = None
        if target is not None and target > cap + _EPS:
            goal = cap
        elif target is None and measured is None:
            # Neither the deck's target nor its incline is known (after a connect, on a deck
            # that reports no incline): set it flat, never higher than the cap.
            goal = min(max(0.0, limits.min_incline_pct), cap)
        elif target is None and measured is not None and measured > cap + INCLINE_TOLERANCE_PCT:
            goal = cap  # left inclined by the previous user
        if goal is not None:
            async with self._lock:
                await self._write_incline(
                    limits.quantize_incline(
                        max(goal, limits.min_incline_pct), toward=limits.min_incline_pct
                    )
                )
            # The allowance runs from the incline measured once the deck has answered: while
            # it was answering, the incline may have kept climbing towards its old target.
            measured = self.observer.incline_pct
        if measured is None or measured <= cap + INCLINE_TOLERANCE_PCT:
            return
        wait_s = incline_allowance_s(measured, cap)
        self._log.info("waiting_for_incline", measured_pct=measured, cap_pct=cap, within_s=wait_s)

        def lowered() -> bool:
            incline = self.observer.incline_pct
            return incline is not None and incline <= cap + INCLINE_TOLERANCE_PCT

        if not await self.observer.wait_until(lowered, wait_s):
            raise BeltFaultError(
                AbortReason.TARGET_NOT_FOLLOWED,
                f"the incline is still {self.observer.incline_pct} % after {wait_s:.0f} s; it "
                f"must be at most {cap:g} % before the belt starts",
            )

    async def set_speed(self, speed_kmh: float) -> float:
        """Move the target towards `speed_kmh` as far as the limits allow; returns the target
        written."""
        if not math.isfinite(speed_kmh):
            raise GovernorRefusedError("speed", f"speed must be a number, got {speed_kmh}")
        async with self._lock:
            limits = self._armed()
            if not self._moving:
                raise GovernorRefusedError(
                    "belt_paused", "the belt is paused; start it before setting a speed"
                )
            facing = self._facing
            applied = speed_kmh
            cap = limits.max_speed_kmh(facing)
            if applied > cap:
                self._notice(
                    "max_backward_speed_kmh"
                    if facing is Direction.BACKWARD
                    else "max_forward_speed_kmh",
                    applied,
                    cap,
                )
                applied = cap
            applied = max(applied, self._lowest_moving_kmh(limits))
            previous = self._speed if self._speed is not None else limits.restart_speed_kmh
            if (
                facing is Direction.BACKWARD
                and applied > previous
                and self.backward_remaining_s() <= _EPS
            ):
                raise GovernorRefusedError(
                    "max_backward_s", "the backward time for this session is used up"
                )
            now = self._clock.now()
            allowance = limits.ramp_rate_kmh_per_s * min(
                max(now - self._speed_at, 0.0), ramp_window_s(limits)
            )
            ramped = min(max(applied, previous - allowance), previous + allowance)
            quantized = limits.quantize_speed(ramped, toward=previous)
            quantized = min(max(quantized, self._lowest_moving_kmh(limits)), cap)
            if abs(quantized - previous) <= _EPS and self._speed is not None:
                return quantized
            asked_at = self._clock.now()
            self._speed_in_flight = quantized
            try:
                written = await self._write_speed(quantized)
            finally:
                self._speed_in_flight = None
            self._answered(asked_at)
            self._new_target(written)
            return written

    def _new_target(self, written: float) -> None:
        now = self._clock.now()
        measured = self.observer.speed_kmh
        self._ceiling_kmh = max(written, self._ceiling_now(now))
        self._ceiling_at = now
        self._speed = written
        self._speed_at = now
        self._expect_reach(written, from_kmh=measured if measured is not None else written)

    def _expect_reach(self, target: float, *, from_kmh: float, extra_s: float = 0.0) -> None:
        """Start a deadline for the belt to reach `target` unless one is running already (a
        ramp keeps the earliest deadline, so a deck that ignores targets cannot hide behind a
        stream of new ones). A lower target lowers what the running deadline expects."""
        if self._follow_kmh is not None:
            self._follow_kmh = min(self._follow_kmh, target)
            return
        limits = self._limits
        increment = limits.speed_increment_kmh if limits is not None else 0.0
        if from_kmh >= target - SPEED_TOLERANCE_KMH - increment:
            return
        self._follow_kmh = target
        self._follow_by = self._clock.now() + extra_s + acceleration_allowance_s(from_kmh, target)

    def _ceiling_now(self, now: float) -> float:
        """The highest speed the belt may show now: the current target, or a higher earlier
        one decaying at the slowest deck's deceleration."""
        decayed = self._ceiling_kmh - SLOWEST_DECELERATION_KMH_PER_S * max(
            now - self._ceiling_at, 0.0
        )
        return max(self._speed or 0.0, decayed)

    def _incline_cap(
        self, facing: Direction | None, limits: EffectiveLimits, *, restarting: bool
    ) -> float:
        cap = limits.max_incline_pct(facing)
        if restarting:
            cap = min(cap, limits.max_turn_incline_pct)
        return cap

    async def set_incline(self, incline_pct: float) -> float:
        if not math.isfinite(incline_pct):
            raise GovernorRefusedError("incline", f"incline must be a number, got {incline_pct}")
        async with self._lock:
            limits = self._armed()
            if not limits.incline_controllable:
                return 0.0
            cap = self._incline_cap(self._facing, limits, restarting=False)
            if not self._moving:
                # The belt restarts with at most the turn incline (design choice).
                cap = min(cap, limits.max_turn_incline_pct)
            applied = min(max(incline_pct, limits.min_incline_pct), cap)
            if incline_pct > cap + _EPS:
                self._notice(
                    "max_backward_incline_pct"
                    if self._facing is Direction.BACKWARD
                    else "max_forward_incline_pct",
                    incline_pct,
                    applied,
                )
            applied = limits.quantize_incline(applied, toward=limits.min_incline_pct)
            if self._incline is not None and abs(applied - self._incline) <= _EPS:
                return applied
            asked = self._incline_asked
            if self._incline is not None and asked is not None and abs(applied - asked) <= _EPS:
                return self._incline  # asked before; the deck already has what it makes of it
            return await self._write_incline(applied)

    async def _write_incline(self, incline_pct: float) -> float:
        asked_at = self._clock.now()
        try:
            written = await self._link.set_target_inclination(incline_pct)
        except BaseException:
            # Cut short (cancelled, lost link, no answer): the deck may hold the old target or
            # this one. Unknown from now on, so the next ask is written; the higher of the two
            # is what a Start must bring down (`_lower_incline_before_start`).
            previous = self._incline if self._incline is not None else self._incline_cut_short
            self._incline_cut_short = max(incline_pct, previous or -math.inf)
            self._incline = None
            self._incline_asked = None
            raise
        self._answered(asked_at)
        self._incline = written
        self._incline_asked = incline_pct
        self._incline_cut_short = None
        return written

    def _mark_paused(self) -> None:
        now = self._clock.now()
        if self._moving or self._start_in_flight:
            self._stood_since_stop = False
            # Standing counts only from records after this: earlier ones may predate a Start
            # the belt was still obeying. (A repeated Stop to a belt already told to stand
            # does not restart the count.) Again once the deck answers the Stop or Pause.
            self.observer.count_standing_from(now)
            self._recount_on_halt_answer = True
        if self._moving and self._facing is Direction.BACKWARD:
            self._backward_before_s += now - self._moving_since
        measured = self.observer.speed_kmh or 0.0
        speed = max(measured, self.highest_target_kmh) if self._moving else measured
        self._coast_until = max(self._coast_until, now + deceleration_allowance_s(speed))
        self._moving = False
        self._console_started = False
        self._follow_kmh = None
        self._follow_by = math.inf

    async def pause_belt(self) -> None:
        """Bring the target down to the restart speed, then Stop/Pause with 'pause'.

        The executor ramps down first, so the first write is normally a no-op; it is the safety
        net for a pause from higher up. Always allowed, even when locked out."""
        async with self._lock:
            limits = self._limits
            if (
                limits is not None
                and self._moving
                and self._speed is not None
                and self._speed > limits.restart_speed_kmh + _EPS
            ):
                self._notice("restart_speed_kmh", self._speed, limits.restart_speed_kmh)
                self._speed = await self._write_speed(limits.restart_speed_kmh)
                self._speed_at = self._clock.now()
            await self._link.pause_belt()
            self._mark_paused()
            self._recount_on_halt_answer = False  # marked after the answer: counted from it

    async def stop_belt(self) -> None:
        """Stop/Pause with 'stop' (one attempt; `stop_attempt` retries with Pause). Always
        allowed."""
        async with self._lock:
            self._mark_paused()
            try:
                await self._link.stop_belt()
            finally:
                self._halt_answered()

    def _halt_answered(self) -> None:
        """The deck answered the first Stop or Pause sent to a belt told to move (or the write
        ended without an answer): it acts on it now, so standing counts from the records after
        this (a belt started and stopped again between two records may have moved although no
        record shows it; soak seeds 1900 and 1901)."""
        if self._recount_on_halt_answer:
            self._recount_on_halt_answer = False
            self.observer.count_standing_from(self._clock.now())

    async def stop_attempt(self) -> bool:
        """One rung of the stop ladder: Stop, and if the deck refuses it, Pause (the link asks
        for control again on Control Not Permitted). True if the deck accepted one of them.
        Raises `NotConnectedError` when there is no link to write on. Never takes the lock: a
        stop must not queue behind a write the deck is slow to answer."""
        self.lock_out_if_armed_for_stop()
        self._mark_paused()
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
                self._halt_answered()
        finally:
            self._halt_answered()
        return True

    def lock_out_if_armed_for_stop(self) -> None:
        """A stop without a lock-out would let a queued write start the belt again."""
        if self._locked_out is None:
            self.lock_out("stop")

    async def emergency_stop(self, reason: str) -> bool:
        """Lock out and send Stop now, without waiting for any queued write. Never raises;
        True if the deck accepted Stop (or Pause)."""
        self.lock_out(reason)
        try:
            async with asyncio.timeout(EMERGENCY_STOP_TIMEOUT_S):
                accepted = await self.stop_attempt()
        except (LinkError, TimeoutError) as error:
            self._log.warning("emergency_stop_failed", reason=reason, error=str(error))
            return False
        self._log.warning("emergency_stop_sent", reason=reason, accepted=accepted)
        return accepted

    def note_console_speed(self, speed_kmh: float) -> None:
        """Target Speed Changed (Machine Status 0x05) arrived. Real decks send it repeatedly
        while the belt slows down (Urevo E1L: blak3r/treadspan captures), so it is no console action
        by itself. While the belt is told to move, ramps continue from the deck's new target
        and the next writes bring it back within the limits; a higher target also raises the
        speed the belt may show (the belt follows it until the executor's next write)."""
        if self._held_kmh is not None:
            self._held_kmh = max(self._held_kmh, speed_kmh)
        if not self._moving:
            return
        now = self._clock.now()
        self._ceiling_kmh = max(speed_kmh, self._ceiling_now(now))
        self._ceiling_at = now
        self._speed = speed_kmh
        self._speed_at = now

    def note_console_incline(self, incline_pct: float) -> None:
        self._incline = incline_pct
        self._incline_asked = incline_pct
        self._incline_cut_short = None

    def note_console_start(self) -> None:
        """Someone pressed Start at the console (Machine Status 0x04) while no workout drove
        the belt: it is theirs to walk, not unexpected motion."""
        if not self._moving:
            self._console_started = True
            self._held_kmh = None  # the console may have set any target

    def stopping(self) -> None:
        """A stop is on its way (an abort): judge the belt as told to stand from now on."""
        self._mark_paused()

    def belt_stopped_by_treadmill(self) -> None:
        """The treadmill stopped the belt itself (safety key, console, link loss)."""
        self._mark_paused()

    def forget_targets(self) -> None:
        """After a reconnect the deck's targets are unknown: write them anew before relying on
        them."""
        self._speed = None
        self._incline = None
        self._incline_asked = None
        self._held_kmh = None

    # ----------------------------------------------------------------------------- judging

    def _check_told_to_stand(
        self, state: BeltState, speed: float, now: float
    ) -> BeltFaultError | None:
        if state is not BeltState.MOVING or speed <= STANDSTILL_KMH:
            return None
        if self._console_started or now <= self._coast_until:
            return None
        return BeltFaultError(
            AbortReason.UNEXPECTED_MOTION,
            f"the belt moves at {speed:.2f} km/h and nothing told it to (a deck that starts by "
            "itself, resumes on its own or does not stop)",
        )

    def check_measured(self) -> BeltFaultError | None:
        """Judge the measured belt against what it was told; a verdict, or None. Called on
        every Treadmill Data record and by the session's watchdog."""
        observer = self.observer
        state = observer.state()
        if state is BeltState.UNKNOWN:
            return None  # the no-data watchdog decides about silence
        now = self._clock.now()
        speed = observer.speed_kmh or 0.0
        limits = self._limits
        increment = limits.speed_increment_kmh if limits is not None else 0.1
        if not self._moving:
            if state is BeltState.STANDING and not self._start_in_flight:
                self._stood_since_stop = True
            return self._check_told_to_stand(state, speed, now)
        if state is BeltState.MOVING:
            self._moved_since_start = True
        elif self._moved_since_start:
            return BeltFaultError(
                AbortReason.BELT_STOPPED,
                "the belt stopped while it was told to move: a console stop or the safety key "
                "on a deck that did not report it",
            )
        # Overspeed: above the target (or a higher earlier one, decaying as the slowest deck
        # slows down) by more than the tolerance, on consecutive records. A record is judged
        # against the ceiling of its own moment, once: between records the ceiling decays
        # while the last record stays what it was (a deck gone quiet while slowing down).
        record_at = observer.last_record_at
        allowed = self._ceiling_now(record_at if record_at is not None else now)
        allowed += SPEED_TOLERANCE_KMH + increment
        if speed > allowed + _EPS:
            if record_at != self._overspeed_record_at:
                self._overspeed_record_at = record_at
                self._overspeed_records += 1
            if self._overspeed_records >= OVERSPEED_RECORDS:
                return BeltFaultError(
                    AbortReason.OVERSPEED,
                    f"the belt runs at {speed:.2f} km/h, above the {allowed:.2f} km/h it may "
                    "show for its target",
                )
        else:
            self._overspeed_records = 0
        return self._check_following(speed, now, increment)

    def _check_following(self, speed: float, now: float, increment: float) -> BeltFaultError | None:
        """Whether the belt reaches its target within what the slowest deck needs."""
        follow = self._follow_kmh
        if follow is not None:
            if speed >= follow - SPEED_TOLERANCE_KMH - increment - _EPS:
                self._follow_kmh = None
                self._follow_by = math.inf
                if self._speed is not None and self._speed > follow + _EPS:
                    self._expect_reach(self._speed, from_kmh=speed)
            elif now > self._follow_by:
                if self._moved_since_start and speed <= STANDSTILL_KMH:
                    # Not a deck ignoring its target: a belt that ran and now stands (its
                    # standstill not yet confirmed by a second record) was stopped at the console
                    # or by the key, unreported. Say that, as the standstill check would a
                    # record later.
                    return BeltFaultError(
                        AbortReason.BELT_STOPPED,
                        f"the belt stopped while it was told to move ({follow:g} km/h): a "
                        "console stop or the safety key on a deck that did not report it",
                    )
                return BeltFaultError(
                    AbortReason.TARGET_NOT_FOLLOWED,
                    f"the deck was told {follow:g} km/h and the belt is at {speed:.2f} km/h; it "
                    "does not follow speed commands",
                )
        return None
