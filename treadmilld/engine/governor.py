"""The safety governor: the one place limits are enforced, between the engine and the link.

The executor and manual commands hold only a `SafetyGovernor`, never the `TreadmillLink`, so no
path can write an unchecked setpoint. For every write it applies the effective limits
(`treadmilld.engine.limits.EffectiveLimits`, the strictest of config, clinical mode, profile and
the treadmill's range):

- speed: at most the maximum for the way the user faces, at least the treadmill minimum, on the
  treadmill's increment (rounded towards the previous value, so rounding never adds speed);
- ramp: each speed write moves at most `ramp_rate x min(time since the last write, window)`
  from the previous one, up or down (the window, normally 1 s, stops a long steady spell from
  licensing a jump);
- restart: right after Start/Resume the target is set to at most the restart speed, and before
  every pause the target is brought down to it, so a treadmill that resumes at its last target
  restarts slowly;
- turns: the belt may move with the user facing the other way only after it has been paused for
  at least the turn time;
- incline: at most the maximum for the way the user faces; at most the turn maximum when the
  belt restarts after a turn;
- backward budget: no start or speed-up backward once the session's backward time is used up;
- lock-out: after an abort nothing but stop/pause is accepted until `arm()` (a new workout).

Clamping is reported through `on_limit` (LimitApplied events); refusals raise
`GovernorRefusedError` and write nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from treadmilld.ble.api import LinkError, TreadmillLink
from treadmilld.clock import Clock
from treadmilld.engine.api import Direction
from treadmilld.engine.limits import EffectiveLimits

log = structlog.get_logger()

# The ramp allowance never accumulates beyond one second of ramping (see `ramp_window_s`).
RAMP_WINDOW_S = 1.0
_EPS = 1e-6
# How long emergency_stop waits for the link before giving up (it never raises).
EMERGENCY_STOP_TIMEOUT_S = 5.0


def ramp_window_s(limits: EffectiveLimits) -> float:
    """The most clock time one speed write may count towards its ramp allowance: 1 s, or the
    time one treadmill increment takes at the ramp rate if that is longer (otherwise a coarse
    deck could never move at all)."""
    return max(RAMP_WINDOW_S, limits.speed_increment_kmh / limits.ramp_rate_kmh_per_s)


class GovernorRefusedError(Exception):
    """The governor refused a write that would break a limit; nothing was written."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


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
        on_limit: Callable[[LimitNotice], None] | None = None,
    ) -> None:
        self._link = link
        self._clock = clock
        self._on_limit = on_limit or (lambda _notice: None)
        self._lock = asyncio.Lock()
        self._limits: EffectiveLimits | None = None
        self._locked_out: str | None = "not armed"
        self._facing: Direction | None = None
        self._moving = False
        self._paused_since = -math.inf
        self._moving_since = 0.0
        self._backward_before_s = 0.0
        self._speed: float | None = None  # last target written
        self._speed_at = -math.inf
        self._incline: float | None = None

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
        return self._facing

    @property
    def belt_moving(self) -> bool:
        """As commanded (Start written and no Stop/Pause since)."""
        return self._moving

    @property
    def target_speed_kmh(self) -> float | None:
        return self._speed

    @property
    def target_incline_pct(self) -> float | None:
        return self._incline

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
        if speed_kmh < limits.min_speed_kmh:
            return limits.min_speed_kmh, "min_speed_kmh"
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

    def paused_for_s(self) -> float:
        return 0.0 if self._moving else self._clock.now() - self._paused_since

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
        state (moving or not, facing, last targets) carries over."""
        self._limits = limits
        self._locked_out = None
        self._backward_before_s = 0.0
        if self._moving:
            self._moving_since = self._clock.now()

    def lock_out(self, reason: str) -> None:
        """Refuse every moving write until the next `arm()`."""
        if self._locked_out is None:
            log.info("governor_locked_out", reason=reason)
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

    def _turn_allowed(self, facing: Direction, limits: EffectiveLimits) -> None:
        if self._facing is None or facing is self._facing:
            return
        if self._moving:
            raise GovernorRefusedError(
                "turn_pause_s",
                f"cannot face {facing.value} while the belt moves; pause it for the turn first",
            )
        paused = self._clock.now() - self._paused_since
        if paused + _EPS < limits.turn_pause_s:
            raise GovernorRefusedError(
                "turn_pause_s",
                f"the belt has been paused {paused:.1f} s; a turn needs at least "
                f"{limits.turn_pause_s:g} s before it moves {facing.value}",
            )

    # ----------------------------------------------------------------------------- writes

    async def start_belt(self, facing: Direction) -> float:
        """Start/Resume with the user facing `facing`; returns the restart speed set."""
        if facing is Direction.REST:
            raise GovernorRefusedError("direction", "a belt cannot start facing 'rest'")
        async with self._lock:
            limits = self._armed()
            if self._moving:
                if facing is not self._facing:
                    self._turn_allowed(facing, limits)
                return self._speed or 0.0
            self._turn_allowed(facing, limits)
            if facing is Direction.BACKWARD and self.backward_remaining_s() <= _EPS:
                raise GovernorRefusedError(
                    "max_backward_s",
                    f"the {limits.max_backward_s:g} s of backward walking for this session are "
                    "used up",
                )
            cap = self._incline_cap(facing, limits, restarting=True)
            if self._incline is not None and self._incline > cap + _EPS:
                await self._write_incline(cap)
            restart = limits.restart_speed_kmh
            await self._link.start_belt()
            now = self._clock.now()
            self._moving = True
            self._facing = facing
            self._moving_since = now
            written = await self._link.set_target_speed(restart)
            self._speed = written
            self._speed_at = self._clock.now()
            log.info("belt_started", facing=facing.value, restart_kmh=written)
            return written

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
            applied = max(applied, limits.min_speed_kmh)
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
            quantized = min(max(quantized, limits.min_speed_kmh), cap)
            if abs(quantized - previous) <= _EPS and self._speed is not None:
                return quantized
            written = await self._link.set_target_speed(quantized)
            self._speed = written
            self._speed_at = self._clock.now()
            return written

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
                # The belt restarts with at most the turn incline (reference: "<= 5% at a turn").
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
            return await self._write_incline(applied)

    async def _write_incline(self, incline_pct: float) -> float:
        written = await self._link.set_target_inclination(incline_pct)
        self._incline = written
        return written

    def _mark_paused(self) -> None:
        if self._moving:
            now = self._clock.now()
            if self._facing is Direction.BACKWARD:
                self._backward_before_s += now - self._moving_since
            self._paused_since = now
        self._moving = False

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
                self._speed = await self._link.set_target_speed(limits.restart_speed_kmh)
                self._speed_at = self._clock.now()
            await self._link.pause_belt()
            self._mark_paused()

    async def stop_belt(self) -> None:
        """Stop/Pause with 'stop'. Always allowed."""
        async with self._lock:
            await self._link.stop_belt()
            self._mark_paused()

    async def emergency_stop(self, reason: str) -> None:
        """Lock out and stop the belt now, without waiting for any queued write. Never raises."""
        self.lock_out(reason)
        self._mark_paused()
        try:
            async with asyncio.timeout(EMERGENCY_STOP_TIMEOUT_S):
                await self._link.stop_belt()
        except (LinkError, TimeoutError) as error:
            log.warning("emergency_stop_failed", reason=reason, error=str(error))
        else:
            log.warning("emergency_stop_sent", reason=reason)

    def note_console_speed(self, speed_kmh: float) -> None:
        """Someone changed the target at the console (Machine Status 0x05): ramps continue
        from the deck's real target, so the next writes bring it back within the limits."""
        if self._moving:
            self._speed = speed_kmh
            self._speed_at = self._clock.now()

    def note_console_incline(self, incline_pct: float) -> None:
        self._incline = incline_pct

    def belt_stopped_by_treadmill(self) -> None:
        """The treadmill stopped the belt itself (safety key, console, link loss)."""
        self._mark_paused()
