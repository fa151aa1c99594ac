"""Every payload the daemon accepts over MQTT, validated by pydantic before anything runs.

A payload that fails here gets an error reply and changes nothing. Each valid payload maps
to exactly one `Command`, so a message can never half-apply (e.g. speed set, incline
refused); the commands themselves are in treadmilld.mqtt.commands. The envelope and the
parsing every payload shares are in treadmilld.mqtt.payload_parsing, the rider requests' models
in treadmilld.mqtt.rider_payloads; both are importable from here too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, Strict, StrictBool, ValidationError, model_validator

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
from treadmilld.mqtt.payload_parsing import (
    EmptyRequest,
    Envelope,
    PayloadError,
    Transaction,
    command_age_s,
    describe_validation_error,
    json_object,
    parse_request,
    refuse_empty,
    transaction_of,
)
from treadmilld.mqtt.rider_payloads import (
    RIDER_REQUEST_MODELS,
    FeedbackRequest,
    HistoryGetRequest,
    ProgramConfirmRequest,
    RiderCreateRequest,
    RiderIdRequest,
    RiderUpdateRequest,
)
from treadmilld.riders.api import RiderId, StrapFields

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


class SetPayload(Envelope):
    """`<base>/<id>/set`: exactly one of a command, a profile selection, one setpoint or the
    body weight (`{"body_weight_kg": 80}` alone: the weight used from now on)."""

    command: CommandName | None = None
    profile: ProfileName | None = None
    body_weight_kg: BodyWeightKg | None = None
    clinical: StrictBool | None = None
    rider: RiderId | None = Field(
        default=None, description="start for this rider: their weight, limits, next session"
    )
    heart_rate_strap: StrapFields | None = Field(
        default=None, description="the strap the rider wears for this workout (start only)"
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
            or self.heart_rate_strap is not None
        )
        if self.command is not None:
            if setpoints:
                raise ValueError(
                    f"send {setpoints[0]} in its own message, not together with a command"
                )
            if start_options and self.command != "start":
                raise ValueError(
                    "profile, body_weight_kg, clinical, rider and heart_rate_strap only go with "
                    "command 'start'"
                )
        elif len(setpoints) > 1:
            raise ValueError("send speed_kmh and incline_pct as separate messages")
        elif setpoints and start_options:
            raise ValueError(f"send {setpoints[0]} in its own message, not with a profile")
        elif self.rider is not None or self.heart_rate_strap is not None:
            given = "rider" if self.rider is not None else "heart_rate_strap"
            raise ValueError(
                f'{given} only goes with command \'start\': {{"command": "start", "{given}": ...}}'
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
                heart_rate_strap=self.heart_rate_strap.choice() if self.heart_rate_strap else None,
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


class StartRequest(Envelope):
    """`request/start`: the profile may be omitted when one was selected via `set`, or when
    the start is for a rider on a program (their next session runs)."""

    profile: ProfileName | None = None
    body_weight_kg: BodyWeightKg | None = None
    clinical: StrictBool = False
    rider: RiderId | None = None
    heart_rate_strap: StrapFields | None = Field(
        default=None,
        description="the strap the rider wears for this workout, in place of the rider's own "
        "or the treadmill's",
    )


class SetSpeedRequest(Envelope):
    speed_kmh: SpeedKmh


class SetInclineRequest(Envelope):
    incline_pct: InclinePct


class UploadProfileRequest(Envelope):
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


class SetBodyWeightRequest(Envelope):
    body_weight_kg: BodyWeightKg


TREADMILL_REQUESTS: dict[str, type[Envelope]] = {
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


def request_command(action: str, request: Envelope) -> Command | None:
    """The command a treadmill request stands for (None for read-only requests)."""
    if isinstance(request, StartRequest):
        return Start(
            profile=request.profile,
            body_weight_kg=request.body_weight_kg,
            clinical=request.clinical,
            rider=request.rider,
            heart_rate_strap=request.heart_rate_strap.choice()
            if request.heart_rate_strap
            else None,
        )
    if isinstance(request, SetSpeedRequest):
        return SetSpeed(request.speed_kmh)
    if isinstance(request, SetInclineRequest):
        return SetIncline(request.incline_pct)
    if isinstance(request, SetBodyWeightRequest):
        return SetBodyWeight(request.body_weight_kg)
    return argumentless_command(action)


def parse_set(raw: bytes) -> SetPayload:
    data = json_object(raw, "set")
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
    refuse_empty(raw, f"set/{field}")
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


BRIDGE_REQUEST_MODELS: dict[str, type[Envelope]] = {
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
    "Transaction",
    "UploadProfileRequest",
    "command_age_s",
    "describe_validation_error",
    "parse_plain_set",
    "parse_request",
    "parse_set",
    "request_command",
    "transaction_of",
]
