"""A stage counts from the instant it was entered on: a session started in the very instant a
rider signed up is theirs, the session that moved them is not the new stage's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.programs.rider import SimulatedRider, builtin
from treadmilld.programs import Decision, ProgramState, evaluate


def test_a_first_session_started_in_the_instant_of_sign_up_counts() -> None:
    program = builtin("clinical-post-op-knee")
    rider = SimulatedRider(program)
    signed_up = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    rider.state = ProgramState.begin(program, signed_up)
    rider.ride(signed_up)
    upcoming = rider.next(signed_up + timedelta(hours=2)).next_session
    # It was the first of the clinical program's two sessions without incline.
    assert upcoming.session_number == 2


def test_the_session_that_moved_the_rider_is_not_counted_again_by_the_stage_it_led_to() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    painful = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
    stepped = rider.ride(painful, pain=6)
    assert stepped.decision is Decision.STEP_BACK
    # The first stage starts its count again after the painful session, which stays behind.
    again = evaluate(rider.program, rider.state, rider.history, painful + timedelta(days=1))
    assert again.decision is Decision.STAY
    assert again.state == rider.state
    assert "0 of 8 qualifying sessions" in again.reason
