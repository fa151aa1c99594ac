"""What every MQTT payload shares: the envelope fields, `PayloadError`, and raw bytes turned
into a validated model (an empty message, text that is not JSON, or a JSON value that is not
an object refused first), each refusal worded for the person who sent it.

The models of each kind of payload are in treadmilld.mqtt.payloads (commands, treadmill and
bridge requests) and treadmilld.mqtt.rider_payloads (riders, progress, history).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

Transaction = str | int


class PayloadError(ValueError):
    """A payload that cannot be accepted; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Envelope(BaseModel):
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


class EmptyRequest(Envelope):
    """A request that takes no arguments (pause, stop, health_check, ...): the payload is
    `{}` or just the envelope fields. An empty payload is refused before this model."""


def describe_validation_error(error: ValidationError) -> str:
    """One readable line: `speed_kmh: Input should be less than or equal to 40`."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(piece) for piece in item["loc"]) or "payload"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def refuse_empty(raw: bytes, where: str) -> None:
    """An empty message is how a retained message is cleared (and what some tools send for
    "no arguments"): it is never taken as a command."""
    if not raw.strip():
        raise PayloadError(
            "empty_payload",
            f"empty payload on {where}: nothing was done (an empty message is how a retained "
            "message is cleared, never a command); send a JSON object, at least {}",
        )


def json_object(raw: bytes, where: str) -> dict[str, Any]:
    refuse_empty(raw, where)
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


def parse_request(action: str, raw: bytes, known: dict[str, type[Envelope]]) -> Envelope:
    model = known.get(action)
    if model is None:
        raise PayloadError(
            "unknown_action",
            f"no request {action!r}; known requests: {', '.join(sorted(known))}",
        )
    data = json_object(raw, f"request/{action}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise PayloadError("invalid_payload", describe_validation_error(error)) from None


def command_age_s(sent: datetime | None, now_epoch_s: float) -> float | None:
    """Seconds since the client stamped the command (negative = stamped in the future)."""
    if sent is None:
        return None
    return now_epoch_s - sent.timestamp()
