"""A rider's program state as the JSON the store keeps (`Rider.program_state`): the
progression engine's `ProgramState`, plus who confirmed each clinical advance and when. Times
are kept in UTC, whatever zone the gym's weeks are counted in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from treadmilld.programs import PendingConfirm, ProgramState, just_after


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def state_json(state: ProgramState, confirmations: list[dict[str, Any]]) -> dict[str, Any]:
    pending = state.pending_confirm
    return {
        "program": state.program,
        "stage": state.stage,
        "started_at": _utc(state.started_at),
        "stage_from": _utc(state.stage_from),
        "pending_confirm": None
        if pending is None
        else {"to_stage": pending.to_stage, "since": _utc(pending.since)},
        "confirmations": confirmations,
    }


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


def recorded_confirmations(data: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not data:
        return []
    return [dict(entry) for entry in data.get("confirmations", [])]
