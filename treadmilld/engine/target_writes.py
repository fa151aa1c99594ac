"""Speed and incline targets, for the safety governor: each write within the caps for the way
the user faces, above the lowest speed a moving belt is told, at most the ramp rate away from
the previous target, on the treadmill's increment (rounded towards the previous value, so
rounding never adds speed); no backward speed-up once the backward time is used up. What a
limit changed is reported as a notice.

`TargetWriter` is a part of `SafetyGovernor`: the governor checks the lock-out and that the
belt may take a target, under its lock, and hands it the limits it holds.
"""

from __future__ import annotations

from collections.abc import Callable

from treadmilld.ble.api import TreadmillLink
from treadmilld.engine.api import Direction
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.control_state import ControlState
from treadmilld.engine.governor_outcomes import GovernorRefusedError
from treadmilld.engine.limit_clamps import incline_cap, lowest_moving_kmh, ramped_speed
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.runtime.clock import Clock

_EPS = 1e-6


class TargetWriter:
    def __init__(
        self,
        link: TreadmillLink,
        clock: Clock,
        observer: BeltObserver,
        state: ControlState,
        notice: Callable[[str, float, float], None],
    ) -> None:
        self._link = link
        self._clock = clock
        self._observer = observer
        self._state = state
        # The governor's report of a limit that changed a request (limit, requested, applied).
        self._notice = notice

    async def speed(
        self, limits: EffectiveLimits, speed_kmh: float, *, backward_used_up: bool
    ) -> float:
        """Move the target towards `speed_kmh` as far as the limits allow; returns the target
        written (or kept)."""
        facing = self._state.turns.facing
        applied = speed_kmh
        cap = limits.max_speed_kmh(facing)
        if applied > cap:
            self._notice(limits.max_speed_limit(facing), applied, cap)
            applied = cap
        applied = max(applied, lowest_moving_kmh(limits))
        target = self._state.speed
        previous = target.kmh if target.kmh is not None else limits.restart_speed_kmh
        if facing is Direction.BACKWARD and applied > previous and backward_used_up:
            raise GovernorRefusedError(
                "max_backward_s", "the backward time for this session is used up"
            )
        quantized = ramped_speed(
            limits,
            previous=previous,
            wanted=applied,
            elapsed_s=self._clock.now() - target.written_at,
            cap=cap,
        )
        if abs(quantized - previous) <= _EPS and target.kmh is not None:
            return quantized
        asked_at = self._clock.now()
        target.in_flight = quantized
        try:
            written = await target.write(self._link, quantized)
        finally:
            target.in_flight = None
        self._state.answers.took(self._clock.now() - asked_at)
        measured = self._observer.speed_kmh
        judge = self._state.judge
        judge.raise_ceiling(written, target_kmh=target.kmh)
        target.set(written, self._clock.now())
        judge.expect_reach(written, from_kmh=measured if measured is not None else written)
        return written

    async def restart_speed_before_pause(self, limits: EffectiveLimits | None) -> None:
        """Bring a moving belt's target down to the restart speed (the safety net for a pause
        from higher up: a deck that resumes at its last target then restarts slowly)."""
        target = self._state.speed
        if (
            limits is not None
            and self._state.belt.moving
            and target.kmh is not None
            and target.kmh > limits.restart_speed_kmh + _EPS
        ):
            self._notice("restart_speed_kmh", target.kmh, limits.restart_speed_kmh)
            written = await target.write(self._link, limits.restart_speed_kmh)
            target.set(written, self._clock.now())

    async def incline(self, limits: EffectiveLimits, incline_pct: float) -> float:
        """Set the incline within the cap for the way the user faces (at most the turn incline
        while the belt stands); returns the target the deck holds."""
        if not limits.incline_controllable:
            return 0.0
        facing = self._state.turns.facing
        cap = incline_cap(limits, facing, restarting=not self._state.belt.moving)
        applied = min(max(incline_pct, limits.min_incline_pct), cap)
        if incline_pct > cap + _EPS:
            self._notice(limits.max_incline_limit(facing), incline_pct, applied)
        applied = limits.quantize_incline(applied, toward=limits.min_incline_pct)
        incline = self._state.incline
        held = incline.pct
        if held is not None and abs(applied - held) <= _EPS:
            return applied
        if held is not None and incline.asked is not None and abs(applied - incline.asked) <= _EPS:
            return held  # asked before; the deck already has what it makes of it
        return await incline.write(self._link, applied)
