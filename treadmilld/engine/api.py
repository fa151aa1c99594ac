"""The engine seam: what MQTT and the app may ask of one treadmill's workout session.

`treadmilld.engine.session.WorkoutSession` implements `TreadmillController` over a
`TreadmillLink`; the MQTT bridge and the CLI only ever talk to this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

# Body weights the calorie model takes (kg). Every way in (the configuration, MQTT, the
# command line, a start) is checked against these, so no path yields absurd or negative energy.
MIN_BODY_WEIGHT_KG = 20.0
MAX_BODY_WEIGHT_KG = 300.0


class Phase(StrEnum):
    IDLE = "idle"  # no workout loaded; manual control allowed
    RUNNING = "running"  # walking a segment
    TURNING = "turning"  # belt paused for a change of direction, countdown running
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # clinical: turn done, waiting for confirm
    RESTING = "resting"  # belt paused for a rest segment
    PAUSED = "paused"  # paused by a command; resumes only on a resume command
    FINISHED = "finished"
    ABORTED = "aborted"  # safety stop; never resumes by itself


class Direction(StrEnum):
    FORWARD = "forward"
    BACKWARD = "backward"
    REST = "rest"


class AbortReason(StrEnum):
    SAFETY_KEY = "safety_key"
    STOPPED_AT_CONSOLE = "stopped_at_console"
    PAUSED_AT_CONSOLE = "paused_at_console"
    STARTED_AT_CONSOLE = "started_at_console"
    CONTROL_LOST = "control_lost"
    LINK_LOST = "link_lost"
    NO_DATA = "no_data"
    EMERGENCY_STOP = "emergency_stop"
    USER_STOP = "user_stop"
    COMMAND_FAILED = "command_failed"
    SHUTDOWN = "shutdown"
    # Decided from the measured belt, for decks that do not report what happened:
    # the belt came to a standstill while it was told to move (a console stop or the safety
    # key on a deck that sends no Machine Status for them).
    BELT_STOPPED = "belt_stopped"
    # The belt moved when nothing had told it to (a deck that starts on connect, resumes by
    # itself, or keeps running after a stop).
    UNEXPECTED_MOTION = "unexpected_motion"
    # The measured speed went above the target (plus a tolerance) for longer than the deck's
    # deceleration allows, or above the restart speed right after a Start.
    OVERSPEED = "overspeed"
    # The deck acknowledged a target and did not reach it in the time its acceleration allows
    # (a deck that ignores speed commands; hassio-ftms#26), or the incline was not lowered
    # before walking backward.
    TARGET_NOT_FOLLOWED = "target_not_followed"
    # A bug in treadmilld: the workout's own code raised. Logged with its traceback.
    INTERNAL_ERROR = "internal_error"


class BeltState(StrEnum):
    """What the belt is measured to do, from the deck's own Treadmill Data."""

    MOVING = "moving"
    STANDING = "standing"  # at or below the standstill speed for a confirmed period
    UNKNOWN = "unknown"  # no fresh data: not connected, or the deck went quiet


class StopOutcome(StrEnum):
    """What an emergency stop achieved by the time it answers. Never a bare "ok"."""

    # The deck's own data shows the belt standing.
    BELT_STANDING = "belt_standing"
    # The deck accepted Stop; the belt is still coasting down. `stop_confirmed` or
    # `stop_unconfirmed` follows as an event.
    STOP_SENT = "stop_sent"
    # Stop was refused or could not be written (link down, control refused); treadmilld keeps
    # retrying (Stop, then Pause, re-requesting control; Stop first after a reconnect) and
    # raises `stop_unconfirmed` if the belt is not measured standing in time. Pull the safety
    # key.
    NOT_CONFIRMED = "not_confirmed"


class CommandRejectedError(Exception):
    """A command was refused and changed nothing. `code` is machine-readable (snake_case)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Range:
    minimum: float
    maximum: float
    increment: float


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Everything a dashboard shows for one treadmill. Measured values come from the
    treadmill's own data, never from targets."""

    treadmill_id: str
    connection: str  # ConnectionState value
    phase: Phase
    direction: Direction | None
    profile: str | None
    profile_title: str | None
    segment_index: int | None  # 0-based index into the plan's segments
    segment_count: int | None
    segment_cue: str | None
    segment_remaining_s: float | None
    speed_kmh: float | None  # measured
    target_speed_kmh: float | None
    incline_pct: float | None  # measured
    target_incline_pct: float | None
    distance_m: float
    distance_forward_m: float
    distance_backward_m: float
    elapsed_s: float
    remaining_s: float | None
    backward_s: float
    calories_kcal: float
    heart_rate_bpm: int | None
    turn_countdown_s: int | None
    abort_reason: AbortReason | None
    body_weight_kg: float
    clinical: bool
    belt: BeltState  # measured: moving, standing or unknown
    speed_range: Range | None
    incline_range: Range | None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    type: ClassVar[str] = "workout_finished"
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
class StateChanged(SessionEvent):
    """The snapshot changed (telemetry, phase, connection...); publishers rate-limit these."""

    type: ClassVar[str] = "state_changed"
    snapshot: SessionSnapshot = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """A profile's metadata and its planned totals, for listings and dashboards."""

    name: str
    title: str
    description: str
    suits: str
    sessions_per_week: int | None
    clinical: bool
    sources: Sequence[str]
    total_s: float
    backward_s: float


@runtime_checkable
class TreadmillController(Protocol):
    """Commands for one treadmill. Each either succeeds or raises `CommandRejectedError`
    having changed nothing. `emergency_stop` never raises and jumps every queue."""

    @property
    def treadmill_id(self) -> str: ...

    def snapshot(self) -> SessionSnapshot: ...

    def events(self) -> AsyncIterator[SessionEvent]:
        """A fresh subscription to every event from now on."""
        ...

    async def start_profile(
        self, profile: str, *, body_weight_kg: float | None = None, clinical: bool = False
    ) -> None: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def stop(self) -> None: ...

    async def emergency_stop(self) -> StopOutcome:
        """Stop now, ahead of everything queued; never raises. Says what really happened."""
        ...

    async def skip_segment(self) -> None: ...

    async def confirm_turn(self) -> None: ...

    async def set_speed(self, speed_kmh: float) -> float:
        """Manual speed within the limits; returns the speed actually targeted."""
        ...

    async def set_incline(self, incline_pct: float) -> float: ...


@runtime_checkable
class ProfileCatalog(Protocol):
    def summaries(self) -> Sequence[ProfileSummary]: ...


TreadmillControllers = Mapping[str, TreadmillController]
