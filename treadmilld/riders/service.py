"""`RiderService`: riders over the store, the programs and the configured limits.

Every request is checked in full before anything is written (a bad field, a personal limit
looser than the configured one, an unknown program or workout), so a refused request changes
nothing. The progression engine is pure (treadmilld.programs.progression); this is where its
result is kept: the rider's program state, as JSON in the store (program_state.py), with each
therapist's confirm or decline. Personal limits are checked in personal_limits.py.

"Now" is the gym's wall clock (`clock_in`, `[programs] time_zone`); everything stored is UTC.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import structlog

from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import ProfileLimits, SafetyLimits
from treadmilld.history.recorder import RiderContext
from treadmilld.history.records import Feedback, WorkoutOutcome, WorkoutRecord
from treadmilld.history.riders import Rider
from treadmilld.programs import (
    Evaluation,
    NothingToConfirmError,
    Program,
    ProgramLibrary,
    ProgramState,
    Progress,
    UnknownProgramError,
    confirm_advance,
    decline_advance,
    evaluate,
    pending_advance,
)
from treadmilld.riders.api import (
    FeedbackResult,
    RiderChanges,
    RiderError,
    RiderFields,
    RiderStart,
)
from treadmilld.riders.personal_limits import (
    looser_than_configured,
    with_heart_rate_max,
    with_incline_cap,
)
from treadmilld.riders.program_state import Answers, state_from, state_json, with_answer
from treadmilld.store.errors import (
    InvalidRecordError,
    RiderExistsError,
    UnknownRiderError,
    UnknownWorkoutError,
)

if TYPE_CHECKING:
    from treadmilld.store.repository import Store

_log = structlog.get_logger(__name__)

# A rider's program history is read back this far (sessions, newest first): eight months of
# four sessions a week, far more than any stage's window or a streak needs.
HISTORY_LIMIT = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


def clock_in(zone: tzinfo) -> Callable[[], datetime]:
    """A wall clock whose readings are in `zone`: give it a `ZoneInfo`, so each date gets its
    own offset (a fixed offset would put a week after a DST change an hour off)."""
    return lambda: datetime.now(zone)


class RiderService:
    """Riders, their starts, feedback and progression (implements `RiderDesk`)."""

    def __init__(
        self,
        store: Store | Callable[[], Awaitable[Store]],
        programs: ProgramLibrary,
        profiles: ProfileLibrary,
        limits: SafetyLimits,
        *,
        now: Callable[[], datetime] = utc_now,
        any_riders: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """`store` is the store, or how to open it on first use (the daemon's history service:
        the store loads SQLAlchemy, so a daemon whose riders are never asked for does not).
        `now` is the gym's wall clock (`clock_in`), aware: program weeks are the ISO weeks of
        its zone, calendar days a person lives, not the engine's clock."""
        self._store_or_opener = store
        # A cheap look (plain SQL) whether there is any rider at all: listing no riders then
        # opens no store (the daemon republishes every rider's progress on each connect).
        self._any_riders = any_riders
        self._programs = programs
        self._profiles = profiles
        self._limits = limits
        self._now = now

    async def _db(self) -> Store:
        store = self._store_or_opener
        if callable(store):
            return await store()
        return store

    # -- riders ----------------------------------------------------------------------

    async def create(self, fields: RiderFields) -> Rider:
        self._check_limits(fields.limits, clinical=fields.clinical)
        program = self._program(fields.program) if fields.program is not None else None
        rider = Rider(
            rider_id=fields.rider_id,
            display_name=fields.display_name,
            body_weight_kg=fields.body_weight_kg,
            max_heart_rate_bpm=fields.max_heart_rate_bpm,
            clinical=fields.clinical,
            limits=fields.limits,
            program_name=program.name if program else None,
            program_state=state_json(ProgramState.begin(program, self._utc_now()))
            if program
            else None,
            heart_rate_strap=fields.heart_rate_strap.choice() if fields.heart_rate_strap else None,
        )
        try:
            await (await self._db()).create_rider(rider)
        except RiderExistsError as error:
            raise RiderError("rider_exists", str(error)) from None
        except InvalidRecordError as error:
            raise RiderError("invalid_rider", str(error)) from None
        return rider

    async def update(self, rider_id: str, changes: RiderChanges) -> Rider:
        rider = await self.get(rider_id)
        given = changes.given()
        values: dict[str, Any] = {}
        for name in ("display_name", "body_weight_kg", "clinical"):
            if name in given:
                value = getattr(changes, name)
                if value is None:
                    raise RiderError(
                        "invalid_payload", f"{name} cannot be null; give a value or leave it out"
                    )
                values[name] = value
        if "max_heart_rate_bpm" in given:
            values["max_heart_rate_bpm"] = changes.max_heart_rate_bpm
        if "heart_rate_strap" in given:
            strap = changes.heart_rate_strap
            values["heart_rate_strap"] = strap.choice() if strap is not None else None
        if "limits" in given:
            limits = changes.limits
            values["limits"] = limits if limits and limits.model_dump(exclude_none=True) else None
        updated = replace(rider, **values)
        self._check_limits(updated.limits, clinical=updated.clinical)
        if "program" in given and changes.program != rider.program_name:
            updated = self._with_program(updated, changes.program)
        await (await self._db()).update_rider(updated)
        return updated

    async def get(self, rider_id: str) -> Rider:
        try:
            return await (await self._db()).get_rider(rider_id)
        except UnknownRiderError as error:
            raise RiderError("unknown_rider", str(error)) from None

    async def list_riders(self) -> list[Rider]:
        if self._any_riders is not None and not await self._any_riders():
            return []
        return await (await self._db()).list_riders()

    async def delete(self, rider_id: str) -> int:
        """The rider and their whole history, in one transaction; how many workouts went.
        Refused while one of their workouts runs (on any Pi sharing the database): its
        recorder would go on writing to a workout that is gone."""
        await self.get(rider_id)
        running = [
            record.workout_id
            for record in await (await self._db()).list_workouts(
                rider_id=rider_id, limit=HISTORY_LIMIT
            )
            if record.outcome is WorkoutOutcome.RUNNING
        ]
        if running:
            raise RiderError(
                "workout_running",
                f"rider {rider_id!r} has a workout running ({running[0]}); stop it, then "
                "delete the rider (a workout a crash left running is marked interrupted at "
                "the daemon's next start)",
            )
        try:
            return await (await self._db()).delete_rider(rider_id)
        except UnknownRiderError as error:
            raise RiderError("unknown_rider", str(error)) from None

    async def export(self, rider_id: str) -> dict[str, Any]:
        try:
            return await (await self._db()).export_rider(rider_id)
        except UnknownRiderError as error:
            raise RiderError("unknown_rider", str(error)) from None

    async def assign_program(self, rider_id: str, program: str | None) -> Rider:
        """Begin `program` at its first stage (None: follow no program)."""
        return await self.update(rider_id, RiderChanges(program=program))

    # -- starting --------------------------------------------------------------------

    async def start_for(
        self, rider_id: str, *, profile: str | None = None, body_weight_kg: float | None = None
    ) -> RiderStart:
        """What a start for the rider runs: the program's next session (or `profile`), their
        weight (or `body_weight_kg`), clinical when they or their program are, and their
        personal limits with the program's cap for this session."""
        rider = await self.get(rider_id)
        if profile is not None and profile not in self._profiles.names():
            raise RiderError(
                "unknown_profile",
                f"no profile {profile!r}; leave `profile` out to run the rider's next session, "
                "or see the bridge's profiles topic",
            )
        evaluation = await self._evaluation(rider)
        program = self._program(rider.program_name) if evaluation is not None else None
        next_session = evaluation.next_session if evaluation is not None else None
        if profile is None:
            if next_session is None:
                raise RiderError(
                    "profile_required",
                    f"rider {rider_id!r} follows no program: give a profile with the start, or "
                    "assign a program (rider_update with `program`)",
                )
            profile = next_session.profile
        # A workout counts toward the program only when it is the stage's own profile.
        counts = next_session is not None and profile == next_session.profile
        context = RiderContext(
            rider_id=rider_id,
            program_name=next_session.program if counts and next_session else None,
            program_stage=next_session.stage if counts and next_session else None,
        )
        return RiderStart(
            rider_id=rider_id,
            profile=profile,
            body_weight_kg=body_weight_kg if body_weight_kg is not None else rider.body_weight_kg,
            clinical=rider.clinical or (program is not None and program.clinical),
            # The program's incline cap applies to any profile the rider runs in those first
            # sessions, not only the stage's own.
            rider_limits=with_heart_rate_max(
                with_incline_cap(
                    rider.limits, next_session.max_incline_pct if next_session else None
                ),
                rider.max_heart_rate_bpm,
            ),
            context=context,
            next_session=next_session,
            heart_rate_strap=rider.heart_rate_strap,
        )

    # -- after a workout ---------------------------------------------------------------

    async def feedback(self, workout_id: str, *, effort: int, pain: int) -> FeedbackResult:
        record = await self._workout(workout_id)
        if record.rider_id is None:
            raise RiderError(
                "no_rider",
                f"workout {workout_id!r} was not started for a rider; feedback is kept only "
                'for a rider\'s workouts (start with {"command": "start", "rider": ...})',
            )
        if record.outcome is WorkoutOutcome.RUNNING:
            raise RiderError(
                "workout_running",
                f"workout {workout_id!r} is still running; report effort and pain after it ends",
            )
        rider = await self.get(record.rider_id)
        if rider.program_name is not None:
            self._program(rider.program_name)  # refused before the feedback is written
        report = Feedback(effort=effort, pain=pain, reported_at=self._utc_now())
        try:
            await (await self._db()).add_feedback(workout_id, report)
        except InvalidRecordError as error:
            raise RiderError("invalid_payload", str(error)) from None
        _log.info("rider_feedback_recorded", rider_id=rider.rider_id, workout_id=workout_id)
        evaluation = await self._evaluation(rider, store=True)
        return FeedbackResult(
            rider_id=rider.rider_id,
            workout_id=workout_id,
            decision=evaluation.decision if evaluation else None,
            reason=evaluation.reason if evaluation else None,
            next_session=evaluation.next_session if evaluation else None,
            progress=evaluation.progress if evaluation else None,
        )

    async def confirm(self, rider_id: str, *, therapist: str) -> Progress:
        """A therapist confirms the advance a clinical program waits for: the rider moves on.
        Who and when are kept in the rider's program state (`confirmations`)."""
        return await self._answer(rider_id, therapist, "confirmations")

    async def decline(self, rider_id: str, *, therapist: str) -> Progress:
        """A therapist declines it: the rider stays, and the stage counts again from now (its
        rule must be met again by new sessions). Who and when are kept (`declines`)."""
        return await self._answer(rider_id, therapist, "declines")

    async def _answer(self, rider_id: str, therapist: str, kind: Answers) -> Progress:
        rider = await self.get(rider_id)
        evaluation = await self._evaluation(rider, store=True)
        if evaluation is None or rider.program_name is None:
            raise RiderError(
                "nothing_to_confirm",
                f"rider {rider_id!r} follows no program: no advance to confirm or decline",
            )
        rider = await self.get(rider_id)  # with the state just stored
        program = self._program(rider.program_name)
        now = self._now()
        answer = confirm_advance if kind == "confirmations" else decline_advance
        try:
            pending = pending_advance(program, evaluation.state)
            after = answer(program, evaluation.state, at=now.astimezone(UTC))
        except NothingToConfirmError as error:
            raise RiderError("nothing_to_confirm", str(error)) from None
        stored = with_answer(
            state_json(after, rider.program_state),
            kind,
            to_stage=pending.to_stage,
            therapist=therapist,
            at=now,
        )
        await (await self._db()).update_rider(replace(rider, program_state=stored))
        _log.info(
            "program_advance_confirmed" if kind == "confirmations" else "program_advance_declined",
            rider_id=rider_id,
            stage=after.stage,
        )
        history = await self._history(rider.rider_id, after)
        return evaluate(program, after, history, now).progress

    async def progress(self, rider_id: str) -> Progress | None:
        """The rider's progress now (None without a program). A workout that ended since the
        last look may move the stage (a safety abort steps back): the new state is kept."""
        rider = await self.get(rider_id)
        evaluation = await self._evaluation(rider, store=True)
        return evaluation.progress if evaluation else None

    async def workout_summary(self, workout_id: str) -> dict[str, Any]:
        """A workout without its samples: planned against done per segment, outcome, totals,
        feedback (`history_get`)."""
        record = await self._workout(workout_id)
        summary = record.summary
        return {
            "workout_id": record.workout_id,
            "treadmill_id": record.treadmill_id,
            "rider": record.rider_id,
            "profile": record.profile_name,
            "started_at": record.started_at.isoformat(),
            "outcome": record.outcome.value,
            "abort_reason": record.abort_reason.value if record.abort_reason else None,
            "abort_detail": record.abort_detail,
            "program": record.program_name,
            "program_stage": record.program_stage,
            "totals": None
            if summary is None
            else {
                "duration_s": round(summary.duration_s, 1),
                "distance_forward_m": round(summary.distance_forward_m, 1),
                "distance_backward_m": round(summary.distance_backward_m, 1),
                "kcal": round(summary.kcal, 1),
            },
            "segments": [
                {
                    "index": segment.index,
                    "direction": segment.direction.value,
                    "planned_duration_s": segment.planned_duration_s,
                    "planned_speed_kmh": segment.planned_speed_kmh,
                    "planned_incline_pct": segment.planned_incline_pct,
                    "done_duration_s": None
                    if segment.ended_at_s is None
                    else round(segment.ended_at_s - segment.started_at_s, 1),
                    "distance_m": round(segment.distance_m, 1),
                    "completed": segment.completed,
                }
                for segment in record.segments
            ],
            "feedback": None
            if record.feedback is None
            else {"effort": record.feedback.effort, "pain": record.feedback.pain},
        }

    # -- inside ------------------------------------------------------------------------

    def _utc_now(self) -> datetime:
        """What is stored: the same wall clock, in UTC."""
        return self._now().astimezone(UTC)

    def _check_limits(self, personal: ProfileLimits | None, *, clinical: bool) -> None:
        if personal is None:
            return
        looser = looser_than_configured(personal, self._limits, clinical=clinical)
        if looser is not None:
            raise RiderError("limits_looser_than_configured", looser)

    def _program(self, name: str | None) -> Program:
        if name is None:
            raise RiderError("unknown_program", "no program given")
        try:
            return self._programs.get(name)
        except UnknownProgramError as error:
            raise RiderError("unknown_program", str(error)) from None

    def _with_program(self, rider: Rider, name: str | None) -> Rider:
        if name is None:
            return replace(rider, program_name=None, program_state=None)
        program = self._program(name)
        state = ProgramState.begin(program, self._utc_now())
        return replace(rider, program_name=program.name, program_state=state_json(state))

    async def _workout(self, workout_id: str) -> WorkoutRecord:
        try:
            return await (await self._db()).get_workout(workout_id)
        except UnknownWorkoutError as error:
            raise RiderError("unknown_workout", str(error)) from None

    async def _history(self, rider_id: str, state: ProgramState) -> list[WorkoutRecord]:
        records = await (await self._db()).list_workouts(
            rider_id=rider_id, since=state.started_at, limit=HISTORY_LIMIT
        )
        return list(reversed(records))  # oldest first, newest last, as evaluate reads them

    async def _evaluation(self, rider: Rider, *, store: bool = False) -> Evaluation | None:
        """The progression engine on the rider's history now; with `store`, a changed program
        state is kept. None when the rider follows no program."""
        if rider.program_name is None:
            return None
        program = self._program(rider.program_name)
        now = self._now()
        if rider.program_state and rider.program_state.get("program") == program.name:
            state = state_from(rider.program_state)
        else:
            state = ProgramState.begin(program, now.astimezone(UTC))
        history = await self._history(rider.rider_id, state)
        evaluation = evaluate(program, state, history, now)
        if store and evaluation.state != state:
            stored = state_json(evaluation.state, rider.program_state)
            await (await self._db()).update_rider(replace(rider, program_state=stored))
            _log.info(
                "rider_program_state_changed",
                rider_id=rider.rider_id,
                decision=evaluation.decision.value,
                stage=evaluation.state.stage,
            )
        return evaluation
