"""The progression engine: from a program, the rider's place in it, their history and "now",
the next session, whether to advance, step back or wait for a therapist, and the progress
figures a dashboard shows.

Pure and deterministic: frozen values in, frozen values out, no clock, no I/O. The caller stores
the returned `ProgramState` (the store's job) and passes it back next time. A stage counts only
the sessions started from the instant it was entered on (`ProgramState.stage_from`, inclusive),
and one evaluation moves at most one stage: the session that decided the move is the last one
the old stage counts (the new stage is entered the instant after its start), so every step is
caused by a different session. docs/programs.md gives the rules in prose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import assert_never

from treadmilld.engine.api import AbortReason
from treadmilld.history.records import WorkoutOutcome, WorkoutRecord
from treadmilld.programs.program import Program, Stage


class NothingToConfirmError(LookupError):
    """A therapist confirmed (or declined) an advance that no rule asked for."""


class ProgramMismatchError(ValueError):
    """The rider's program state belongs to another program than the one given."""


def is_safety_abort(reason: AbortReason) -> bool:
    """Whether an abort counts against the rider's stage: the rider, the safety key or the
    belt showed the session was not safe. A lost link, a lost control, missing data, a failed
    command, a shutdown or a bug in treadmilld is not the rider's doing, so it does not.
    Exhaustive: a new `AbortReason` does not type-check until it is sorted here."""
    match reason:
        case (
            AbortReason.SAFETY_KEY
            | AbortReason.EMERGENCY_STOP
            # Someone at the console stopped, paused or started the belt in the middle of a
            # workout: the rider reaching for the console is a reason to go easier.
            | AbortReason.STOPPED_AT_CONSOLE
            | AbortReason.PAUSED_AT_CONSOLE
            | AbortReason.STARTED_AT_CONSOLE
            | AbortReason.BELT_STOPPED
            | AbortReason.UNEXPECTED_MOTION
            | AbortReason.OVERSPEED
            | AbortReason.TARGET_NOT_FOLLOWED
        ):
            return True
        case (
            AbortReason.LINK_LOST
            | AbortReason.CONTROL_LOST
            | AbortReason.NO_DATA
            | AbortReason.COMMAND_FAILED
            | AbortReason.SHUTDOWN
            | AbortReason.INTERNAL_ERROR
        ):
            return False
        case _:
            assert_never(reason)


@dataclass(frozen=True, slots=True)
class PendingConfirm:
    """An advance the rules allow, waiting for a therapist (clinical programs only)."""

    to_stage: int
    since: datetime  # start of the session that met the rule


@dataclass(frozen=True, slots=True)
class ProgramState:
    """Where a rider is in a program: what the store keeps between sessions."""

    program: str
    stage: int  # index into `Program.stages`, from 0
    started_at: datetime  # when the rider began the program; earlier sessions never count
    stage_from: datetime  # the first instant whose sessions count in this stage
    pending_confirm: PendingConfirm | None = None

    @classmethod
    def begin(cls, program: Program, at: datetime) -> ProgramState:
        """A rider starting `program` at `at`, in its first stage: a session started in that
        very instant is already theirs."""
        return cls(program=program.name, stage=0, started_at=at, stage_from=at)


def just_after(at: datetime) -> datetime:
    """The next instant after `at` that a datetime can hold. Stored times keep microseconds
    (Python's datetime, SQLite's text and PostgreSQL's timestamptz alike), so no session starts
    between the two: a stage entered here counts every session after the one started at `at`,
    and that one not."""
    return at + timedelta(microseconds=1)


class Decision(StrEnum):
    STAY = "stay"  # keep going in this stage
    ADVANCE = "advance"  # to the next stage
    STEP_BACK = "step_back"  # to the previous stage (in the first stage: its count restarts)
    AWAIT_CONFIRM = "await_confirm"  # the rules allow advancing; a therapist has to confirm


@dataclass(frozen=True, slots=True)
class NextSession:
    """What the start path runs next for this rider."""

    program: str
    stage: int
    profile: str
    session_number: int  # in the program, from 1: completed sessions so far + 1
    # The program's incline cap for this session (0.0 in a clinical program's first two
    # sessions); None when only the safety limits apply.
    max_incline_pct: float | None


@dataclass(frozen=True, slots=True)
class LastWorkout:
    workout_id: str
    profile: str
    started_at: datetime
    outcome: WorkoutOutcome
    abort_reason: AbortReason | None
    duration_s: float | None
    distance_forward_m: float | None
    distance_backward_m: float | None
    kcal: float | None
    effort: int | None
    pain: int | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Per-rider progress, as a dashboard shows it."""

    program: str
    stage: int
    stages: int
    profile: str
    sessions_this_week: int  # completed sessions in the ISO week of `now`
    weekly_target: int  # the current stage's sessions_per_week
    streak_weeks: int  # consecutive ISO weeks that met their target (see `streak_weeks`)
    next_profile: str
    awaiting_confirm: bool
    last_workout: LastWorkout | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    decision: Decision
    reason: str  # one sentence for the rider or therapist
    state: ProgramState  # after the decision: what to store
    next_session: NextSession
    progress: Progress


def _counts(record: WorkoutRecord, program: Program) -> bool:
    return record.program_name == program.name


def _completed(record: WorkoutRecord) -> bool:
    """Ran to its end: neither stopped, aborted nor interrupted."""
    return record.outcome is WorkoutOutcome.FINISHED


def _step_back_cause(record: WorkoutRecord, stage: Stage) -> str | None:
    rule = stage.step_back
    if record.feedback is not None and record.feedback.pain > rule.pain_above:
        return f"pain {record.feedback.pain} reported, above {rule.pain_above}"
    if (
        rule.on_safety_abort
        and record.outcome is WorkoutOutcome.ABORTED
        and record.abort_reason is not None
        and is_safety_abort(record.abort_reason)
    ):
        return f"the session ended in a safety abort ({record.abort_reason.value})"
    return None


def _qualifies(record: WorkoutRecord, stage: Stage) -> bool:
    rule = stage.advance
    return (
        rule is not None
        and _completed(record)
        and record.feedback is not None
        and record.feedback.effort <= rule.max_effort
        and record.feedback.pain <= rule.max_pain
    )


def _stage_records(
    program: Program,
    state: ProgramState,
    stage: int,
    history: Sequence[WorkoutRecord],
    now: datetime,
) -> list[WorkoutRecord]:
    records = [
        record
        for record in history
        if _counts(record, program)
        and record.program_stage == stage
        and state.stage_from <= record.started_at <= now
    ]
    # Sorted by start, stable: history is given newest last, this makes sure.
    return sorted(records, key=lambda record: record.started_at)


def _decide(
    program: Program,
    state: ProgramState,
    stage: int,
    records: list[WorkoutRecord],
    now: datetime,
) -> tuple[Decision, str, ProgramState]:
    rules = program.stages[stage]
    pending = state.pending_confirm
    if pending is not None and (
        pending.to_stage != stage + 1
        or pending.to_stage >= len(program.stages)
        or not program.clinical
    ):
        # Asked for before the program file changed under it: the rules decide again.
        pending = None
    qualifying: list[datetime] = []
    for record in records:
        cause = _step_back_cause(record, rules)
        if cause is not None:
            to_stage = max(stage - 1, 0)
            where = (
                f"back to stage {to_stage} ({program.stages[to_stage].profile})"
                if to_stage != stage
                else "the first stage starts its count again"
            )
            after = replace(
                state,
                stage=to_stage,
                stage_from=just_after(record.started_at),
                pending_confirm=None,
            )
            return Decision.STEP_BACK, f"{cause}: {where}", after
        advance = rules.advance
        if advance is None or pending is not None or not _qualifies(record, rules):
            continue
        qualifying.append(record.started_at)
        window_start = record.started_at - timedelta(days=advance.within_days)
        if sum(1 for at in qualifying if at > window_start) < advance.sessions:
            continue
        met = (
            f"{advance.sessions} sessions completed within {advance.within_days} days at effort "
            f"<= {advance.max_effort} and pain <= {advance.max_pain}"
        )
        if program.clinical:
            # Keep looking: a later session may still step back before the therapist answers.
            pending = PendingConfirm(to_stage=stage + 1, since=record.started_at)
            continue
        after = replace(state, stage=stage + 1, stage_from=just_after(record.started_at))
        return Decision.ADVANCE, f"{met}: on to stage {stage + 1}", after
    if pending is not None:
        after = replace(state, stage=stage, pending_confirm=pending)
        return (
            Decision.AWAIT_CONFIRM,
            f"the rules allow stage {pending.to_stage} "
            f"({program.stages[pending.to_stage].profile}); a therapist has to confirm it",
            after,
        )
    after = replace(state, stage=stage, pending_confirm=None)
    return Decision.STAY, _stay_reason(program, stage, records, now), after


def _stay_reason(program: Program, stage: int, records: list[WorkoutRecord], now: datetime) -> str:
    rules = program.stages[stage]
    if rules.advance is None:
        return "the last stage: keep going"
    window_start = now - timedelta(days=rules.advance.within_days)
    done = sum(
        1 for record in records if _qualifies(record, rules) and record.started_at > window_start
    )
    return (
        f"{done} of {rules.advance.sessions} qualifying sessions in this stage "
        f"in the last {rules.advance.within_days} days"
    )


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _local_day(at: datetime, now: datetime) -> date:
    return at.astimezone(now.tzinfo).date() if now.tzinfo is not None else at.date()


def streak_weeks(program: Program, history: Sequence[WorkoutRecord], now: datetime) -> int:
    """Consecutive ISO weeks (Monday to Sunday, in `now`'s time zone) in which the rider
    completed at least the weekly target, counted back from the current week. The current week
    counts once it meets its target and does not break the streak while it is under way. A
    week's target is the `sessions_per_week` of the stage its last completed session was for."""
    by_week: dict[date, list[WorkoutRecord]] = {}
    for record in history:
        if _counts(record, program) and _completed(record) and record.started_at <= now:
            by_week.setdefault(_monday(_local_day(record.started_at, now)), []).append(record)

    def met(week: date) -> bool:
        records = by_week.get(week, [])
        if not records:
            return False
        last = max(records, key=lambda record: record.started_at)
        stage = min(max(last.program_stage or 0, 0), len(program.stages) - 1)
        return len(records) >= program.stages[stage].sessions_per_week

    week = _monday(_local_day(now, now))
    if not met(week):
        week -= timedelta(days=7)
    streak = 0
    while met(week):
        streak += 1
        week -= timedelta(days=7)
    return streak


def _last_workout(program: Program, history: Sequence[WorkoutRecord]) -> LastWorkout | None:
    records = [record for record in history if _counts(record, program)]
    if not records:
        return None
    last = max(records, key=lambda record: record.started_at)
    summary = last.summary
    feedback = last.feedback
    return LastWorkout(
        workout_id=last.workout_id,
        profile=last.profile_name,
        started_at=last.started_at,
        outcome=last.outcome,
        abort_reason=last.abort_reason,
        duration_s=summary.duration_s if summary else None,
        distance_forward_m=summary.distance_forward_m if summary else None,
        distance_backward_m=summary.distance_backward_m if summary else None,
        kcal=summary.kcal if summary else None,
        effort=feedback.effort if feedback else None,
        pain=feedback.pain if feedback else None,
    )


def evaluate(
    program: Program, state: ProgramState, history: Sequence[WorkoutRecord], now: datetime
) -> Evaluation:
    """Decide the rider's stage from the sessions since they entered it, and what comes next.

    `history` is the rider's workouts (any order, newest last as the store gives them); only
    those recorded for this program count. Sessions started after `now` are ignored. Calling it
    again with the returned state gives `Decision.STAY` (or `AWAIT_CONFIRM`) until new sessions
    arrive."""
    if state.program != program.name:
        raise ProgramMismatchError(
            f"the rider's state is for program {state.program!r}, not {program.name!r}; pass "
            "the rider's own program, or begin the new one with ProgramState.begin"
        )
    # A program edited to fewer stages keeps its riders on its last stage.
    stage = min(max(state.stage, 0), len(program.stages) - 1)
    records = _stage_records(program, state, stage, history, now)
    decision, reason, after = _decide(program, state, stage, records, now)
    completed = [
        record
        for record in history
        if _counts(record, program)
        and _completed(record)
        and after.started_at <= record.started_at <= now
    ]
    session_number = len(completed) + 1
    profile = program.stages[after.stage].profile
    next_session = NextSession(
        program=program.name,
        stage=after.stage,
        profile=profile,
        session_number=session_number,
        max_incline_pct=program.max_incline_pct_for_session(session_number),
    )
    this_week = _monday(_local_day(now, now))
    progress = Progress(
        program=program.name,
        stage=after.stage,
        stages=len(program.stages),
        profile=profile,
        sessions_this_week=sum(
            1
            for record in completed
            if this_week <= _local_day(record.started_at, now) < this_week + timedelta(days=7)
        ),
        weekly_target=program.stages[after.stage].sessions_per_week,
        streak_weeks=streak_weeks(program, history, now),
        next_profile=profile,
        awaiting_confirm=after.pending_confirm is not None,
        last_workout=_last_workout(program, history),
    )
    return Evaluation(decision, reason, after, next_session, progress)


def confirm_advance(program: Program, state: ProgramState, *, at: datetime) -> ProgramState:
    """A therapist confirms the advance the rules asked for: the rider moves to the next stage,
    and the new stage counts sessions started from `at` on. Who confirmed is the caller's to
    record (the therapist login is checked before this is called)."""
    pending = pending_advance(program, state)
    to_stage = min(pending.to_stage, len(program.stages) - 1)
    return replace(state, stage=to_stage, stage_from=at, pending_confirm=None)


def decline_advance(program: Program, state: ProgramState, *, at: datetime) -> ProgramState:
    """A therapist declines the advance: the rider stays, and the stage counts again from `at`
    on (the rules must be met again by new sessions before the next request)."""
    pending_advance(program, state)
    return replace(state, stage_from=at, pending_confirm=None)


def pending_advance(program: Program, state: ProgramState) -> PendingConfirm:
    """The advance waiting for a therapist's answer; `NothingToConfirmError` when none is."""
    if state.program != program.name:
        raise ProgramMismatchError(
            f"the rider's state is for program {state.program!r}, not {program.name!r}; "
            "answer with the rider's own program"
        )
    if state.pending_confirm is None:
        raise NothingToConfirmError(
            f"no advance is waiting for a confirm in {program.name!r} (stage {state.stage}); "
            "evaluate the rider's sessions first: a confirm is asked for when the stage's "
            "advance rule is met"
        )
    return state.pending_confirm
