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
    STOPPED = "stopped"  # ended by the `stop` command; the belt is stopped as at a finish
    ABORTED = "aborted"  # safety stop; never resumes by itself


# Where a workout's phase ends up; none of them drives the belt, and only a new start leaves one.
TERMINAL_PHASES = frozenset({Phase.FINISHED, Phase.STOPPED, Phase.ABORTED})


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
    # No `user_stop`: the `stop` command ends a workout as `Phase.STOPPED` (`WorkoutStopped`),
    # which is the person's choice, not a fault. The daemon stopping is `shutdown`.
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
class DeviceInfo:
    """Who the treadmill is, as its link read it on connect: the Bluetooth address, the
    advertised name and the Device Information Service (0x180A) strings (`None` where the deck
    has none)."""

    address: str
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None


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
    # Share of the planned workout time done, 0-100; None when no workout was started. Kept
    # (frozen) once the workout ends.
    progress_pct: float | None = None
    # How the last workout ended: "finished", "stopped" or an `AbortReason` value. None before
    # any workout; kept after the end until the next start clears it.
    outcome: str | None = None

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
    """The plan ran out. `elapsed_s` is workout time: time spent paused is left out."""

    type: ClassVar[str] = "workout_finished"
    profile: str
    elapsed_s: float
    distance_forward_m: float
    distance_backward_m: float
    calories_kcal: float


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

    def device_info(self) -> DeviceInfo | None:
        """What the link learned about the deck on connect; `None` until it has connected
        once (then the speed and incline ranges in the snapshot are known too)."""
        ...

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

    async def set_body_weight(self, body_weight_kg: float) -> None:
        """The weight used from now on: by the next start that names none, and for the rest of
        a running workout's calories (what is already counted stays)."""
        ...


@runtime_checkable
class ProfileCatalog(Protocol):
    def summaries(self) -> Sequence[ProfileSummary]: ...


# An uploaded profile's TOML text (or JSON object written as TOML) may be this large. The
# largest built-in file is about 3 kB; 64 kB is room for a long, well-commented profile and
# small enough that a wrong file sent by mistake is refused at once.
MAX_PROFILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProfileIssue:
    """One problem with one profile file: where, what, and how to fix it."""

    file: str
    field: str  # e.g. "segments[2].segments[0].speed_kmh", or "(toml)" for syntax errors
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message} (hint: {self.hint})"

    def to_json_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProfileReload:
    """What a reload of the profile folders found. `kept` are profiles whose file is now
    invalid and which stay usable in their last good version (their problems are listed)."""

    profiles: tuple[str, ...]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    problems: tuple[ProfileIssue, ...] = ()

    @property
    def list_changed(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "profiles": list(self.profiles),
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "kept": list(self.kept),
            "problems": [problem.to_json_dict() for problem in self.problems],
        }


@dataclass(frozen=True, slots=True)
class ProfileUpload:
    """A profile written into the profile folder and loaded."""

    name: str
    title: str
    file: str
    replaced: bool
    reload: ProfileReload

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "file": self.file,
            "replaced": self.replaced,
            "reload": self.reload.to_json_dict(),
        }


class ProfileUploadRefusedError(Exception):
    """An uploaded profile was not written: `code` says why, `problems` lists every problem
    (empty when the reason is not the profile's content). Nothing was changed."""

    def __init__(self, code: str, message: str, problems: Sequence[ProfileIssue] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = tuple(problems)


@runtime_checkable
class ProfileStore(ProfileCatalog, Protocol):
    """A profile catalog that can re-read its folders and take uploads (ProfileLibrary).

    A reload or upload never touches a running workout: a session plans its profile when it
    starts and keeps that plan to the end."""

    def reload(self) -> ProfileReload: ...

    def upload(self, source: str | Mapping[str, Any], *, replace: bool = False) -> ProfileUpload:
        """Validate `source` (TOML text, or the same profile as a JSON object) like `treadmilld
        profiles check`, write it atomically into the profile folder and reload. Raises
        `ProfileUploadRefusedError` and changes nothing when it is refused."""
        ...


TreadmillControllers = Mapping[str, TreadmillController]
