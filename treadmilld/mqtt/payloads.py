"""Every payload the daemon accepts over MQTT, validated by pydantic before anything runs.

A payload that fails here gets an error reply and changes nothing. Each valid payload maps
to exactly one `Command`, so a message can never half-apply (e.g. speed set, incline
refused); the commands themselves are in treadmilld.mqtt.commands.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
    model_validator,
)

from treadmilld.engine.api import MAX_BODY_WEIGHT_KG, MIN_BODY_WEIGHT_KG
from treadmilld.mqtt.commands import (
    Command,
    SelectProfile,
    SetBodyWeight,
    SetIncline,
    SetSpeed,
    Start,
    argumentless_command,
)
from treadmilld.riders.api import (
    RiderChanges,
    RiderFields,
    RiderId,
    Score,
    TherapistName,
    WorkoutId,
)

CommandName = Literal["start", "pause", "resume", "stop", "emergency_stop", "skip", "confirm_turn"]
COMMAND_NAMES: tuple[str, ...] = get_args(CommandName)

# Sanity bounds only: the engine's safety governor holds the real (per-treadmill, clinical)
# limits and clamps or refuses within them. These catch typos such as 85 for 8.5 km/h.
# Numbers are strict, like `clinical`: a JSON number (an integer is fine), never a string such
# as "80" or a boolean. `set/<field>` values are text by nature and converted before this.
SpeedKmh = Annotated[float, Strict(), Field(ge=0.0, le=40.0, allow_inf_nan=False)]
InclinePct = Annotated[float, Strict(), Field(ge=-30.0, le=40.0, allow_inf_nan=False)]
BodyWeightKg = Annotated[
    float, Strict(), Field(ge=MIN_BODY_WEIGHT_KG, le=MAX_BODY_WEIGHT_KG, allow_inf_nan=False)
]
ProfileName = Annotated[str, Field(min_length=1, max_length=100)]
Transaction = str | int


class PayloadError(ValueError):
    """A payload that cannot be accepted; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Envelope(BaseModel):
    """Fields every command and request may carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction: Transaction | None = Field(
        default=None, description="echoed in the reply so a client can match it"
    )
    ts: AwareDatetime | None = Field(
        default=None,
        description="when the client sent it (epoch seconds or ISO 8601 with zone); "
        "older than mqtt.max_command_age_s is refused",
    )


class SetPayload(_Envelope):
    """`<base>/<id>/set`: exactly one of a command, a profile selection, one setpoint or the
    body weight (`{"body_weight_kg": 80}` alone: the weight used from now on)."""

    command: CommandName | None = None
    profile: ProfileName | None = None
    body_weight_kg: BodyWeightKg | None = None
    clinical: StrictBool | None = None
    rider: RiderId | None = Field(
        default=None, description="start for this rider: their weight, limits, next session"
    )
    speed_kmh: SpeedKmh | None = None
    incline_pct: InclinePct | None = None

    @model_validator(mode="after")
    def _exactly_one_action(self) -> SetPayload:
        setpoints = [
            name for name in ("speed_kmh", "incline_pct") if getattr(self, name) is not None
        ]
        start_options = (
            self.profile is not None
            or self.body_weight_kg is not None
            or (self.clinical is not None)
            or self.rider is not None
        )
        if self.command is not None:
            if setpoints:
                raise ValueError(
                    f"send {setpoints[0]} in its own message, not together with a command"
                )
            if start_options and self.command != "start":
                raise ValueError(
                    "profile, body_weight_kg, clinical and rider only go with command 'start'"
                )
        elif len(setpoints) > 1:
            raise ValueError("send speed_kmh and incline_pct as separate messages")
        elif setpoints and start_options:
            raise ValueError(f"send {setpoints[0]} in its own message, not with a profile")
        elif self.rider is not None:
            raise ValueError(
                'rider only goes with command \'start\': {"command": "start", "rider": ...}'
            )
        elif not setpoints and self.profile is None:
            if self.body_weight_kg is None:
                raise ValueError(
                    "nothing to do: give a command, a profile, speed_kmh, incline_pct or "
                    "body_weight_kg"
                )
            if self.clinical is not None:
                raise ValueError("clinical only goes with command 'start' or a profile")
        return self

    def to_command(self) -> Command:
        if self.command == "start":
            return Start(
                profile=self.profile,
                body_weight_kg=self.body_weight_kg,
                clinical=bool(self.clinical),
                rider=self.rider,
            )
        if self.command is not None and (named := argumentless_command(self.command)) is not None:
            return named
        if self.speed_kmh is not None:
            return SetSpeed(self.speed_kmh)
        if self.incline_pct is not None:
            return SetIncline(self.incline_pct)
        if self.profile is not None:
            return SelectProfile(
                self.profile, body_weight_kg=self.body_weight_kg, clinical=bool(self.clinical)
            )
        if self.body_weight_kg is not None:
            return SetBodyWeight(self.body_weight_kg)
        # `_exactly_one_action` refused every other combination before this runs.
        raise PayloadError("invalid_payload", "nothing to do")


class EmptyRequest(_Envelope):
    """A request that takes no arguments (pause, stop, health_check, ...): the payload is
    `{}` or just the envelope fields. An empty payload is refused before this model."""


class StartRequest(_Envelope):
    """`request/start`: the profile may be omitted when one was selected via `set`, or when
    the start is for a rider on a program (their next session runs)."""

    profile: ProfileName | None = None
    body_weight_kg: BodyWeightKg | None = None
    clinical: StrictBool = False
    rider: RiderId | None = None


class SetSpeedRequest(_Envelope):
    speed_kmh: SpeedKmh


class SetInclineRequest(_Envelope):
    incline_pct: InclinePct


class UploadProfileRequest(_Envelope):
    """`bridge/<instance>/request/upload_profile`: one profile, as the TOML text of a profile
    file or as the same profile as a JSON object (docs/profiles.md)."""

    toml: str | None = Field(default=None, min_length=1, description="a profile file's text")
    profile: dict[str, Any] | None = Field(
        default=None, description="the profile as a JSON object (the TOML file's structure)"
    )
    replace: StrictBool = Field(
        default=False, description="overwrite an uploaded profile of the same name"
    )

    @model_validator(mode="after")
    def _exactly_one_profile(self) -> UploadProfileRequest:
        if (self.toml is None) == (self.profile is None):
            raise ValueError(
                "send the profile either as `toml` (the file's text) or as `profile` "
                "(a JSON object), exactly one of them"
            )
        return self


class SetBodyWeightRequest(_Envelope):
    body_weight_kg: BodyWeightKg


# Rider requests, `<base>/bridge/<instance>/request/<action>` (docs/mqtt.md, "Riders"). The
# fields and their checks are the rider service's own (treadmilld.riders.api).


class RiderCreateRequest(RiderFields, _Envelope):
    """`rider_create`: a new rider."""


class RiderUpdateRequest(RiderChanges, _Envelope):
    """`rider_update`: the rider's id and only the fields to change."""

    rider_id: RiderId


class RiderIdRequest(_Envelope):
    """`rider_get`, `rider_delete`, `rider_export`, `rider_progress`."""

    rider_id: RiderId


class FeedbackRequest(_Envelope):
    """`feedback`: what the rider reports after a workout, each 0 to 10."""

    workout_id: WorkoutId
    effort: Score
    pain: Score


class ProgramConfirmRequest(_Envelope):
    """`program_confirm`: a therapist confirms the advance a clinical program waits for."""

    rider_id: RiderId
    therapist: TherapistName


class HistoryGetRequest(_Envelope):
    """`history_get`: one workout's summary."""

    workout_id: WorkoutId


RIDER_REQUEST_MODELS: dict[str, type[_Envelope]] = {
    "rider_create": RiderCreateRequest,
    "rider_update": RiderUpdateRequest,
    "rider_get": RiderIdRequest,
    "rider_list": EmptyRequest,
    "rider_delete": RiderIdRequest,
    "rider_export": RiderIdRequest,
    "rider_progress": RiderIdRequest,
    "feedback": FeedbackRequest,
    "program_confirm": ProgramConfirmRequest,
    "history_get": HistoryGetRequest,
}


TREADMILL_REQUESTS: dict[str, type[_Envelope]] = {
    "start": StartRequest,
    "pause": EmptyRequest,
    "resume": EmptyRequest,
    "stop": EmptyRequest,
    "emergency_stop": EmptyRequest,
    "skip": EmptyRequest,
    "confirm_turn": EmptyRequest,
    "set_speed": SetSpeedRequest,
    "set_incline": SetInclineRequest,
    "set_body_weight": SetBodyWeightRequest,
    "state": EmptyRequest,
}

BRIDGE_REQUESTS: tuple[str, ...] = (
    "health_check",
    "info",
    "devices",
    "profiles",
    "reload_profiles",
    "upload_profile",
)

# `<base>/<id>/set/<field>` fields and how their plain value maps onto `SetPayload`.
PLAIN_SET_FIELDS: tuple[str, ...] = (
    "command",
    "profile",
    "speed_kmh",
    "incline_pct",
    "body_weight_kg",
)


def request_command(action: str, request: _Envelope) -> Command | None:
    """The command a treadmill request stands for (None for read-only requests)."""
    if isinstance(request, StartRequest):
        return Start(
            profile=request.profile,
            body_weight_kg=request.body_weight_kg,
            clinical=request.clinical,
            rider=request.rider,
        )
    if isinstance(request, SetSpeedRequest):
        return SetSpeed(request.speed_kmh)
    if isinstance(request, SetInclineRequest):
        return SetIncline(request.incline_pct)
    if isinstance(request, SetBodyWeightRequest):
        return SetBodyWeight(request.body_weight_kg)
    return argumentless_command(action)


def describe_validation_error(error: ValidationError) -> str:
    """One readable line: `speed_kmh: Input should be less than or equal to 40`."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(piece) for piece in item["loc"]) or "payload"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _refuse_empty(raw: bytes, where: str) -> None:
    """An empty message is how a retained message is cleared (and what some tools send for
    "no arguments"): it is never taken as a command."""
    if not raw.strip():
        raise PayloadError(
            "empty_payload",
            f"empty payload on {where}: nothing was done (an empty message is how a retained "
            "message is cleared, never a command); send a JSON object, at least {}",
        )


def _json_object(raw: bytes, where: str) -> dict[str, Any]:
    _refuse_empty(raw, where)
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError(
            "invalid_json", f"payload is not JSON ({error}); send an object"
        ) from None
    if not isinstance(value, dict):
        raise PayloadError(
            "invalid_payload", f"payload must be a JSON object, got {type(value).__name__}"
        )
    return value


def transaction_of(raw: bytes) -> Transaction | None:
    """The `transaction` of a payload, best effort, so even a refusal can echo it."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(value, dict):
        transaction = value.get("transaction")
        if isinstance(transaction, str | int) and not isinstance(transaction, bool):
            return transaction
    return None


def parse_set(raw: bytes) -> SetPayload:
    data = _json_object(raw, "set")
    try:
        return SetPayload.model_validate(data)
    except ValidationError as error:
        raise PayloadError("invalid_payload", describe_validation_error(error)) from None


def parse_plain_set(field: str, raw: bytes) -> SetPayload:
    """`set/<field>` with a plain value, e.g. `set/speed_kmh` = `8.5`."""
    if field not in PLAIN_SET_FIELDS:
        raise PayloadError(
            "unknown_field",
            f"set/{field} is not a settable field; use one of: {', '.join(PLAIN_SET_FIELDS)}",
        )
    _refuse_empty(raw, f"set/{field}")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PayloadError("invalid_payload", f"set/{field} needs a UTF-8 text value") from None
    value: Any = text
    if field in ("speed_kmh", "incline_pct", "body_weight_kg"):
        try:
            value = float(text)
        except ValueError:
            raise PayloadError(
                "invalid_payload", f"set/{field} needs a number, got {text!r}"
            ) from None
    try:
        return SetPayload.model_validate({field: value})
    except ValidationError as error:
        raise PayloadError("invalid_payload", describe_validation_error(error)) from None


def parse_request(action: str, raw: bytes, known: dict[str, type[_Envelope]]) -> _Envelope:
    model = known.get(action)
    if model is None:
        raise PayloadError(
            "unknown_action",
            f"no request {action!r}; known requests: {', '.join(sorted(known))}",
        )
    data = _json_object(raw, f"request/{action}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise PayloadError("invalid_payload", describe_validation_error(error)) from None


def command_age_s(sent: datetime | None, now_epoch_s: float) -> float | None:
    """Seconds since the client stamped the command (negative = stamped in the future)."""
    if sent is None:
        return None
    return now_epoch_s - sent.timestamp()


BRIDGE_REQUEST_MODELS: dict[str, type[_Envelope]] = {
    **dict.fromkeys(BRIDGE_REQUESTS, EmptyRequest),
    "upload_profile": UploadProfileRequest,
}

__all__ = [
    "BRIDGE_REQUEST_MODELS",
    "COMMAND_NAMES",
    "PLAIN_SET_FIELDS",
    "RIDER_REQUEST_MODELS",
    "TREADMILL_REQUESTS",
    "Command",
    "EmptyRequest",
    "FeedbackRequest",
    "HistoryGetRequest",
    "PayloadError",
    "ProgramConfirmRequest",
    "RiderCreateRequest",
    "RiderIdRequest",
    "RiderUpdateRequest",
    "SetBodyWeightRequest",
    "SetInclineRequest",
    "SetPayload",
    "SetSpeedRequest",
    "StartRequest",
    "UploadProfileRequest",
    "command_age_s",
    "describe_validation_error",
    "parse_plain_set",
    "parse_request",
    "parse_set",
    "request_command",
    "transaction_of",
]
