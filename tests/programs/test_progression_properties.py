"""Whatever the rider does, the stage moves at most one step per session (or per therapist
answer) and never leaves the program's ends."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.programs.rider import FIRST_MONDAY, SimulatedRider, builtin, builtin_programs
from treadmilld.engine.api import AbortReason
from treadmilld.history.records import WorkoutOutcome
from treadmilld.programs import confirm_advance, decline_advance


@dataclass(frozen=True)
class Session:
    gap_hours: int
    outcome: WorkoutOutcome
    abort_reason: AbortReason
    effort: int | None
    pain: int
    therapist: str  # what a therapist does before it, when a confirm is pending


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    # Mostly good sessions a day or two apart, so the advance rules can be met within their
    # windows; now and then a hard, painful, aborted or unfinished one, or a long break.
    kind = draw(
        st.sampled_from(["good"] * 10 + ["hard", "painful", "aborted", "unfinished", "break"])
    )
    gap_hours = draw(st.integers(min_value=1, max_value=24 * 30 if kind == "break" else 48))
    outcome = WorkoutOutcome.FINISHED
    effort: int | None = draw(st.integers(min_value=0, max_value=5))
    pain = draw(st.integers(min_value=0, max_value=2))
    if kind == "hard":
        effort = draw(st.none() | st.integers(min_value=0, max_value=10))
    elif kind == "painful":
        pain = draw(st.integers(min_value=0, max_value=10))
    elif kind == "aborted":
        outcome = WorkoutOutcome.ABORTED
    elif kind == "unfinished":
        outcome = draw(st.sampled_from([WorkoutOutcome.STOPPED, WorkoutOutcome.INTERRUPTED]))
    return Session(
        gap_hours=gap_hours,
        outcome=outcome,
        abort_reason=draw(st.sampled_from(AbortReason)),
        effort=effort,
        pain=pain,
        therapist=draw(st.sampled_from(["confirm", "decline", "nothing"])),
    )


@given(
    name=st.sampled_from(sorted(builtin_programs().names())),
    plan=st.lists(sessions(), min_size=16, max_size=60),
    data=st.data(),
)
def test_the_stage_moves_at_most_one_step_per_session_and_stays_inside_the_program(
    name: str, plan: list[Session], data: st.DataObject
) -> None:
    rider = SimulatedRider(builtin(name))
    last_stage = len(rider.program.stages) - 1
    # The rider may already be anywhere in the program, ends included.
    rider.state = replace(
        rider.state, stage=data.draw(st.integers(min_value=0, max_value=last_stage))
    )
    at = FIRST_MONDAY
    for session in plan:
        at += timedelta(hours=session.gap_hours)
        if rider.state.pending_confirm is not None and session.therapist != "nothing":
            before = rider.state.stage
            answer = confirm_advance if session.therapist == "confirm" else decline_advance
            rider.state = answer(rider.program, rider.state, at=at - timedelta(minutes=1))
            assert rider.state.stage - before in (0, 1)
        before = rider.state.stage
        rider.ride(
            at,
            effort=session.effort,
            pain=session.pain,
            outcome=session.outcome,
            abort_reason=(
                session.abort_reason if session.outcome is WorkoutOutcome.ABORTED else None
            ),
        )
        assert abs(rider.state.stage - before) <= 1
        assert 0 <= rider.state.stage <= last_stage
        # Only clinical programs wait for a therapist; the others move on their own.
        assert rider.state.pending_confirm is None or rider.program.clinical
