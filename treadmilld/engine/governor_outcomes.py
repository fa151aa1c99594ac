"""What the safety governor hands back besides a target written: a refusal (nothing was
written), a verdict on the measured belt (the workout must abort), a limit that changed a
request. `treadmilld.engine.governor` re-exports them; callers import them from there."""

from __future__ import annotations

from dataclasses import dataclass

from treadmilld.engine.api import AbortReason


class GovernorRefusedError(Exception):
    """The governor refused a write that would break a limit; nothing was written."""

    def __init__(self, limit: str, message: str, *, seconds_left: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.seconds_left = seconds_left


class BeltFaultError(Exception):
    """The measured belt does not do what it was told; the workout must abort and stop."""

    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class LimitNotice:
    limit: str
    requested: float
    applied: float
