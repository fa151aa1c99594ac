"""What the rider service takes and gives, and the seam (`RiderDesk`) the MQTT bridge and the
CLI call it through. Nothing here imports SQLAlchemy, so the bridge's layer stays free of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from treadmilld.ble.config import bluetooth_address
from treadmilld.engine.api import MAX_BODY_WEIGHT_KG, MIN_BODY_WEIGHT_KG
from treadmilld.engine.limits import MAX_HR_MAX_BPM, MIN_HR_MAX_BPM, ProfileLimits
from treadmilld.history.recorder import RiderContext
from treadmilld.history.riders import RIDER_ID_PATTERN, Rider, StrapChoice
from treadmilld.programs.progression import Decision, NextSession, Progress

# A rider's maximum heart rate takes the engine's bounds (engine.limits MIN/MAX_HR_MAX_BPM):
# sanity bounds that catch a typo (1800 for 180), written once for riders and limits alike.
DISPLAY_NAME_MAX = 64  # what a dashboard tile shows; not a place for notes
# Advertised names fit a BLE advertisement (at most 29 bytes of name in a legacy one).
STRAP_NAME_MAX = 29

RiderId = Annotated[str, Field(pattern=RIDER_ID_PATTERN.pattern)]
DisplayName = Annotated[str, Field(min_length=1, max_length=DISPLAY_NAME_MAX)]
BodyWeight = Annotated[
    float, Field(strict=True, ge=MIN_BODY_WEIGHT_KG, le=MAX_BODY_WEIGHT_KG, allow_inf_nan=False)
]
MaxHeartRate = Annotated[StrictInt, Field(ge=MIN_HR_MAX_BPM, le=MAX_HR_MAX_BPM)]
ProgramName = Annotated[str, Field(min_length=1, max_length=100)]
Score = Annotated[StrictInt, Field(ge=0, le=10)]  # effort and pain, 0 to 10 (issue 15)
WorkoutId = Annotated[str, Field(min_length=1, max_length=64)]
TherapistName = Annotated[str, Field(min_length=1, max_length=100)]


class RiderError(Exception):
    """The rider service refused a request; `code` is machine-readable, the message says
    what to do. Nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StrapFields(BaseModel):
    """A heart-rate strap as a rider record or a start names it: exactly one of its Bluetooth
    address or a part of the name it advertises (case-insensitive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(default=None, description="AA:BB:CC:DD:EE:FF (a UUID on macOS)")
    name_match: Annotated[str, Field(min_length=1, max_length=STRAP_NAME_MAX)] | None = Field(
        default=None, description="a part of the strap's advertised name, e.g. 'H10 4A3B2C'"
    )

    @field_validator("address")
    @classmethod
    def _address_is_bluetooth(cls, value: str | None) -> str | None:
        return None if value is None else bluetooth_address(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> StrapFields:
        if (self.address is None) == (self.name_match is None):
            raise ValueError(
                "a heart_rate_strap needs exactly one of address or name_match, e.g. "
                '{"address": "AA:BB:CC:DD:EE:FF"} or {"name_match": "H10 4A3B2C"} (`treadmilld '
                "scan` lists the straps nearby)"
            )
        return self

    def choice(self) -> StrapChoice:
        return StrapChoice(address=self.address, name_match=self.name_match)


class RiderFields(BaseModel):
    """A new rider, as MQTT's `rider_create` and `treadmilld riders add` give it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rider_id: RiderId = Field(description="pseudonymous id, a topic level: 'r-17', never a name")
    display_name: DisplayName
    body_weight_kg: BodyWeight
    max_heart_rate_bpm: MaxHeartRate | None = None
    clinical: StrictBool = False
    limits: ProfileLimits | None = Field(
        default=None, description="personal limits; never looser than the configured ones"
    )
    program: ProgramName | None = Field(default=None, description="the program to follow")
    heart_rate_strap: StrapFields | None = Field(
        default=None,
        description="the strap the rider wears: connected for their workouts on any treadmill",
    )


class RiderChanges(BaseModel):
    """What `rider_update` changes: only the fields given. `limits` replaces the personal limits
    as a whole ({} clears them); `program` set to another program begins it at its first stage,
    set to null leaves the program; `heart_rate_strap` set to null forgets the rider's strap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: DisplayName | None = None
    body_weight_kg: BodyWeight | None = None
    max_heart_rate_bpm: MaxHeartRate | None = None
    clinical: StrictBool | None = None
    limits: ProfileLimits | None = None
    program: ProgramName | None = None
    heart_rate_strap: StrapFields | None = None  # null: the rider wears no strap of their own

    def given(self) -> set[str]:
        """The fields the request named, null included (`program: null` leaves the program)."""
        return set(self.model_fields_set)


@dataclass(frozen=True, slots=True)
class RiderStart:
    """What a start for a rider needs: the engine's arguments and the recorder's context."""

    rider_id: str
    profile: str
    body_weight_kg: float
    clinical: bool
    rider_limits: ProfileLimits | None
    context: RiderContext
    next_session: NextSession | None  # None when the rider follows no program
    # The strap to connect for this workout: the rider's own (None: the treadmill's).
    heart_rate_strap: StrapChoice | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rider": self.rider_id,
            "profile": self.profile,
            "body_weight_kg": self.body_weight_kg,
            "clinical": self.clinical,
            "rider_limits": (
                self.rider_limits.model_dump(exclude_none=True) if self.rider_limits else None
            ),
            "program_stage": self.context.program_stage,
            "session_number": self.next_session.session_number if self.next_session else None,
        }


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    rider_id: str
    workout_id: str
    decision: Decision | None  # None when the rider follows no program
    reason: str | None
    next_session: NextSession | None
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A therapist's confirm or decline, as the program state keeps it."""

    to_stage: int
    therapist: str
    at: datetime


class RiderDesk(Protocol):
    """What MQTT and the CLI ask of riders (implemented by `RiderService`). Every call either
    does all it says or raises `RiderError` and changes nothing."""

    async def create(self, fields: RiderFields) -> Rider: ...

    async def update(self, rider_id: str, changes: RiderChanges) -> Rider: ...

    async def get(self, rider_id: str) -> Rider: ...

    async def list_riders(self) -> list[Rider]: ...

    async def delete(self, rider_id: str) -> int: ...

    async def export(self, rider_id: str) -> dict[str, Any]: ...

    async def start_for(
        self, rider_id: str, *, profile: str | None = None, body_weight_kg: float | None = None
    ) -> RiderStart: ...

    async def feedback(self, workout_id: str, *, effort: int, pain: int) -> FeedbackResult: ...

    async def confirm(self, rider_id: str, *, therapist: str) -> Progress: ...

    async def decline(self, rider_id: str, *, therapist: str) -> Progress: ...

    async def progress(self, rider_id: str) -> Progress | None: ...

    async def workout_summary(self, workout_id: str) -> dict[str, Any]: ...


def rider_json(rider: Rider) -> dict[str, Any]:
    """A rider as rider_get and rider_list answer (the one place the display name is sent)."""
    return {
        "rider_id": rider.rider_id,
        "display_name": rider.display_name,
        "body_weight_kg": rider.body_weight_kg,
        "max_heart_rate_bpm": rider.max_heart_rate_bpm,
        "clinical": rider.clinical,
        "limits": rider.limits.model_dump(exclude_none=True) if rider.limits else None,
        "program": rider.program_name,
        "program_state": dict(rider.program_state) if rider.program_state else None,
        "heart_rate_strap": rider.heart_rate_strap.to_json() if rider.heart_rate_strap else None,
    }


def next_session_json(session: NextSession | None) -> dict[str, Any] | None:
    if session is None:
        return None
    return {
        "program": session.program,
        "stage": session.stage,
        "profile": session.profile,
        "session_number": session.session_number,
        "max_incline_pct": session.max_incline_pct,
    }


def progress_json(rider_id: str, progress: Progress | None) -> dict[str, Any]:
    """`<base>/riders/<id>/progress`: figures and the pseudonymous id, never the name."""
    if progress is None:
        return {"rider": rider_id, "program": None}
    last = progress.last_workout
    return {
        "rider": rider_id,
        "program": progress.program,
        "stage": progress.stage,
        "stages": progress.stages,
        "profile": progress.profile,
        "sessions_this_week": progress.sessions_this_week,
        "weekly_target": progress.weekly_target,
        "streak_weeks": progress.streak_weeks,
        "next_profile": progress.next_profile,
        "awaiting_confirm": progress.awaiting_confirm,
        "last_workout": None
        if last is None
        else {
            "workout_id": last.workout_id,
            "profile": last.profile,
            "started_at": last.started_at.isoformat(),
            "outcome": last.outcome.value,
            "abort_reason": last.abort_reason.value if last.abort_reason else None,
            "duration_s": _rounded(last.duration_s, 0),
            "distance_forward_m": _rounded(last.distance_forward_m, 1),
            "distance_backward_m": _rounded(last.distance_backward_m, 1),
            "distance_m": _rounded(
                (last.distance_forward_m or 0.0) + (last.distance_backward_m or 0.0), 1
            )
            if last.distance_forward_m is not None or last.distance_backward_m is not None
            else None,
            "kcal": _rounded(last.kcal, 1),
            "effort": last.effort,
            "pain": last.pain,
        },
    }


def feedback_json(result: FeedbackResult) -> dict[str, Any]:
    return {
        "rider": result.rider_id,
        "workout_id": result.workout_id,
        "decision": result.decision.value if result.decision else None,
        "reason": result.reason,
        "next_session": next_session_json(result.next_session),
        "progress": progress_json(result.rider_id, result.progress),
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


__all__ = [
    "Confirmation",
    "FeedbackResult",
    "RiderChanges",
    "RiderDesk",
    "RiderError",
    "RiderFields",
    "RiderStart",
    "StrapFields",
    "feedback_json",
    "next_session_json",
    "progress_json",
    "rider_json",
]
