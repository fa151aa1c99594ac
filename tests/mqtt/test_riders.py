"""Riders over MQTT against a real broker, a real store (SQLite) and the real rider service:
starts for a rider, feedback answered with the next session, retained progress, a therapist's
confirm or decline, refusals that change nothing, and deletion clearing the rider's retained
topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from treadmilld_broker import EmbeddedBroker

from tests.engine.doubles import ObedientTreadmill
from tests.engine.harness import rig
from tests.support.riders import WallClock, rider_service
from treadmilld.engine.api import WorkoutFinished, WorkoutStarted
from treadmilld.engine.limits import ProfileLimits
from treadmilld.history.recorder import WorkoutRecorder
from treadmilld.history.records import HistoryUnavailableError
from treadmilld.history.riders import StrapChoice
from treadmilld.riders.api import RiderDesk
from treadmilld.riders.service import RiderService
from treadmilld.runtime.clock import LoopClock
from treadmilld.store.api import Store, open_store, sqlite_url

from .client import INSTANCE, Observer, eventually, running_bridge
from .doubles import RecordingTreadmill, RejectsEverything

BASE = "treadmilld"
BRIDGE = f"{BASE}/bridge/{INSTANCE}"
REQUEST = f"{BRIDGE}/request"
PROGRESS = f"{BASE}/riders/r-17/progress"
RIDER = {"rider_id": "r-17", "display_name": "Seventeen", "body_weight_kg": 72.5}


@dataclass
class Gym:
    store: Store
    service: RiderService
    treadmill: RecordingTreadmill
    recorder: WorkoutRecorder
    now: WallClock


@pytest.fixture
async def gym(tmp_path: Path) -> AsyncIterator[Gym]:
    """A treadmill double whose workouts the real recorder writes to a real store."""
    async with await open_store(sqlite_url(tmp_path)) as store:
        now = WallClock()
        treadmill = RecordingTreadmill("tm01")
        recorder = WorkoutRecorder(treadmill, store, LoopClock(), wall_clock=now)
        task = asyncio.create_task(recorder.run())
        await asyncio.sleep(0)  # subscribed before anything happens
        try:
            yield Gym(
                store, rider_service(store, tmp_path / "programs", now), treadmill, recorder, now
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def bridge_for(broker: EmbeddedBroker, gym: Gym) -> AsyncIterator[Observer]:
    async with (
        running_bridge(
            broker,
            {"tm01": gym.treadmill},
            riders=gym.service,
            recorders={"tm01": gym.recorder},
        ),
        Observer(broker) as app,
    ):
        await app.subscribe(f"{BASE}/#")
        yield app


async def start_for_rider(app: Observer, gym: Gym) -> dict[str, Any]:
    """`start` for r-17 a few minutes after the rider was created, as at the gym."""
    gym.now.advance(minutes=5)
    return await app.request(f"{BASE}/tm01/request/start", {"rider": "r-17"})


async def finish_workout(gym: Gym) -> str:
    """The double's workout runs to its end; returns the workout id the recorder gave it."""
    await eventually(lambda: gym.recorder.workout_id is not None)
    workout_id = gym.recorder.workout_id
    assert workout_id is not None
    gym.now.advance(minutes=12)
    gym.treadmill.emit(
        WorkoutFinished(
            treadmill_id="tm01",
            at=600.0,
            profile="p1-starter-a",
            elapsed_s=600.0,
            distance_forward_m=400.0,
            distance_backward_m=110.0,
            calories_kcal=30.0,
        )
    )
    await eventually(lambda: gym.recorder.workout_id is None)
    await gym.recorder.drained()  # the ending is in the store
    return workout_id


async def test_a_rider_is_created_started_and_moved_on_by_feedback(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    async with bridge_for(mqtt_broker, gym) as app:
        created = await app.request(
            f"{REQUEST}/rider_create",
            {**RIDER, "program": "quick", "limits": {"max_backward_speed_kmh": 1.8}},
        )
        assert created["status"] == "ok", created
        assert created["data"]["display_name"] == "Seventeen"
        first = await app.wait_for(PROGRESS)
        assert first.json()["next_profile"] == "p1-starter-a"
        assert "Seventeen" not in first.text  # topics carry the pseudonymous id only

        # A start for the rider: their program's next session, weight and limits.
        started = await start_for_rider(app, gym)
        assert started["status"] == "ok", started
        assert started["data"]["profile"] == "p1-starter-a"
        assert started["data"]["body_weight_kg"] == 72.5
        assert gym.treadmill.calls[-1] == ("start_profile", ("p1-starter-a", 72.5, False))
        assert gym.treadmill.rider_limits == ProfileLimits(max_backward_speed_kmh=1.8)

        mark = app.mark()
        workout_id = await finish_workout(gym)
        ended = await app.wait_for(
            PROGRESS, lambda m: m.json().get("last_workout") is not None, after=mark
        )
        assert ended.json()["last_workout"]["workout_id"] == workout_id
        assert ended.json()["last_workout"]["outcome"] == "finished"
        assert ended.json()["sessions_this_week"] == 1

        mark = app.mark()
        reply = await app.request(
            f"{REQUEST}/feedback", {"workout_id": workout_id, "effort": 4, "pain": 1}
        )
        assert reply["status"] == "ok", reply
        assert reply["data"]["decision"] == "advance"
        assert reply["data"]["next_session"]["profile"] == "p1-starter-b"
        progressed = await app.wait_for(PROGRESS, lambda m: m.json().get("stage") == 1, after=mark)
        assert progressed.json()["next_profile"] == "p1-starter-b"
        assert progressed.json()["last_workout"]["pain"] == 1

        summary = await app.request(f"{REQUEST}/history_get", {"workout_id": workout_id})
        assert summary["data"]["outcome"] == "finished"
        assert summary["data"]["rider"] == "r-17"
        assert summary["data"]["program_stage"] == 0

    # A dashboard arriving later reads the progress, retained.
    async with Observer(mqtt_broker) as late:
        await late.subscribe(PROGRESS)
        assert (await late.wait_for(PROGRESS)).json()["stage"] == 1


async def test_a_clinical_program_waits_for_the_therapists_confirm(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    async with bridge_for(mqtt_broker, gym) as app:
        await app.request(f"{REQUEST}/rider_create", {**RIDER, "program": "quick-clinical"})
        started = await start_for_rider(app, gym)
        assert started["data"]["clinical"] is True
        # No incline in a clinical program's first sessions, whatever the profile asks.
        assert started["data"]["rider_limits"] == {
            "max_forward_incline_pct": 0.0,
            "max_backward_incline_pct": 0.0,
        }
        workout_id = await finish_workout(gym)

        waiting = await app.request(
            f"{REQUEST}/feedback", {"workout_id": workout_id, "effort": 2, "pain": 0}
        )
        assert waiting["data"]["decision"] == "await_confirm"
        assert waiting["data"]["progress"]["awaiting_confirm"] is True
        assert waiting["data"]["next_session"]["profile"] == "p1-starter-a"

        gym.now.advance(hours=3)
        confirmed = await app.request(
            f"{REQUEST}/program_confirm", {"rider_id": "r-17", "therapist": "pt-anna"}
        )
        assert confirmed["status"] == "ok", confirmed
        assert confirmed["data"]["stage"] == 1
        assert confirmed["data"]["awaiting_confirm"] is False
        again = await app.request(
            f"{REQUEST}/program_confirm", {"rider_id": "r-17", "therapist": "pt-anna"}
        )
        assert again["code"] == "nothing_to_confirm"
    state = (await gym.store.get_rider("r-17")).program_state
    assert state is not None
    assert state["confirmations"][0]["therapist"] == "pt-anna"


async def test_a_therapist_declines_and_the_rider_keeps_their_stage(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    async with bridge_for(mqtt_broker, gym) as app:
        await app.request(f"{REQUEST}/rider_create", {**RIDER, "program": "quick-clinical"})
        await start_for_rider(app, gym)
        workout_id = await finish_workout(gym)
        waiting = await app.request(
            f"{REQUEST}/feedback", {"workout_id": workout_id, "effort": 2, "pain": 0}
        )
        assert waiting["data"]["progress"]["awaiting_confirm"] is True

        gym.now.advance(hours=3)
        after = app.mark()
        declined = await app.request(
            f"{REQUEST}/program_decline", {"rider_id": "r-17", "therapist": "pt-ben"}
        )
        assert declined["status"] == "ok", declined
        assert (declined["data"]["stage"], declined["data"]["awaiting_confirm"]) == (0, False)
        # The dashboards see it on the retained progress topic.
        republished = await app.wait_for(PROGRESS, after=after)
        assert republished.json()["awaiting_confirm"] is False
        assert republished.json()["next_profile"] == "p1-starter-a"
        again = await app.request(
            f"{REQUEST}/program_decline", {"rider_id": "r-17", "therapist": "pt-ben"}
        )
        assert again["code"] == "nothing_to_confirm"
        started = await start_for_rider(app, gym)
        assert started["data"]["profile"] == "p1-starter-a"
    state = (await gym.store.get_rider("r-17")).program_state
    assert state is not None
    assert [(d["to_stage"], d["therapist"]) for d in state["declines"]] == [(1, "pt-ben")]
    assert state["confirmations"] == []


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("rider_create", {**RIDER, "rider_id": "r-17"}, "rider_exists"),
        ("rider_create", {**RIDER, "rider_id": "Anna Smith"}, "invalid_payload"),
        ("rider_update", {"rider_id": "r-17", "body_weight_kg": 900}, "invalid_payload"),
        (
            "rider_update",
            {"rider_id": "r-17", "body_weight_kg": 80, "limits": {"max_forward_speed_kmh": 19}},
            "limits_looser_than_configured",
        ),
        ("rider_update", {"rider_id": "r-17", "program": "nope"}, "unknown_program"),
        (
            "rider_update",
            {"rider_id": "r-17", "heart_rate_strap": {"address": "not-a-strap"}},
            "invalid_payload",
        ),
        (
            "rider_update",
            {
                "rider_id": "r-17",
                "heart_rate_strap": {"address": "AA:BB:CC:DD:EE:FF", "name_match": "H10"},
            },
            "invalid_payload",
        ),
        ("rider_delete", {"rider_id": "r-99"}, "unknown_rider"),
        ("feedback", {"workout_id": "w-none", "effort": 3, "pain": 11}, "invalid_payload"),
        ("feedback", {"workout_id": "w-none", "effort": 3, "pain": 1}, "unknown_workout"),
        ("program_decline", {"rider_id": "r-17", "therapist": "pt-ben"}, "nothing_to_confirm"),
        # No free text is kept about a rider (docs/database.md): a decline takes no reason.
        (
            "program_decline",
            {"rider_id": "r-17", "therapist": "pt-ben", "reason": "knee swollen"},
            "invalid_payload",
        ),
    ],
)
async def test_a_bad_rider_request_gets_an_error_and_changes_nothing(
    mqtt_broker: EmbeddedBroker, gym: Gym, action: str, payload: dict[str, Any], code: str
) -> None:
    async with bridge_for(mqtt_broker, gym) as app:
        await app.request(f"{REQUEST}/rider_create", {**RIDER, "program": "quick"})
        before = await gym.store.export_rider("r-17")
        reply = await app.request(f"{REQUEST}/{action}", payload)
        assert reply["status"] == "error"
        assert reply["code"] == code, reply
        assert reply["transaction"] == "t1"
        assert await gym.store.export_rider("r-17") == before
        assert [rider.rider_id for rider in await gym.store.list_riders()] == ["r-17"]


async def test_a_start_for_an_unknown_rider_is_refused_and_nothing_starts(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    async with bridge_for(mqtt_broker, gym) as app:
        reply = await app.request(f"{BASE}/tm01/request/start", {"rider": "r-99"})
        assert reply["code"] == "unknown_rider"
        assert gym.treadmill.calls == []


async def test_riders_get_list_and_export_carry_the_name_only_in_their_replies(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    async with bridge_for(mqtt_broker, gym) as app:
        await app.request(f"{REQUEST}/rider_create", {**RIDER, "program": "quick"})
        listed = await app.request(f"{REQUEST}/rider_list")
        assert [rider["display_name"] for rider in listed["data"]] == ["Seventeen"]
        got = await app.request(f"{REQUEST}/rider_get", {"rider_id": "r-17"})
        assert got["data"]["program"] == "quick"
        exported = await app.request(f"{REQUEST}/rider_export", {"rider_id": "r-17"})
        assert exported["data"]["rider"]["display_name"] == "Seventeen"
        # What the daemon published, other than the replies to whoever asked.
        published = [
            m for m in app.received if "/response/" not in m.topic and "/request/" not in m.topic
        ]
        assert any(m.topic == PROGRESS for m in published)
        assert all("Seventeen" not in message.text for message in published)


async def test_deleting_a_rider_clears_their_retained_progress_and_device(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    discovery = "homeassistant/device/treadmilld_riders_r_17/config"
    async with bridge_for(mqtt_broker, gym) as app:
        await app.subscribe("homeassistant/#")
        await app.request(f"{REQUEST}/rider_create", {**RIDER, "program": "quick"})
        config = await app.wait_for(discovery)
        assert config.json()["device"]["name"] == "Rider r-17"
        assert set(config.json()["components"]) >= {
            "stage",
            "sessions_this_week",
            "weekly_target",
            "streak",
            "next_profile",
            "last_workout_distance",
        }
        deleted = await app.request(f"{REQUEST}/rider_delete", {"rider_id": "r-17"})
        assert deleted["data"] == {"rider_id": "r-17", "deleted_workouts": 0}
        await app.wait_for(PROGRESS, lambda m: m.payload == b"")
        await app.wait_for(discovery, lambda m: m.payload == b"")
    assert await gym.store.list_riders() == []
    async with Observer(mqtt_broker) as late:
        await late.subscribe(PROGRESS, discovery)
        marker = f"{BASE}/test/marker"
        await late.subscribe(marker)
        await late.publish(marker, "after")
        await late.wait_for(marker)  # retained messages come before it, if there were any
        assert late.matching(PROGRESS) == []
        assert late.matching(discovery) == []


async def test_without_a_database_rider_requests_and_rider_starts_are_refused(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{BASE}/#")
        reply = await app.request(f"{REQUEST}/rider_list")
        assert reply["code"] == "riders_unavailable"
        start = await app.request(f"{BASE}/tm01/request/start", {"rider": "r-17"})
        assert start["code"] == "riders_unavailable"
        assert treadmill.calls == []


class RemembersStraps:
    """The daemon's strap switch as the bridge sees it: every strap a start named."""

    def __init__(self) -> None:
        self.assigned: list[StrapChoice | None] = []

    def assign(self, strap: StrapChoice | None) -> None:
        self.assigned.append(strap)

    def last(self) -> StrapChoice | None:
        return self.assigned[-1]


async def test_a_riders_own_strap_is_what_their_workout_hears_unless_the_start_names_one(
    mqtt_broker: EmbeddedBroker, gym: Gym
) -> None:
    straps = RemembersStraps()
    async with (
        running_bridge(
            mqtt_broker,
            {"tm01": gym.treadmill},
            riders=gym.service,
            recorders={"tm01": gym.recorder},
            straps={"tm01": straps},
        ),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BASE}/#")
        created = await app.request(
            f"{REQUEST}/rider_create",
            {**RIDER, "program": "quick", "heart_rate_strap": {"address": "aa-bb-cc-dd-ee-17"}},
        )
        assert created["status"] == "ok", created
        own = {"address": "AA:BB:CC:DD:EE:17"}  # written the way the radio reports it
        assert created["data"]["heart_rate_strap"] == own

        started = await start_for_rider(app, gym)
        assert started["data"]["heart_rate_strap"] == own
        assert straps.assigned == [StrapChoice(address="AA:BB:CC:DD:EE:17")]
        await finish_workout(gym)

        # A strap handed out at the desk, for this workout only.
        desk = {"name_match": "H10 DESK-3"}
        started = await app.request(
            f"{BASE}/tm01/request/start", {"rider": "r-17", "heart_rate_strap": desk}
        )
        assert started["data"]["heart_rate_strap"] == desk
        assert straps.last() == StrapChoice(name_match="H10 DESK-3")
        await finish_workout(gym)

        # Without a rider: the treadmill's own strap.
        started = await app.request(f"{BASE}/tm01/request/start", {"profile": "hill_30"})
        assert started["status"] == "ok", started
        assert started["data"]["heart_rate_strap"] is None
        assert straps.last() is None

        # A strap that is no Bluetooth address: an error naming the fix, nothing started.
        calls = len(gym.treadmill.calls)
        bad = await app.request(
            f"{BASE}/tm01/request/start", {"rider": "r-17", "heart_rate_strap": {"address": "7"}}
        )
        assert bad["code"] == "invalid_payload"
        assert "AA:BB:CC:DD:EE:FF" in bad["error"]
        assert len(gym.treadmill.calls) == calls
        assert len(straps.assigned) == 3

        # The rider forgets their strap: later starts hear the treadmill's.
        updated = await app.request(
            f"{REQUEST}/rider_update", {"rider_id": "r-17", "heart_rate_strap": None}
        )
        assert updated["data"]["heart_rate_strap"] is None
        assert (await gym.store.get_rider("r-17")).heart_rate_strap is None


class DatabaseDown:
    """The rider service while the shared database does not answer: every call raises what
    the store raises then."""

    def __getattr__(self, name: str) -> Any:
        async def unavailable(*args: object, **kwargs: object) -> Any:
            raise HistoryUnavailableError("postgresql://gym-db/treadmilld: connection refused")

        return unavailable


async def test_while_the_database_is_down_rider_requests_and_starts_say_so_and_nothing_starts(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    desk = cast(RiderDesk, DatabaseDown())
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, riders=desk),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BASE}/#")
        listed = await app.request(f"{REQUEST}/rider_list")
        assert listed["code"] == "database_unavailable"
        assert "connection refused" in listed["error"]
        start = await app.request(f"{BASE}/tm01/request/start", {"rider": "r-17"})
        assert start["code"] == "database_unavailable"
        assert "without a rider can be started" in start["error"]
        assert treadmill.calls == []
        # A workout without a rider needs no database.
        plain = await app.request(f"{BASE}/tm01/request/start", {"profile": "hill_30"})
        assert plain["status"] == "ok", plain


async def test_a_riders_personal_limit_caps_the_planned_speed(
    mqtt_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The real session: p1-starter-a warms up forward at 3.5 km/h; the rider's cap of 2.5
    km/h is what the first segment is planned at."""
    async with (
        await open_store(sqlite_url(tmp_path)) as store,
        rig(lambda clock: ObedientTreadmill(clock, treadmill_id="tm01")) as deck,
    ):
        service = rider_service(store, tmp_path / "programs", WallClock())
        await eventually(lambda: deck.session.snapshot().connection == "connected")
        async with (
            running_bridge(mqtt_broker, {"tm01": deck.session}, riders=service),
            Observer(mqtt_broker) as app,
        ):
            await app.subscribe(f"{BASE}/#")
            await app.request(
                f"{REQUEST}/rider_create",
                {**RIDER, "program": "quick", "limits": {"max_forward_speed_kmh": 2.5}},
            )
            started = await app.request(f"{BASE}/tm01/request/start", {"rider": "r-17"})
            assert started["status"] == "ok", started
            segment = await app.wait_for(
                f"{BASE}/tm01/event", lambda m: m.json().get("type") == "segment_started"
            )
            assert segment.json()["speed_kmh"] == 2.5
            await app.request(f"{BASE}/tm01/request/stop")


async def test_a_start_for_a_rider_on_set_and_a_refused_one_records_nobodys_workout(
    mqtt_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """`set` takes `rider` with `start` only; when the engine refuses a rider's start, the
    recorder is told the next workout is nobody's."""
    async with await open_store(sqlite_url(tmp_path)) as store:
        service = rider_service(store, tmp_path / "programs", WallClock())
        treadmill = RejectsEverything("tm01")
        recorder = WorkoutRecorder(treadmill, store, LoopClock())
        recording = asyncio.create_task(recorder.run())
        straps = RemembersStraps()
        async with (
            running_bridge(
                mqtt_broker,
                {"tm01": treadmill},
                riders=service,
                recorders={"tm01": recorder},
                straps={"tm01": straps},
            ),
            Observer(mqtt_broker) as app,
        ):
            await app.subscribe(f"{BASE}/#")
            await app.request(f"{REQUEST}/rider_create", {**RIDER, "program": "quick"})
            mark = app.mark()
            await app.publish(f"{BASE}/tm01/set", {"command": "start", "rider": "r-17"})
            refused = await app.wait_for(
                f"{BASE}/tm01/event", lambda m: m.json().get("type") == "error", after=mark
            )
            assert refused.json()["code"] == "control_not_permitted"  # the engine said no
            assert straps.assigned == []  # a refused start changes no strap
            mark = app.mark()
            await app.publish(f"{BASE}/tm01/set", {"rider": "r-17"})
            alone = await app.wait_for(
                f"{BASE}/tm01/event", lambda m: m.json().get("type") == "error", after=mark
            )
            assert "rider only goes with command 'start'" in alone.json()["error"]
            # The next workout on this treadmill (started without a rider) is nobody's.
            treadmill.emit(
                WorkoutStarted(
                    treadmill_id="tm01",
                    at=0.0,
                    profile="p1-starter-a",
                    clinical=False,
                    body_weight_kg=70.0,
                )
            )
            await eventually(lambda: recorder.workout_id is not None)
            await recorder.drained()
        recording.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recording
        (workout,) = await store.list_workouts()
        assert workout.rider_id is None
