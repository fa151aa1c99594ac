"""What one treadmill's workout session shows from outside: its phase, the direction walked,
why a workout was aborted, the measured belt, and the snapshot a dashboard draws from them.

Part of the engine seam: import these from `treadmilld.engine.api`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from treadmilld.ble.api import DeviceInformation


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


class ZonePosition(StrEnum):
    """Where the heart rate lies against a heart-rate-guided walk's zone."""

    BELOW = "below"
    IN = "in"
    ABOVE = "above"


@dataclass(frozen=True, slots=True)
class Range:
    minimum: float
    maximum: float
    increment: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo(DeviceInformation):
    """Who the treadmill is, as its link read it on connect: the Bluetooth address, the
    advertised name and the Device Information Service (0x180A) strings (`None` where the deck
    has none)."""

    address: str
    name: str | None = None


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
    heart_rate_bpm: int | None  # filtered: the strap's while fresh, else the treadmill's
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
    # Heart rate: the last raw value of the source that counts (before the filter) and which
    # source that is ("strap" or "treadmill"); the hard ceiling in force; in a heart-rate-guided
    # walk its zone in bpm and where the filtered rate lies ("below", "in", "above").
    heart_rate_raw_bpm: int | None = None
    heart_rate_source: str | None = None
    heart_rate_ceiling_bpm: float | None = None
    heart_rate_zone: ZonePosition | None = None
    heart_rate_zone_low_bpm: float | None = None
    heart_rate_zone_high_bpm: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)
