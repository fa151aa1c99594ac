"""Eight weeks of the seed program end to end, in virtual time: a rider's every session is
started through the rider service, walked by the real session over the engine's test treadmill,
recorded as it runs by the recorder into the daemon's own history writer (what `treadmilld run`
records through), and followed by the rider's feedback through the store, on the same SQLite
file; the service's answer says what comes next. The stages advance exactly as the program's
rules say, and a pain report steps back."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.engine.harness import rig, run_in_virtual_time
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits
from treadmilld.history.recorder import WorkoutRecorder
from treadmilld.history.records import WorkoutOutcome
from treadmilld.programs import Decision, ProgramLibrary
from treadmilld.riders.api import RiderFields
from treadmilld.riders.service import RiderService
from treadmilld.store.api import open_store, sqlite_url
from treadmilld.store.writer import HistoryWriter, open_history_writer

# ISO week 1 of 2027 starts on Monday 4 January; four sessions a week (Mon, Tue, Thu, Sat).
FIRST_MONDAY = datetime(2027, 1, 4, 7, 0, tzinfo=UTC)
FOUR_A_WEEK = (0, 1, 3, 5)


@contextlib.asynccontextmanager
async def history_writer(url: str) -> AsyncIterator[HistoryWriter]:
    """The daemon's sink, not `Store`: one plain statement a write where the store adds
    SQLAlchemy's round trips, which made most of this test's wall time. Opened after the store,
    so the schema is current and no migration child is started."""
    writer = await open_history_writer(url)
    try:
        yield writer
    finally:
        await writer.close()


# 33 workouts (about 9 hours of walking) in virtual time: more wall time than one test usually
# gets.
@pytest.mark.timeout(300)
def test_a_rider_walks_the_seed_program_for_eight_weeks(tmp_path: Path) -> None:
    # Every write is committed on its own (synchronous=FULL): on a RAM disk where there is one,
    # so 32 workouts of 1 Hz samples take seconds, not minutes, of fsync.
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path

    async def main() -> tuple[dict[int, set[int]], list[Decision | None], list[int]]:
        today = [FIRST_MONDAY]
        profiles = ProfileLibrary()
        async with (
            await open_store(sqlite_url(folder)) as store,
            history_writer(sqlite_url(folder)) as writer,
            rig(within_s=30 * 24 * 3600.0) as r,
        ):
            riders = RiderService(
                store, ProgramLibrary(profiles), profiles, SafetyLimits(), now=lambda: today[0]
            )
            await riders.create(
                RiderFields.model_validate(
                    {
                        "rider_id": "r-seed",
                        "display_name": "Seed",
                        "body_weight_kg": 70.0,
                        "program": "retro-starter",
                    }
                )
            )
            # Samples every 10 s, not every second: this test is about the program, and 33
            # workouts of 1 Hz samples would cost a minute of commits.
            recorder = WorkoutRecorder(
                r.session, writer, r.clock, wall_clock=lambda: today[0], sample_interval_s=10.0
            )
            recording = asyncio.create_task(recorder.run())
            await asyncio.sleep(0)
            stages: dict[int, set[int]] = {}
            decisions: list[Decision | None] = []
            after_pain: list[int] = []
            ended = 0
            for week in range(1, 9):
                for day in FOUR_A_WEEK:
                    # An hour after the rider was signed up on the first day, then each session day.
                    today[0] = FIRST_MONDAY + timedelta(weeks=week - 1, days=day, hours=1)
                    start = await riders.start_for("r-seed")
                    recorder.for_rider(start.context)
                    await r.session.start_profile(
                        start.profile,
                        body_weight_kg=start.body_weight_kg,
                        clinical=start.clinical,
                        rider_limits=start.rider_limits,
                    )
                    ended += 1
                    await r.wait_for("workout_finished", count=ended, within_s=4 * 3600)
                    # The rider steps off once the belt is measured standing.
                    await r.wait_for("stop_confirmed", count=ended)
                    workout_id = recorder.last_workout_id
                    await recorder.drained()
                    assert workout_id is not None
                    stages.setdefault(week, set()).add(start.context.program_stage or 0)
                    result = await riders.feedback(workout_id, effort=3, pain=1)
                    decisions.append(result.decision)
            records = await store.list_workouts(rider_id="r-seed", limit=100)
            assert len(records) == 32
            assert all(record.outcome is WorkoutOutcome.FINISHED for record in records)
            # Week 9: a session that hurt (pain 8) steps the rider back a stage.
            before = await riders.progress("r-seed")
            today[0] = FIRST_MONDAY + timedelta(weeks=8, hours=1)
            start = await riders.start_for("r-seed")
            recorder.for_rider(start.context)
            await r.session.start_profile(
                start.profile,
                body_weight_kg=start.body_weight_kg,
                clinical=start.clinical,
                rider_limits=start.rider_limits,
            )
            await r.wait_for("workout_finished", count=ended + 1, within_s=4 * 3600)
            await r.wait_for("stop_confirmed", count=ended + 1)
            workout_id = recorder.last_workout_id
            await recorder.drained()
            assert workout_id is not None
            hurt = await riders.feedback(workout_id, effort=3, pain=8)
            after = await riders.progress("r-seed")
            assert before is not None
            assert after is not None
            after_pain = [before.stage, after.stage]
            assert hurt.decision is Decision.STEP_BACK, hurt.reason
            recording.cancel()
            await asyncio.gather(recording, return_exceptions=True)
            return stages, decisions, after_pain

    try:
        stages, decisions, after_pain = run_in_virtual_time(main)
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)
    # Eight sessions a stage (two weeks at four a week): A, A, B, B, C, C, the routine, routine.
    assert stages == {1: {0}, 2: {0}, 3: {1}, 4: {1}, 5: {2}, 6: {2}, 7: {3}, 8: {3}}
    advanced_after = [i + 1 for i, d in enumerate(decisions) if d is Decision.ADVANCE]
    assert advanced_after == [8, 16, 24]
    assert after_pain == [3, 2]
