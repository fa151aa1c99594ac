"""The progression engine, walked by a simulated rider in virtual dates."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.programs.rider import (
    FOUR_A_WEEK,
    SimulatedRider,
    builtin,
    session_day,
)
from treadmilld.engine.api import AbortReason
from treadmilld.history.records import Feedback, WorkoutOutcome
from treadmilld.programs import (
    Decision,
    NothingToConfirmError,
    ProgramMismatchError,
    ProgramState,
    confirm_advance,
    decline_advance,
    evaluate,
)


def ride_weeks(rider: SimulatedRider, weeks: range, days: tuple[int, ...] = FOUR_A_WEEK) -> None:
    for week in weeks:
        for day in days:
            rider.ride(session_day(week, day))


def stage_of_each_week(rider: SimulatedRider) -> dict[int, set[int]]:
    """Which stage each week's sessions ran for, from the recorded history."""
    first = rider.history[0].started_at
    weeks: dict[int, set[int]] = {}
    for record in rider.history:
        assert record.program_stage is not None
        weeks.setdefault((record.started_at - first).days // 7 + 1, set()).add(record.program_stage)
    return weeks


def test_eight_weeks_of_the_seed_program_advance_every_two_weeks_to_the_routine() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    decisions = []
    for week in range(1, 9):
        for day in FOUR_A_WEEK:
            decisions.append(rider.ride(session_day(week, day)).decision)

    # Eight sessions a stage (two weeks at four a week): A, A, B, B, C, C, the routine, routine.
    assert stage_of_each_week(rider) == {
        1: {0},
        2: {0},
        3: {1},
        4: {1},
        5: {2},
        6: {2},
        7: {3},
        8: {3},
    }
    advanced_after = [n for n, d in enumerate(decisions, start=1) if d is Decision.ADVANCE]
    assert advanced_after == [8, 16, 24]
    assert [r.profile_name for r in rider.history[7:9]] == ["p1-starter-a", "p1-starter-b"]
    assert rider.next(session_day(9, 0)).next_session.profile == "p2-retro-core"


def test_the_routine_leads_to_jogging_after_four_weeks_and_jogging_is_the_end() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 11))
    # Weeks 7-10 are the routine's sixteen sessions.
    assert stage_of_each_week(rider)[10] == {3}
    assert rider.next(session_day(11, 0)).next_session.profile == "p6-backward-jog"
    ride_weeks(rider, range(11, 15), days=(0, 2, 4))
    assert rider.state.stage == 4
    assert rider.next(session_day(15, 0)).decision is Decision.STAY


def test_hard_sessions_do_not_count_so_the_stage_lasts_longer() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 2))
    # Week 2: two sessions felt too hard (effort 7 > 5): they count for nothing.
    for day, effort in zip(FOUR_A_WEEK, (3, 7, 7, 3), strict=True):
        rider.ride(session_day(2, day), effort=effort)
    assert rider.state.stage == 0
    rider.ride(session_day(3, 0))
    assert rider.state.stage == 0
    # The eighth qualifying session, inside the 21-day window.
    assert rider.ride(session_day(3, 1)).decision is Decision.ADVANCE
    assert rider.state.stage == 1


def test_sessions_spread_wider_than_the_window_do_not_advance() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    # One session a week: never eight within 21 days.
    for week in range(1, 11):
        rider.ride(session_day(week, 0))
    assert rider.state.stage == 0
    assert "3 of 8 qualifying sessions in this stage in the last 21 days" in (
        rider.next(session_day(10, 6)).reason
    )


def test_a_session_without_feedback_counts_once_feedback_comes() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 2))
    for day in FOUR_A_WEEK[:3]:
        rider.ride(session_day(2, day))
    rider.ride(session_day(2, 5), effort=None)
    assert rider.state.stage == 0
    # The rider posts their feedback for that last session the day after.
    last = rider.history[-1]
    rider.history[-1] = replace(last, feedback=Feedback(3, 1, last.started_at + timedelta(days=1)))
    answer = rider.next(session_day(2, 6))
    assert answer.decision is Decision.ADVANCE
    assert answer.next_session.profile == "p1-starter-b"


def test_a_pain_report_steps_back_and_the_stage_counts_again() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 5))
    assert rider.state.stage == 2
    answer = rider.ride(session_day(5, 0), pain=6)
    assert answer.decision is Decision.STEP_BACK
    assert "pain 6 reported, above 4" in answer.reason
    assert answer.next_session.profile == "p1-starter-b"
    # Back in stage 1, its count starts again: eight new sessions, not the old ones.
    for n, day in enumerate([1, 3, 5, 7, 8, 10, 12, 14], start=1):
        rider.ride(session_day(5, 0) + timedelta(days=day))
        assert rider.state.stage == (1 if n < 8 else 2)


def test_pain_at_the_first_stage_restarts_its_count() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    for day in FOUR_A_WEEK:
        rider.ride(session_day(1, day))
    answer = rider.ride(session_day(2, 0), pain=5)
    assert answer.decision is Decision.STEP_BACK
    assert answer.state.stage == 0
    ride_weeks(rider, range(2, 3), days=(1, 3, 5))
    ride_weeks(rider, range(3, 4), days=(0, 1, 3, 5))
    assert rider.state.stage == 0  # seven since the pain
    rider.ride(session_day(3, 6))
    assert rider.state.stage == 1


@pytest.mark.parametrize(
    "reason",
    [
        AbortReason.SAFETY_KEY,
        AbortReason.EMERGENCY_STOP,
        AbortReason.OVERSPEED,
        AbortReason.TARGET_NOT_FOLLOWED,
        AbortReason.BELT_STOPPED,
        AbortReason.UNEXPECTED_MOTION,
        AbortReason.STOPPED_AT_CONSOLE,
    ],
)
def test_a_safety_abort_steps_back(reason: AbortReason) -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 3))
    assert rider.state.stage == 1
    answer = rider.ride(
        session_day(3, 0), effort=None, outcome=WorkoutOutcome.ABORTED, abort_reason=reason
    )
    assert answer.decision is Decision.STEP_BACK
    assert reason.value in answer.reason
    assert answer.next_session.profile == "p1-starter-a"


@pytest.mark.parametrize(
    "reason",
    [
        AbortReason.LINK_LOST,
        AbortReason.SHUTDOWN,
        AbortReason.CONTROL_LOST,
        AbortReason.NO_DATA,
        AbortReason.COMMAND_FAILED,
        AbortReason.INTERNAL_ERROR,
    ],
)
def test_an_abort_that_is_not_the_riders_doing_neither_steps_back_nor_counts(
    reason: AbortReason,
) -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 3))
    # Feedback is posted too: the aborted session still does not count towards advancing.
    answer = rider.ride(session_day(3, 0), outcome=WorkoutOutcome.ABORTED, abort_reason=reason)
    assert answer.decision is Decision.STAY
    assert answer.state.stage == 1
    assert "0 of 8 qualifying sessions" in answer.reason


def test_an_interrupted_or_stopped_session_does_not_count_or_step_back() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    rider.ride(session_day(1, 0), outcome=WorkoutOutcome.INTERRUPTED, effort=None)
    answer = rider.ride(session_day(1, 1), outcome=WorkoutOutcome.STOPPED)
    assert answer.decision is Decision.STAY
    assert "0 of 8 qualifying sessions" in answer.reason


def test_evaluating_again_after_a_move_stays() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 3))
    again = evaluate(rider.program, rider.state, rider.history, session_day(3, 0))
    assert again.decision is Decision.STAY
    assert again.state == rider.state


def test_a_clinical_program_waits_for_the_therapist_then_advances() -> None:
    rider = SimulatedRider(builtin("clinical-knee-oa"))
    ride_weeks(rider, range(1, 7), days=(0, 2, 4))  # the trial's six weeks, 18 sessions
    answer = rider.next(session_day(7, 0))
    assert answer.decision is Decision.AWAIT_CONFIRM
    assert answer.progress.awaiting_confirm
    # Until a therapist confirms, the rider keeps doing the same stage.
    assert answer.next_session.profile == "p3-knee-oa"
    rider.ride(session_day(7, 0))
    assert rider.state.stage == 0
    assert rider.state.pending_confirm is not None

    confirmed = confirm_advance(rider.program, rider.state, at=session_day(7, 1))
    rider.state = confirmed
    answer = rider.next(session_day(7, 2))
    assert answer.decision is Decision.STAY
    assert answer.next_session.profile == "p2-retro-core"
    with pytest.raises(NothingToConfirmError, match="evaluate the rider's sessions first"):
        confirm_advance(rider.program, rider.state, at=session_day(7, 2))


def test_a_declined_advance_needs_the_rule_met_again() -> None:
    rider = SimulatedRider(builtin("clinical-post-op-knee"))
    ride_weeks(rider, range(1, 7), days=(0, 2, 4))
    assert rider.state.pending_confirm is not None
    rider.state = decline_advance(rider.program, rider.state, at=session_day(7, 0))
    rider.ride(session_day(7, 1))
    assert rider.state.pending_confirm is None
    assert rider.state.stage == 0


def test_pain_while_waiting_for_the_confirm_withdraws_the_request() -> None:
    rider = SimulatedRider(builtin("clinical-knee-oa"))
    ride_weeks(rider, range(1, 7), days=(0, 2, 4))
    assert rider.state.pending_confirm is not None
    answer = rider.ride(session_day(7, 0), pain=7)
    assert answer.decision is Decision.STEP_BACK
    assert answer.state.pending_confirm is None
    with pytest.raises(NothingToConfirmError):
        confirm_advance(rider.program, rider.state, at=session_day(7, 1))


def test_a_clinical_program_holds_the_incline_at_zero_for_the_first_two_sessions() -> None:
    rider = SimulatedRider(builtin("clinical-post-op-knee"))
    assert rider.next(session_day(1, 0)).next_session.max_incline_pct == 0.0
    rider.ride(session_day(1, 0))
    # An aborted session is not one of the two: the cap holds until two are completed.
    rider.ride(
        session_day(1, 2),
        effort=None,
        outcome=WorkoutOutcome.ABORTED,
        abort_reason=AbortReason.LINK_LOST,
    )
    upcoming = rider.next(session_day(1, 4)).next_session
    assert (upcoming.session_number, upcoming.max_incline_pct) == (2, 0.0)
    rider.ride(session_day(1, 4))
    upcoming = rider.next(session_day(2, 0)).next_session
    assert (upcoming.session_number, upcoming.max_incline_pct) == (3, None)
    assert rider.program.max_incline_pct_for_session(3) is None


def test_a_general_program_sets_no_incline_cap_of_its_own() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    assert rider.next(session_day(1, 0)).next_session.max_incline_pct is None


def test_progress_counts_the_week_the_streak_and_the_last_workout() -> None:
    rider = SimulatedRider(builtin("retro-starter"))
    ride_weeks(rider, range(1, 4))
    rider.ride(session_day(4, 0))
    rider.ride(session_day(4, 1), effort=4, pain=2)
    progress = rider.next(session_day(4, 2)).progress
    assert (progress.sessions_this_week, progress.weekly_target) == (2, 4)
    # Weeks 1-3 met their four; week 4 is under way and does not break the streak.
    assert progress.streak_weeks == 3
    assert progress.stage == 1
    assert progress.next_profile == "p1-starter-b"
    last = progress.last_workout
    assert last is not None
    assert (last.workout_id, last.effort, last.pain) == ("w-14", 4, 2)
    assert last.started_at == session_day(4, 1)
    assert last.distance_backward_m == 250.0

    # Week 4 ends with two sessions: below target, the streak is broken by Monday.
    assert rider.next(session_day(5, 0)).progress.streak_weeks == 0
    ride_weeks(rider, range(5, 6))
    assert rider.next(session_day(5, 6)).progress.streak_weeks == 1


def test_a_state_for_another_program_is_refused() -> None:
    state = ProgramState.begin(builtin("clinical-knee-oa"), session_day(1, 0))
    with pytest.raises(ProgramMismatchError, match="begin the new one"):
        evaluate(builtin("retro-starter"), state, [], session_day(1, 1))


def test_a_program_cut_to_fewer_stages_keeps_its_rider_on_the_last_one() -> None:
    program = builtin("retro-starter")
    shorter = program.model_copy(update={"stages": program.stages[:2]})
    state = replace(ProgramState.begin(program, session_day(1, 0)), stage=4)
    answer = evaluate(shorter, state, [], session_day(1, 1))
    assert answer.state.stage == 1
    assert answer.next_session.profile == "p1-starter-b"


def test_a_confirm_asked_for_a_stage_the_program_no_longer_has_is_dropped() -> None:
    program = builtin("clinical-knee-oa")
    rider = SimulatedRider(program)
    ride_weeks(rider, range(1, 7), days=(0, 2, 4))
    assert rider.state.pending_confirm is not None
    one_stage = program.model_copy(
        update={"stages": [program.stages[0].model_copy(update={"advance": None})]}
    )
    answer = evaluate(one_stage, rider.state, rider.history, session_day(7, 0))
    assert answer.decision is Decision.STAY
    assert answer.state.pending_confirm is None
    assert not answer.progress.awaiting_confirm
