"""A gym's shared PostgreSQL down while a Pi starts: the daemon's history starts anyway, a
workout walked meanwhile is kept and written once the server answers, and a workout a crash
left `running` is marked `interrupted` then, before anything new is written."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from structlog.testing import capture_logs

from tests.history.workouts import interval_workout
from tests.mqtt.doubles import RecordingTreadmill
from tests.support.postgres import PostgresServer
from treadmilld.app.history_pending import WriterOnceReachable
from treadmilld.app.history_service import start_history
from treadmilld.engine.api import WorkoutFinished, WorkoutStarted
from treadmilld.engine.library import ProfileLibrary
from treadmilld.history.records import HistoryUnavailableError, WorkoutOutcome
from treadmilld.programs.library import ProgramLibrary
from treadmilld.runtime.clock import LoopClock
from treadmilld.store.api import DatabaseSettings, open_store

# The server is down for longer than the first retries (2 s, then about 4 s).
DOWN_FOR_S = 5.0
BACK_WITHIN_S = 90.0


async def test_a_workout_walked_while_the_database_was_down_is_written_once_it_answers(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    async with await open_store(url) as store:
        crashed = replace(
            interval_workout(),
            workout_id="w-crashed",
            treadmill_id="tm01",
            started_at=datetime.now(UTC),
            outcome=WorkoutOutcome.RUNNING,
        )
        await store.begin_workout(crashed)
    postgres_server.stop()
    try:
        with capture_logs() as logs:
            service = await start_history(
                DatabaseSettings(url=url),
                ["tm01"],
                programs=ProgramLibrary(ProfileLibrary()),
                clock=LoopClock(),
            )
            assert isinstance(service.writer, WriterOnceReachable)
            treadmill = RecordingTreadmill("tm01")
            service.record([treadmill])
            tasks = [asyncio.ensure_future(body()) for _, body in service.tasks()]
            await asyncio.sleep(0.1)  # the recorder subscribed

            # A workout walked while the database is down: the daemon did not wait for it.
            treadmill.emit(
                WorkoutStarted(
                    treadmill_id="tm01",
                    at=0.0,
                    profile="p1-starter-a",
                    clinical=False,
                    body_weight_kg=70.0,
                )
            )
            treadmill.change(speed_kmh=2.5, distance_backward_m=3.0)
            await asyncio.sleep(2.5)
            treadmill.emit(
                WorkoutFinished(
                    treadmill_id="tm01",
                    at=2.5,
                    profile="p1-starter-a",
                    elapsed_s=2.5,
                    distance_forward_m=0.0,
                    distance_backward_m=3.0,
                    calories_kcal=0.2,
                )
            )
            await asyncio.sleep(DOWN_FOR_S - 2.5)
            assert not service.writer.opened.is_set()
            # A rider's request meanwhile: the database does not answer, and says so.
            riders_store = asyncio.ensure_future(service.store())
            await asyncio.wait({riders_store})
            assert isinstance(riders_store.exception(), HistoryUnavailableError)

            postgres_server.start_again()
            async with asyncio.timeout(BACK_WITHIN_S):
                await service.writer.opened.wait()
                await service.drained()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await service.close()
    finally:
        postgres_server.start_again_if_stopped()

    async with await open_store(url) as store:
        assert (await store.get_workout("w-crashed")).outcome is WorkoutOutcome.INTERRUPTED
        (walked,) = [w for w in await store.list_workouts() if w.workout_id != "w-crashed"]
        assert walked.outcome is WorkoutOutcome.FINISHED
        assert walked.profile_name == "p1-starter-a"
        samples = (await store.get_workout(walked.workout_id)).samples
        assert samples, "the samples taken while the database was down are kept"
        assert max(s.distance_backward_m for s in samples) == 3.0

    events = [line["event"] for line in logs]
    waiting = [line for line in logs if line["event"] == "history_waiting_for_database"]
    assert waiting, events
    assert "check [database] url" in waiting[0]["action"]
    assert "history_opened" in events
