"""What the safety governor shows of its state: the first layer of `SafetyGovernor`.

The governor is one object (docs/safety.md: the one place limits are enforced); its class is
written in two files. This layer holds only the readings others take of it (the limits armed,
the lock-out, the belt as commanded and as measured, the targets, the heart-rate caps, the
backward budget used); every check, decision and write is in `treadmilld.engine.governor`,
whose `SafetyGovernor.__init__` sets the attributes declared here.
"""

from __future__ import annotations

from treadmilld.engine.api import BeltState, Direction
from treadmilld.engine.belt import BeltObserver
from treadmilld.engine.belt_judge import BeltJudge
from treadmilld.engine.control_state import AnswerTimes, CommandedBelt, InclineTarget, SpeedTarget
from treadmilld.engine.heart_rate_guard import HeartRateGuard
from treadmilld.engine.limits import EffectiveLimits
from treadmilld.engine.turns import TurnTracker
from treadmilld.runtime.clock import Clock


class GovernorReadings:
    """The governor's state as read by the executor, the session and its parts."""

    # Set by `SafetyGovernor.__init__` (the parts of its `ControlState`, the heart-rate guard).
    observer: BeltObserver
    _clock: Clock
    _limits: EffectiveLimits | None
    _locked_out: str | None
    _belt: CommandedBelt
    _turns: TurnTracker
    _judge: BeltJudge
    _answers: AnswerTimes
    _speed: SpeedTarget
    _incline: InclineTarget
    _heart: HeartRateGuard

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
        return self._turns.facing

    @property
    def belt_moving(self) -> bool:
        """As commanded (Start written and no Stop/Pause since)."""
        return self._belt.moving

    @property
    def belt_state(self) -> BeltState:
        """As measured."""
        return self.observer.state()

    @property
    def target_speed_kmh(self) -> float | None:
        return self._speed.kmh

    @property
    def highest_target_kmh(self) -> float:
        """The last target, or a higher one still on its way to the deck: what the belt may be
        heading for right now."""
        return self._speed.highest_kmh

    @property
    def stop_from_kmh(self) -> float:
        """The speed a stop asked for now has to bring the belt down from: the measured speed,
        or the target the belt may be heading for (`highest_target_kmh`), unless the belt has
        been measured standing since it was last told to stop, with nothing telling it to move
        since: then an old target says nothing about it (an alarm timed from one comes late)."""
        measured = self.observer.speed_kmh or 0.0
        if self._judge.stood_since_stop and not self._belt.told_to_move:
            return measured
        return max(measured, self.highest_target_kmh)

    @property
    def target_written_at(self) -> float:
        """Clock time of the last speed target written (or set at the console)."""
        return self._speed.written_at

    @property
    def target_incline_pct(self) -> float | None:
        return self._incline.pct

    @property
    def asked_incline_pct(self) -> float | None:
        """The incline last asked of the deck (after the caps), before the deck's own rounding
        or table; None when unknown (as `target_incline_pct`)."""
        return self._incline.asked if self._incline.pct is not None else None

    @property
    def moving_since(self) -> float | None:
        """Clock time the belt last started, while it is moving."""
        return self._belt.moving_since if self._belt.moving else None

    @property
    def halt_pending(self) -> bool:
        """A Stop or Pause sent to a belt told to move has not been answered yet."""
        return self._belt.halt_pending

    @property
    def answer_time_s(self) -> float:
        """The slowest of the deck's recent Control Point answers: what each write still to
        come may cost (the executor keeps it in hand before the backward budget ends)."""
        return self._answers.slowest_s

    @property
    def heart_rate_speed_cap_kmh(self) -> float | None:
        """The speed cap the soft heart-rate ceiling holds now, or None."""
        return self._heart.speed_cap_kmh

    @property
    def heart_rate_incline_cap_pct(self) -> float | None:
        return self._heart.incline_cap_pct

    def standing_for_s(self) -> float:
        """How long the belt has been *measured* standing (0 while it moves or is unknown, and
        while the deck has still to answer the Stop or Pause sent to it: it acts on it then)."""
        if self._belt.halt_pending:
            return 0.0
        return self.observer.standing_for_s()

    def backward_used_s(self) -> float:
        return self._belt.backward_used_s(self._clock.now(), self._turns.facing)

    def backward_remaining_s(self) -> float:
        if self._limits is None:
            return 0.0
        return max(self._limits.max_backward_s - self.backward_used_s(), 0.0)
