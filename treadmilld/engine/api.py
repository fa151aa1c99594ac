"""The engine seam: what MQTT and the app may ask of one treadmill's workout session.

`treadmilld.engine.session.WorkoutSession` implements `TreadmillController` over a
`TreadmillLink`; the MQTT bridge and the CLI only ever talk to this protocol. Its names are
all importable from here; they are written in `engine/snapshot.py` (phases, directions, the
snapshot), `engine/events.py` (what a session reports), `engine/profile_catalog.py` (profiles
offered, reloaded and uploaded) and `engine/refusal.py` (the code-and-message refusal).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from treadmilld.engine.events import (
    HeartRateCeilingReached,
    HeartRateMissing,
    LimitApplied,
    SegmentSkipped,
    SegmentStarted,
    SessionEvent,
    StateChanged,
    StopConfirmed,
    StopUnconfirmed,
    TurnConfirmationNeeded,
    TurnCountdown,
    TurnNow,
    WorkoutAborted,
    WorkoutFinished,
    WorkoutPaused,
    WorkoutResumed,
    WorkoutStarted,
    WorkoutStopped,
)
from treadmilld.engine.heart_rate import HeartRateSource
from treadmilld.engine.profile_catalog import (
    MAX_PROFILE_BYTES,
    ProfileCatalog,
    ProfileIssue,
    ProfileReload,
    ProfileStore,
    ProfileSummary,
    ProfileUpload,
    ProfileUploadRefusedError,
)
from treadmilld.engine.refusal import RefusedError
from treadmilld.engine.snapshot import (
    TERMINAL_PHASES,
    AbortReason,
    BeltState,
    DeviceInfo,
    Direction,
    Phase,
    Range,
    SessionSnapshot,
    ZonePosition,
)

if TYPE_CHECKING:
    # engine.limits imports this module's names; only the type is needed here.
    from treadmilld.engine.limits import ProfileLimits

__all__ = [
    "MAX_BODY_WEIGHT_KG",
    "MAX_PROFILE_BYTES",
    "MIN_BODY_WEIGHT_KG",
    "TERMINAL_PHASES",
    "AbortReason",
    "BeltState",
    "CommandRejectedError",
    "DeviceInfo",
    "Direction",
    "HeartRateCeilingReached",
    "HeartRateMissing",
    "HeartRateSource",
    "LimitApplied",
    "Phase",
    "ProfileCatalog",
    "ProfileIssue",
    "ProfileReload",
    "ProfileStore",
    "ProfileSummary",
    "ProfileUpload",
    "ProfileUploadRefusedError",
    "Range",
    "RefusedError",
    "SegmentSkipped",
    "SegmentStarted",
    "SessionEvent",
    "SessionSnapshot",
    "StateChanged",
    "StopConfirmed",
    "StopOutcome",
    "StopUnconfirmed",
    "TreadmillController",
    "TreadmillControllers",
    "TurnConfirmationNeeded",
    "TurnCountdown",
    "TurnNow",
    "WorkoutAborted",
    "WorkoutFinished",
    "WorkoutPaused",
    "WorkoutResumed",
    "WorkoutStarted",
    "WorkoutStopped",
    "ZonePosition",
]

# Body weights the calorie model takes (kg). Every way in (the configuration, MQTT, the
# command line, a start) is checked against these, so no path yields absurd or negative energy.
MIN_BODY_WEIGHT_KG = 20.0
MAX_BODY_WEIGHT_KG = 300.0


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


class CommandRejectedError(RefusedError):
    """A command was refused and changed nothing. `code` is machine-readable (snake_case)."""


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
        self,
        profile: str,
        *,
        body_weight_kg: float | None = None,
        clinical: bool = False,
        rider_limits: ProfileLimits | None = None,
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


TreadmillControllers = Mapping[str, TreadmillController]
