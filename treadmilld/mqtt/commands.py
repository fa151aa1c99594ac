"""What the daemon can be told to do to one treadmill over MQTT: a `Command` is one of a
closed set of frozen dataclasses, each carrying exactly the fields its action needs (like the
codec's Control Point requests), so whoever runs one matches on its type and never has to
check that a field is there. Parsing them from payloads is treadmilld.mqtt.payloads'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from treadmilld.history.riders import StrapChoice

# One frozen dataclass per action. `kind` names it in logs and replies: the `command` value
# a client sends, or the request that stands for it.


@dataclass(frozen=True, slots=True)
class Start:
    """Start a profile: this one, or (None) the one selected with `SelectProfile`, or for a
    rider their program's next session (their weight and limits apply)."""

    kind: ClassVar[str] = "start"
    profile: str | None = None
    body_weight_kg: float | None = None
    clinical: bool = False
    rider: str | None = None  # pseudonymous rider id
    # The strap to connect for this workout (None: the rider's own, else the treadmill's).
    heart_rate_strap: StrapChoice | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    kind: ClassVar[str] = "pause"


@dataclass(frozen=True, slots=True)
class Resume:
    kind: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True)
class Stop:
    """End the workout as `stopped` (the belt ramps down): not an abort."""

    kind: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class EmergencyStop:
    """Stop the belt now; it skips the queue (see `treadmilld.mqtt.dispatch`)."""

    kind: ClassVar[str] = "emergency_stop"


@dataclass(frozen=True, slots=True)
class Skip:
    kind: ClassVar[str] = "skip"


@dataclass(frozen=True, slots=True)
class ConfirmTurn:
    kind: ClassVar[str] = "confirm_turn"


@dataclass(frozen=True, slots=True)
class SetSpeed:
    """A manual speed nudge for the current walk segment."""

    kind: ClassVar[str] = "set_speed"
    speed_kmh: float


@dataclass(frozen=True, slots=True)
class SetIncline:
    """A manual incline nudge for the current walk segment."""

    kind: ClassVar[str] = "set_incline"
    incline_pct: float


@dataclass(frozen=True, slots=True)
class SetBodyWeight:
    """The body weight from now on (the running workout's calories and the next start)."""

    kind: ClassVar[str] = "set_body_weight"
    body_weight_kg: float


@dataclass(frozen=True, slots=True)
class SelectProfile:
    """Choose the profile a bare `start` runs, with its options; never starts the belt."""

    kind: ClassVar[str] = "select_profile"
    profile: str
    body_weight_kg: float | None = None
    clinical: bool = False


# One thing to do to one treadmill, already validated.
Command = (
    Start
    | Pause
    | Resume
    | Stop
    | EmergencyStop
    | Skip
    | ConfirmTurn
    | SetSpeed
    | SetIncline
    | SetBodyWeight
    | SelectProfile
)

# What a treadmill's worker runs in arrival order: an emergency stop never waits in line.
QueuedCommand = (
    Start
    | Pause
    | Resume
    | Stop
    | Skip
    | ConfirmTurn
    | SetSpeed
    | SetIncline
    | SetBodyWeight
    | SelectProfile
)
ArgumentlessCommand = Pause | Resume | Stop | EmergencyStop | Skip | ConfirmTurn
_ARGUMENTLESS_COMMANDS: dict[str, type[ArgumentlessCommand]] = {
    command.kind: command for command in (Pause, Resume, Stop, EmergencyStop, Skip, ConfirmTurn)
}


def argumentless_command(name: str) -> ArgumentlessCommand | None:
    """The command a client names that takes no arguments (`pause`, ...); None for any
    other name."""
    command = _ARGUMENTLESS_COMMANDS.get(name)
    return command() if command is not None else None
