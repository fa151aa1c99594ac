"""Program weeks are the gym's local weeks, and a stage counts from the instant it was entered
on: a session started in the very instant a rider signed up is theirs, the session that moved
them is not the new stage's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tests.programs.rider import SimulatedRider, builtin
from treadmilld.programs import Decision, ProgramState, evaluate

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_session_just_after_local_midnight_on_monday_counts_in_the_new_local_week() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    # Monday 11 January 2027, 00:30 in Berlin: still Sunday 23:30 in UTC.
    monday_night = datetime(2027, 1, 11, 0, 30, tzinfo=BERLIN)
    rider.ride(datetime(2027, 1, 6, 9, 0, tzinfo=UTC))  # Wednesday of the week before
    rider.ride(monday_night.astimezone(UTC))
    later_on_monday = datetime(2027, 1, 11, 18, 0, tzinfo=UTC)

    in_berlin = rider.next(later_on_monday.astimezone(BERLIN)).progress
    in_utc = rider.next(later_on_monday).progress

    assert in_berlin.sessions_this_week == 1
    assert in_utc.sessions_this_week == 0


def test_a_week_with_the_change_to_summer_time_is_still_monday_to_sunday_locally() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    # Berlin moves its clocks forward on Sunday 28 March 2027: that week has 167 hours.
    first = datetime(2027, 3, 22, 0, 15, tzinfo=BERLIN)  # Monday, CET
    last = datetime(2027, 3, 28, 23, 45, tzinfo=BERLIN)  # Sunday, CEST
    next_monday = datetime(2027, 3, 29, 0, 15, tzinfo=BERLIN)  # CEST
    for at in (first, last, next_monday):
        rider.ride(at.astimezone(UTC))

    sunday_night = rider.next(datetime(2027, 3, 28, 23, 50, tzinfo=BERLIN)).progress
    monday = rider.next(datetime(2027, 3, 29, 0, 20, tzinfo=BERLIN)).progress
    # A fixed offset taken in winter puts Monday 00:15 summer time back on Sunday, so that
    # "week" would hold all three.
    winter_offset = timezone(timedelta(hours=1))
    fixed = rider.next(datetime(2027, 3, 29, 0, 20, tzinfo=BERLIN).astimezone(winter_offset))

    assert sunday_night.sessions_this_week == 2
    assert monday.sessions_this_week == 1
    assert fixed.progress.sessions_this_week == 3


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
