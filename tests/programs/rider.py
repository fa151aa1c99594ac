"""A simulated rider walking a program in virtual dates: each session is recorded as the
recorder would (with the program and stage it ran for), feedback is posted, and the state the
progression engine returns is kept, as the store will keep it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from treadmilld.engine.api import AbortReason
from treadmilld.engine.library import ProfileLibrary
from treadmilld.history.records import Feedback, WorkoutOutcome, WorkoutRecord, WorkoutSummary
from treadmilld.programs import Evaluation, Program, ProgramLibrary, ProgramState, evaluate

# A Monday: ISO week 1 of 2027 starts on 4 January.
FIRST_MONDAY = datetime(2027, 1, 4, 7, 0, tzinfo=UTC)
# Four sessions a week: Monday, Tuesday, Thursday, Saturday.
FOUR_A_WEEK = (0, 1, 3, 5)
SESSION = timedelta(minutes=17)


@cache
def builtin_programs() -> ProgramLibrary:
    return ProgramLibrary(ProfileLibrary())


def builtin(name: str) -> Program:
    return builtin_programs().get(name)


def session_day(week: int, day: int) -> datetime:
    """`week` from 1, `day` 0 (Monday) to 6."""
    return FIRST_MONDAY + timedelta(weeks=week - 1, days=day)


@dataclass
class SimulatedRider:
    program: Program
    state: ProgramState = field(init=False)
    history: list[WorkoutRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = ProgramState.begin(self.program, FIRST_MONDAY - timedelta(days=1))

    def next(self, now: datetime) -> Evaluation:
        return evaluate(self.program, self.state, self.history, now)

    def ride(
        self,
        at: datetime,
        *,
        effort: int | None = 3,
        pain: int = 1,
        outcome: WorkoutOutcome = WorkoutOutcome.FINISHED,
        abort_reason: AbortReason | None = None,
    ) -> Evaluation:
        """Run the next session at `at`, post feedback (unless `effort` is None), and keep the
        state the engine answers with."""
        upcoming = self.next(at).next_session
        ended = at + SESSION
        self.history.append(
            WorkoutRecord(
                workout_id=f"w-{len(self.history) + 1}",
                treadmill_id="tm-1",
                profile_name=upcoming.profile,
                started_at=at,
                outcome=outcome,
                rider_id="r-17",
                abort_reason=abort_reason,
                summary=WorkoutSummary(
                    duration_s=SESSION.total_seconds(),
                    distance_forward_m=600.0,
                    distance_backward_m=250.0,
                    kcal=70.0,
                ),
                feedback=None if effort is None else Feedback(effort, pain, ended),
                program_name=self.program.name,
                program_stage=upcoming.stage,
            )
        )
        answer = self.next(ended)
        self.state = answer.state
        return answer
