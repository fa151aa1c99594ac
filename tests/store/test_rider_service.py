"""The rider service on both databases: riders checked before anything is written, a start for
a rider, feedback moving them through a program, a therapist's confirm or decline, weeks in the
gym's time zone, export and delete."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.riders import WallClock, quick_programs, record_workout, rider_service
from treadmilld.engine.api import AbortReason
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import ProfileLimits, SafetyLimits
from treadmilld.history.records import Feedback, WorkoutOutcome
from treadmilld.programs import Decision, ProgramLibrary
from treadmilld.riders.api import RiderChanges, RiderError, RiderFields
from treadmilld.riders.service import RiderService
from treadmilld.store.api import Store


@pytest.fixture
def now() -> WallClock:
    return WallClock()


@pytest.fixture
def service(store: Store, tmp_path: Path, now: WallClock) -> RiderService:
    return rider_service(store, tmp_path / "programs", now)


def fields(**changes: object) -> RiderFields:
    base: dict[str, object] = {
        "rider_id": "r-17",
        "display_name": "Seventeen",
        "body_weight_kg": 72.5,
        "program": "quick",
    }
    return RiderFields.model_validate({**base, **changes})


async def test_a_rider_is_created_on_the_first_stage_of_their_program(
    service: RiderService,
) -> None:
    await service.create(fields())
    rider = await service.get("r-17")
    assert rider.display_name == "Seventeen"
    assert rider.program_name == "quick"
    assert rider.program_state is not None
    assert rider.program_state["stage"] == 0
    assert [r.rider_id for r in await service.list_riders()] == ["r-17"]


async def test_personal_limits_looser_than_the_configured_ones_are_refused_by_name(
    service: RiderService,
) -> None:
    # The default general limit for backward walking is 5 km/h.
    with pytest.raises(RiderError) as refused:
        await service.create(fields(limits={"max_backward_speed_kmh": 6.0}))
    assert refused.value.code == "limits_looser_than_configured"
    assert "max_backward_speed_kmh" in refused.value.message
    assert await service.list_riders() == []

    # For a clinical rider the clinical set applies too: 2.5 km/h backward.
    with pytest.raises(RiderError, match=r"limits\.clinical\.max_backward_speed_kmh"):
        await service.create(fields(clinical=True, limits={"max_backward_speed_kmh": 3.0}))

    # A turn pause shorter than the configured one is looser too (clinical: 20 s).
    with pytest.raises(RiderError, match="turn_pause_s"):
        await service.create(fields(clinical=True, limits={"turn_pause_s": 15.0}))
    assert await service.list_riders() == []


async def test_an_update_that_would_loosen_limits_changes_nothing(service: RiderService) -> None:
    await service.create(fields(limits={"max_backward_speed_kmh": 2.0}))
    with pytest.raises(RiderError, match="max_forward_speed_kmh"):
        await service.update(
            "r-17",
            RiderChanges.model_validate(
                {"body_weight_kg": 80.0, "limits": {"max_forward_speed_kmh": 30.0}}
            ),
        )
    rider = await service.get("r-17")
    assert rider.body_weight_kg == 72.5
    assert rider.limits == ProfileLimits(max_backward_speed_kmh=2.0)


async def test_unknown_program_and_unknown_rider_are_refused(service: RiderService) -> None:
    with pytest.raises(RiderError) as refused:
        await service.create(fields(program="no-such-program"))
    assert refused.value.code == "unknown_program"
    assert "quick" in refused.value.message  # the known ones are listed
    with pytest.raises(RiderError) as unknown:
        await service.get("r-99")
    assert unknown.value.code == "unknown_rider"


async def test_a_start_for_a_rider_runs_their_next_session_with_their_weight_and_limits(
    service: RiderService,
) -> None:
    await service.create(fields(limits={"max_backward_speed_kmh": 2.0}))
    start = await service.start_for("r-17")
    assert start.profile == "p1-starter-a"
    assert start.body_weight_kg == 72.5
    assert start.clinical is False
    assert start.rider_limits == ProfileLimits(max_backward_speed_kmh=2.0)
    assert (start.context.program_name, start.context.program_stage) == ("quick", 0)

    # An explicit profile and weight win; another profile does not count for the program.
    other = await service.start_for("r-17", profile="p2-retro-core", body_weight_kg=80.0)
    assert (other.profile, other.body_weight_kg) == ("p2-retro-core", 80.0)
    assert other.context.program_name is None


async def test_a_start_for_a_rider_carries_their_maximum_heart_rate(
    service: RiderService,
) -> None:
    """Every % heart-rate ceiling and zone of the workout is a share of the rider's maximum."""
    await service.create(fields(max_heart_rate_bpm=172, limits={"max_backward_speed_kmh": 2.0}))
    start = await service.start_for("r-17")
    assert start.rider_limits == ProfileLimits(max_backward_speed_kmh=2.0, hr_max_bpm=172)


async def test_a_clinical_program_starts_clinical_without_incline_in_its_first_two_sessions(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields(program="quick-clinical", limits={"max_forward_incline_pct": 3}))
    first = await service.start_for("r-17")
    assert first.clinical is True
    assert first.rider_limits is not None
    assert first.rider_limits.max_backward_incline_pct == 0.0
    assert first.rider_limits.max_forward_incline_pct == 0.0

    for number in (1, 2):
        await record_workout(
            store,
            f"w-{number}",
            rider_id="r-17",
            started_at=now.advance(days=1),
            program="quick-clinical",
            stage=0,
        )
    third = await service.start_for("r-17")
    assert third.next_session is not None
    assert third.next_session.session_number == 3
    # The program's cap is gone; the rider's own forward cap stays.
    assert third.rider_limits == ProfileLimits(max_forward_incline_pct=3.0)


async def test_a_rider_without_program_needs_a_profile_to_start(service: RiderService) -> None:
    await service.create(fields(program=None))
    with pytest.raises(RiderError) as refused:
        await service.start_for("r-17")
    assert refused.value.code == "profile_required"
    assert (await service.start_for("r-17", profile="p2-retro-core")).profile == "p2-retro-core"


async def test_feedback_advances_and_pain_steps_back(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields())
    await record_workout(
        store, "w-1", rider_id="r-17", started_at=now.advance(hours=1), program="quick", stage=0
    )
    now.advance(hours=1)
    advanced = await service.feedback("w-1", effort=4, pain=1)
    assert advanced.decision is Decision.ADVANCE
    assert advanced.next_session is not None
    assert advanced.next_session.profile == "p1-starter-b"
    assert (await service.start_for("r-17")).profile == "p1-starter-b"

    await record_workout(
        store, "w-2", rider_id="r-17", started_at=now.advance(days=1), program="quick", stage=1
    )
    stepped = await service.feedback("w-2", effort=4, pain=7)
    assert stepped.decision is Decision.STEP_BACK
    assert stepped.progress is not None
    assert stepped.progress.stage == 0
    assert stepped.progress.last_workout is not None
    assert stepped.progress.last_workout.pain == 7


async def test_a_safety_abort_steps_back_once_progress_is_looked_at(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields())
    await record_workout(
        store, "w-1", rider_id="r-17", started_at=now.advance(hours=1), program="quick", stage=0
    )
    await service.feedback("w-1", effort=3, pain=0)
    await record_workout(
        store,
        "w-2",
        rider_id="r-17",
        started_at=now.advance(days=1),
        program="quick",
        stage=1,
        outcome=WorkoutOutcome.ABORTED,
        abort_reason=AbortReason.SAFETY_KEY,
    )
    progress = await service.progress("r-17")
    assert progress is not None
    assert progress.stage == 0
    assert (await service.get("r-17")).program_state["stage"] == 0  # type: ignore[index]


async def test_a_clinical_program_waits_for_a_therapist_and_keeps_who_confirmed(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields(program="quick-clinical"))
    with pytest.raises(RiderError) as early:
        await service.confirm("r-17", therapist="pt-anna")
    assert early.value.code == "nothing_to_confirm"

    await record_workout(
        store,
        "w-1",
        rider_id="r-17",
        started_at=now.advance(hours=1),
        program="quick-clinical",
        stage=0,
    )
    waiting = await service.feedback("w-1", effort=2, pain=0)
    assert waiting.decision is Decision.AWAIT_CONFIRM
    assert waiting.progress is not None
    assert waiting.progress.awaiting_confirm
    assert (await service.start_for("r-17")).profile == "p1-starter-a"  # not yet

    now.advance(hours=2)
    confirmed = await service.confirm("r-17", therapist="pt-anna")
    assert confirmed.stage == 1
    assert not confirmed.awaiting_confirm
    state = (await service.get("r-17")).program_state
    assert state is not None
    assert state["confirmations"] == [
        {"to_stage": 1, "therapist": "pt-anna", "at": now.at.isoformat()}
    ]
    assert (await service.start_for("r-17")).profile == "p1-starter-b"


async def test_feedback_for_an_unknown_running_or_riderless_workout_changes_nothing(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields())
    await record_workout(
        store,
        "w-run",
        rider_id="r-17",
        started_at=now.advance(hours=1),
        outcome=WorkoutOutcome.RUNNING,
    )
    await record_workout(store, "w-anon", rider_id=None, started_at=now.advance(hours=1))
    for workout_id, code in (
        ("w-none", "unknown_workout"),
        ("w-run", "workout_running"),
        ("w-anon", "no_rider"),
    ):
        with pytest.raises(RiderError) as refused:
            await service.feedback(workout_id, effort=1, pain=1)
        assert refused.value.code == code
    assert (await store.get_workout("w-run")).feedback is None
    assert (await store.get_workout("w-anon")).feedback is None


async def test_export_holds_everything_and_delete_takes_it_all(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields(max_heart_rate_bpm=170))
    await record_workout(
        store, "w-1", rider_id="r-17", started_at=now.advance(hours=1), program="quick", stage=0
    )
    await service.feedback("w-1", effort=4, pain=1)
    exported = await service.export("r-17")
    assert exported["rider"]["display_name"] == "Seventeen"
    assert exported["rider"]["max_heart_rate_bpm"] == 170
    assert exported["rider"]["program_state"]["stage"] == 1
    assert [w["workout_id"] for w in exported["workouts"]] == ["w-1"]
    assert exported["workouts"][0]["feedback"]["pain"] == 1

    assert await service.delete("r-17") == 1
    assert await service.list_riders() == []
    assert await store.list_workouts(rider_id="r-17") == []
    with pytest.raises(RiderError, match="r-17"):
        await service.export("r-17")


async def test_a_workout_summary_shows_outcome_and_totals(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields())
    await record_workout(
        store,
        "w-1",
        rider_id="r-17",
        started_at=now.advance(hours=1),
        outcome=WorkoutOutcome.ABORTED,
        abort_reason=AbortReason.SAFETY_KEY,
    )
    summary = await service.workout_summary("w-1")
    assert summary["outcome"] == "aborted"
    assert summary["abort_reason"] == "safety_key"
    assert summary["totals"]["distance_backward_m"] == 120.0
    with pytest.raises(RiderError) as unknown:
        await service.workout_summary("w-404")
    assert unknown.value.code == "unknown_workout"


async def test_feedback_for_a_rider_whose_program_is_gone_is_refused_before_it_is_kept(
    store: Store, tmp_path: Path, now: WallClock
) -> None:
    profiles = ProfileLibrary()
    folder = quick_programs(tmp_path / "programs")
    programs = ProgramLibrary(profiles, [folder])
    service = RiderService(store, programs, profiles, SafetyLimits(), now=now)
    await service.create(fields())
    await record_workout(store, "w-1", rider_id="r-17", started_at=now.advance(hours=1))
    (folder / "quick.toml").unlink()
    programs.reload()
    with pytest.raises(RiderError) as refused:
        await service.feedback("w-1", effort=4, pain=1)
    assert refused.value.code == "unknown_program"
    assert (await store.get_workout("w-1")).feedback is None


async def test_a_rider_is_not_deleted_while_their_workout_runs(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields())
    await record_workout(
        store,
        "w-1",
        rider_id="r-17",
        started_at=now.advance(hours=1),
        outcome=WorkoutOutcome.RUNNING,
    )
    with pytest.raises(RiderError) as refused:
        await service.delete("r-17")
    assert refused.value.code == "workout_running"
    assert "w-1" in refused.value.message
    assert [rider.rider_id for rider in await service.list_riders()] == ["r-17"]
    await store.end_workout("w-1", WorkoutOutcome.STOPPED, None)
    assert await service.delete("r-17") == 1


async def test_a_declined_advance_keeps_the_rider_and_who_declined_and_counts_again(
    service: RiderService, store: Store, now: WallClock
) -> None:
    await service.create(fields(program="quick-clinical"))
    with pytest.raises(RiderError) as early:
        await service.decline("r-17", therapist="pt-ben")
    assert early.value.code == "nothing_to_confirm"
    await record_workout(
        store,
        "w-1",
        rider_id="r-17",
        started_at=now.advance(hours=1),
        program="quick-clinical",
        stage=0,
    )
    await service.feedback("w-1", effort=2, pain=0)

    declined_at = now.advance(hours=2)
    declined = await service.decline("r-17", therapist="pt-ben")
    assert (declined.stage, declined.awaiting_confirm) == (0, False)
    state = (await service.get("r-17")).program_state
    assert state is not None
    assert state["declines"] == [
        {"to_stage": 1, "therapist": "pt-ben", "at": declined_at.isoformat()}
    ]
    assert state["confirmations"] == []
    # The session that met the rule before the decline does not ask again.
    progress = await service.progress("r-17")
    assert progress is not None
    assert not progress.awaiting_confirm
    assert (await service.start_for("r-17")).profile == "p1-starter-a"
    with pytest.raises(RiderError) as again:
        await service.decline("r-17", therapist="pt-ben")
    assert again.value.code == "nothing_to_confirm"

    # A new good session meets the rule again: the therapist is asked again.
    await record_workout(
        store,
        "w-2",
        rider_id="r-17",
        started_at=now.advance(days=1),
        program="quick-clinical",
        stage=0,
    )
    waiting = await service.feedback("w-2", effort=2, pain=0)
    assert waiting.decision is Decision.AWAIT_CONFIRM


async def test_weeks_are_the_gyms_local_weeks_and_what_is_stored_is_utc(
    store: Store, tmp_path: Path
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Sunday 1 March 2026, 20:00 in Berlin: the rider signs up.
    now = WallClock(datetime(2026, 3, 1, 20, 0, tzinfo=berlin))
    service = rider_service(store, tmp_path / "programs", now)
    await service.create(fields(program="quick-clinical"))
    # Monday 2 March 00:30 in Berlin is still Sunday 23:30 in UTC.
    monday_night = datetime(2026, 3, 2, 0, 30, tzinfo=berlin)
    await record_workout(
        store,
        "w-1",
        rider_id="r-17",
        started_at=monday_night,
        program="quick-clinical",
        stage=0,
    )
    now.at = datetime(2026, 3, 2, 9, 0, tzinfo=berlin)
    progress = await service.progress("r-17")
    assert progress is not None
    assert progress.sessions_this_week == 1

    state = (await service.get("r-17")).program_state
    assert state is not None
    assert state["started_at"] == "2026-03-01T19:00:00+00:00"
    assert (await store.get_workout("w-1")).started_at == monday_night.astimezone(UTC)


async def test_a_state_kept_by_an_earlier_version_reads_as_it_was_meant(
    service: RiderService, store: Store, now: WallClock
) -> None:
    """Earlier versions kept `stage_since`, the last instant that did not count: a first-stage
    step back kept the painful session's start there. That session must not step back again."""
    rider = await service.create(fields())
    painful = now.advance(hours=1)
    await record_workout(
        store, "w-1", rider_id="r-17", started_at=painful, program="quick", stage=0
    )
    await store.add_feedback("w-1", Feedback(effort=3, pain=7, reported_at=now.advance(hours=1)))
    legacy = {
        "program": "quick",
        "stage": 0,
        "started_at": (painful - timedelta(days=1)).isoformat(),
        "stage_since": painful.isoformat(),
        "pending_confirm": None,
        "confirmations": [],
    }
    await store.update_rider(replace(rider, program_state=legacy))
    await record_workout(
        store, "w-2", rider_id="r-17", started_at=now.advance(days=1), program="quick", stage=0
    )
    answer = await service.feedback("w-2", effort=3, pain=0)
    assert answer.decision is Decision.ADVANCE
