"""Everything a workout session reports, as it happens: a frozen dataclass per fact, each with
a snake_case `type` for logs and MQTT.

Part of the engine seam: import these from `treadmilld.engine.api`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from treadmilld.engine.snapshot import AbortReason, Direction, SessionSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """Base of everything the session reports; `type` is a snake_case fact for logs/MQTT."""

    type: ClassVar[str] = "event"
    treadmill_id: str
    at: float  # clock time

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("treadmill_id")
        data.pop("at")
        return {"type": self.type, **data}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutStarted(SessionEvent):
    type: ClassVar[str] = "workout_started"
    profile: str
    clinical: bool
    body_weight_kg: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentStarted(SessionEvent):
    type: ClassVar[str] = "segment_started"
    index: int
    direction: Direction
    duration_s: float
    speed_kmh: float
    incline_pct: float
    cue: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCountdown(SessionEvent):
    type: ClassVar[str] = "turn_countdown"
    seconds_left: int
    to_direction: Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnNow(SessionEvent):
    type: ClassVar[str] = "turn_now"
    to_direction: Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnConfirmationNeeded(SessionEvent):
    type: ClassVar[str] = "turn_confirmation_needed"
    to_direction: Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutPaused(SessionEvent):
    type: ClassVar[str] = "workout_paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutResumed(SessionEvent):
    type: ClassVar[str] = "workout_resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentSkipped(SessionEvent):
    type: ClassVar[str] = "segment_skipped"
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutFinished(SessionEvent):
    """The plan ran out. `elapsed_s` is workout time: time spent paused is left out."""

    type: ClassVar[str] = "workout_finished"
    profile: str
    elapsed_s: float
    distance_forward_m: float
    distance_backward_m: float
    calories_kcal: float


# Not a shared base with `WorkoutFinished`: every SessionEvent subclass is an event sent on its
# own (Home Assistant's event entity lists each one's `type`), and a summary base would be one
# that is never sent.
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutStopped(SessionEvent):
    """The `stop` command ended the workout (the belt ramped down and was stopped; the stop
    is verified like any other: `stop_confirmed` follows). The summary matches
    `WorkoutFinished`'s; `elapsed_s` leaves out time spent paused."""

    type: ClassVar[str] = "workout_stopped"
    profile: str
    elapsed_s: float
    distance_forward_m: float
    distance_backward_m: float
    calories_kcal: float


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutAborted(SessionEvent):
    type: ClassVar[str] = "workout_aborted"
    reason: AbortReason
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopConfirmed(SessionEvent):
    """A stop (emergency, abort, end of workout) is done: the deck's data shows the belt
    standing. `after_s` is the time from the first Stop write to measured standstill."""

    type: ClassVar[str] = "stop_confirmed"
    after_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StopUnconfirmed(SessionEvent):
    """Alarm: a stop was asked for and the belt is still measured moving (or unmeasured) after
    the deck's deceleration time plus a margin. treadmilld keeps trying; a person must act."""

    type: ClassVar[str] = "stop_unconfirmed"
    after_s: float
    speed_kmh: float | None  # last measured, None when there is no fresh data
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitApplied(SessionEvent):
    """The governor changed a requested setpoint to keep a limit."""

    type: ClassVar[str] = "limit_applied"
    limit: str
    requested: float
    applied: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartRateCeilingReached(SessionEvent):
    """The filtered heart rate went above the hard ceiling: the workout pauses (ramp down,
    Pause, measured standstill) and waits for the rider to resume; it never resumes by
    itself."""

    type: ClassVar[str] = "heart_rate_ceiling"
    bpm: int
    ceiling_bpm: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartRateMissing(SessionEvent):
    """A workout that requires a heart rate had no valid one (strap contact lost, strap
    silent, only rejected readings) for `missing_s`: it pauses as for the ceiling."""

    type: ClassVar[str] = "heart_rate_missing"
    missing_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged(SessionEvent):
    """The snapshot changed (telemetry, phase, connection...); publishers rate-limit these."""

    type: ClassVar[str] = "state_changed"
    snapshot: SessionSnapshot = field(repr=False)
