"""A rider's program state as the JSON the store keeps (`Rider.program_state`): the
progression engine's `ProgramState`, plus each therapist's answer to an advance (who confirmed
or declined it, and when). Times are kept in UTC, whatever zone the gym's weeks are counted in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from treadmilld.programs import PendingConfirm, ProgramState, just_after

# The therapists' answers, each a list of {"to_stage", "therapist", "at"} in the order given.
Answers = Literal["confirmations", "declines"]
ANSWERS: tuple[Answers, ...] = ("confirmations", "declines")


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def state_json(state: ProgramState, kept: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`state` as stored, with the therapists' answers carried over from `kept` (the rider's
    stored state; None for a program just begun)."""
    pending = state.pending_confirm
    return {
        "program": state.program,
        "stage": state.stage,
        "started_at": _utc(state.started_at),
        "stage_from": _utc(state.stage_from),
        "pending_confirm": None
        if pending is None
        else {"to_stage": pending.to_stage, "since": _utc(pending.since)},
        **{kind: [dict(entry) for entry in (kept or {}).get(kind, [])] for kind in ANSWERS},
    }


def with_answer(
    data: dict[str, Any], kind: Answers, *, to_stage: int, therapist: str, at: datetime
) -> dict[str, Any]:
    """`data` with one more therapist's answer about the advance to `to_stage`."""
    entry = {"to_stage": to_stage, "therapist": therapist, "at": _utc(at)}
    return {**data, kind: [*data.get(kind, []), entry]}


def state_from(data: Mapping[str, Any]) -> ProgramState:
    pending = data.get("pending_confirm")
    if "stage_from" in data:
        stage_from = datetime.fromisoformat(data["stage_from"])
    else:
        # Kept by earlier versions: `stage_since`, the last instant that did not count. The
        # instant after it is the first that does, so such a state reads exactly as meant.
        stage_from = just_after(datetime.fromisoformat(data["stage_since"]))
    return ProgramState(
        program=str(data["program"]),
        stage=int(data["stage"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        stage_from=stage_from,
        pending_confirm=None
        if not pending
        else PendingConfirm(
            to_stage=int(pending["to_stage"]), since=datetime.fromisoformat(pending["since"])
        ),
    )
