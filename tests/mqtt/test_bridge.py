"""The topic contract of docs/mqtt.md, against a real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from treadmilld_broker import EmbeddedBroker

from treadmilld.engine.api import (
    AbortReason,
    BeltState,
    Phase,
    StopConfirmed,
    StopOutcome,
    StopUnconfirmed,
    WorkoutAborted,
    WorkoutFinished,
)

from .client import (
    INSTANCE,
    ManualClock,
    Observer,
    Received,
    running_bridge,
    running_bridge_unready,
)
from .doubles import RecordingTreadmill, RejectsEverything

BASE = "treadmilld"
BRIDGE = f"{BASE}/bridge/{INSTANCE}"  # this bridge instance's own topics
TM = f"{BASE}/tm01"


def is_json(**expected: Any) -> Any:
    """A `where` predicate: the JSON payload has these key/values."""

    def check(message: Received) -> bool:
        try:
            body = message.json()
        except ValueError:
            return False
        return isinstance(body, dict) and all(body.get(k) == v for k, v in expected.items())

    return check


async def test_bridge_announces_itself_and_each_treadmill_retained(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    # A dashboard arriving later still learns everything: all of it is retained.
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as late:
        await late.subscribe(f"{BASE}/#")
        state = await late.wait_for(f"{BRIDGE}/state")
        info = await late.wait_for(f"{BRIDGE}/info")
        devices = await late.wait_for(f"{BRIDGE}/devices")
        profiles = await late.wait_for(f"{BRIDGE}/profiles")
        availability = await late.wait_for(f"{TM}/availability")
        tm_state = await late.wait_for(f"{TM}/state")

    assert (state.text, state.retain) == ("online", True)
    assert info.retain
    assert info.json()["version"] == "9.9.9"
    assert info.json()["treadmills"] == ["tm01"]
    assert devices.retain
    assert devices.json()[0]["id"] == "tm01"
    assert profiles.retain
    assert [p["name"] for p in profiles.json()] == ["hill_30", "retro_intro"]
    assert profiles.json()[0]["total_s"] == 1800.0
    assert (availability.text, availability.retain) == ("online", True)
    body = tm_state.json()
    assert tm_state.retain
    assert body["phase"] == "idle"
    assert body["connection"] == "connected"
    assert body["distance_backward_m"] == 0.0


@pytest.mark.parametrize(
    ("payload", "expected_call"),
    [
        (
            {"command": "start", "profile": "hill_30", "body_weight_kg": 82.5, "clinical": True},
            ("start_profile", ("hill_30", 82.5, True)),
        ),
        ({"command": "pause"}, ("pause", ())),
        ({"command": "resume"}, ("resume", ())),
        ({"command": "stop"}, ("stop", ())),
        ({"command": "emergency_stop"}, ("emergency_stop", ())),
        ({"command": "skip"}, ("skip_segment", ())),
        ({"command": "confirm_turn"}, ("confirm_turn", ())),
        ({"speed_kmh": 4.5}, ("set_speed", (4.5,))),
        ({"incline_pct": 2.0}, ("set_incline", (2.0,))),
    ],
)
async def test_every_set_command_reaches_the_treadmill(
    mqtt_broker: EmbeddedBroker, payload: dict[str, Any], expected_call: tuple[str, tuple[Any]]
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.publish(f"{TM}/set", payload)
        async with asyncio.timeout(10):
            await treadmill.call_recorded.wait()
    assert treadmill.calls == [expected_call]


@pytest.mark.parametrize(
    ("field", "value", "expected_call"),
    [
        ("speed_kmh", "3.5", ("set_speed", (3.5,))),
        ("incline_pct", "-1", ("set_incline", (-1.0,))),
        ("command", "pause", ("pause", ())),
        ("command", "emergency_stop", ("emergency_stop", ())),
    ],
)
async def test_plain_set_field_takes_a_bare_value(
    mqtt_broker: EmbeddedBroker, field: str, value: str, expected_call: tuple[str, tuple[Any]]
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.publish(f"{TM}/set/{field}", value)
        async with asyncio.timeout(10):
            await treadmill.call_recorded.wait()
    assert treadmill.calls == [expected_call]


async def test_selected_profile_is_started_by_a_bare_start(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/state")
        await app.publish(f"{TM}/set/profile", "retro_intro")
        # Selecting never moves the belt; it shows up in the state for HA's select.
        await app.wait_for(f"{TM}/state", is_json(selected_profile="retro_intro"))
        assert treadmill.calls == []
        await app.publish(f"{TM}/set", {"command": "start"})
        async with asyncio.timeout(10):
            await treadmill.call_recorded.wait()
    assert treadmill.calls == [("start_profile", ("retro_intro", None, False))]


async def test_requests_are_answered_with_transaction_and_data(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#")
        started = await app.request(
            f"{TM}/request/start", {"profile": "hill_30"}, transaction="abc"
        )
        treadmill.change(segment_index=2, segment_remaining_s=41.47)
        speed = await app.request(f"{TM}/request/set_speed", {"speed_kmh": 9.0}, transaction="spd")
        incline = await app.request(f"{TM}/request/set_incline", {"incline_pct": 1.5})
        paused = await app.request(f"{TM}/request/pause", transaction="p")
        state = await app.request(f"{TM}/request/state", transaction="s")
        for action in ("resume", "skip", "confirm_turn", "stop"):
            reply = await app.request(f"{TM}/request/{action}", transaction=action)
            assert reply == {"status": "ok", "data": {}, "transaction": action}
        estop = await app.request(f"{TM}/request/emergency_stop", transaction="e")

    assert started == {"status": "ok", "data": {"profile": "hill_30"}, "transaction": "abc"}
    # The engine capped the speed; the reply says what was actually targeted, and for how
    # long: until the current segment ends.
    scope = {"applies_until": "segment_end", "segment_index": 2, "segment_remaining_s": 41.5}
    assert speed == {"status": "ok", "data": {"speed_kmh": 6.0, **scope}, "transaction": "spd"}
    assert incline["data"] == {"incline_pct": 1.5, **scope}
    assert paused["status"] == "ok"
    assert state["data"]["phase"] == "paused"
    assert (estop["status"], estop["belt"]) == ("ok", "stop_sent")
    assert treadmill.names() == [
        "start_profile",
        "set_speed",
        "set_incline",
        "pause",
        "resume",
        "skip_segment",
        "confirm_turn",
        "stop",
        "emergency_stop",
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_payload"),
        (b'{"command": "fly", "transaction": "x1"}', "invalid_payload"),
        (b'{"speed_kmh": 85, "transaction": "x1"}', "invalid_payload"),
        (b'{"speed_kmh": 4, "incline_pct": 2, "transaction": "x1"}', "invalid_payload"),
        (b'{"command": "stop", "speed_kmh": 4, "transaction": "x1"}', "invalid_payload"),
        (b'{"command": "pause", "profile": "hill_30", "transaction": "x1"}', "invalid_payload"),
        (b'{"colour": "red", "transaction": "x1"}', "invalid_payload"),
        (b'{"command": "start", "clinical": "yes", "transaction": "x1"}', "invalid_payload"),
        (b'{"transaction": "x1"}', "invalid_payload"),
    ],
)
async def test_bad_set_payload_gets_an_error_event_and_changes_nothing(
    mqtt_broker: EmbeddedBroker, payload: bytes, code: str
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/event")
        await app.publish(f"{TM}/set", payload)
        event = (await app.wait_for(f"{TM}/event", is_json(type="error"))).json()
        # Then a good command, to show the bad one left nothing queued behind.
        await app.publish(f"{TM}/set", {"command": "pause"})
        async with asyncio.timeout(10):
            await treadmill.call_recorded.wait()
    assert event["status"] == "error"
    assert event["code"] == code
    assert event["error"]
    assert event["request"] == f"{TM}/set"
    if b"x1" in payload and code != "invalid_json":
        assert event["transaction"] == "x1"
    assert treadmill.calls == [("pause", ())]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("speed_kmh", "fast", "invalid_payload"),
        ("speed_kmh", "nan", "invalid_payload"),
        ("incline_pct", "99", "invalid_payload"),
        ("command", "warp", "invalid_payload"),
        ("colour", "red", "unknown_field"),
    ],
)
async def test_bad_plain_set_gets_an_error_event(
    mqtt_broker: EmbeddedBroker, field: str, value: str, code: str
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/event")
        await app.publish(f"{TM}/set/{field}", value)
        event = (await app.wait_for(f"{TM}/event", is_json(type="error"))).json()
    assert event["code"] == code
    assert treadmill.calls == []


async def test_bad_requests_get_error_replies(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#", f"{BRIDGE}/response/#")
        unknown = await app.request(f"{TM}/request/teleport", transaction="u")
        missing = await app.request(f"{TM}/request/set_speed", transaction="m")
        no_profile = await app.request(f"{TM}/request/start", transaction="n")
        bad_select = await app.request(f"{TM}/request/start", {"profile": ""}, transaction="e")
        unknown_bridge = await app.request(f"{BRIDGE}/request/reboot", transaction="b")
    assert unknown["status"] == "error"
    assert unknown["code"] == "unknown_action"
    assert unknown["transaction"] == "u"
    assert missing["code"] == "invalid_payload"
    assert "speed_kmh" in missing["error"]
    assert no_profile["code"] == "profile_required"
    assert bad_select["code"] == "invalid_payload"
    assert unknown_bridge["code"] == "unknown_action"
    assert treadmill.calls == []


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (f"{TM}/request/start", b"", "empty_payload"),
        (f"{TM}/request/pause", b"", "empty_payload"),
        (f"{TM}/request/emergency_stop", b" ", "empty_payload"),
        (f"{BRIDGE}/request/health_check", b"", "empty_payload"),
        (f"{TM}/request/start", b"start", "invalid_json"),
        (f"{TM}/request/resume", b"resume please", "invalid_json"),
    ],
)
async def test_empty_or_non_json_request_is_refused_with_its_own_code(
    mqtt_broker: EmbeddedBroker, topic: str, payload: bytes, code: str
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{BASE}/#")
        # A profile is selected: an empty `start` used to start it.
        await app.publish(f"{TM}/set/profile", "retro_intro")
        await app.wait_for(f"{TM}/state", is_json(selected_profile="retro_intro"))
        response = topic.replace("/request/", "/response/")
        after = app.mark()
        await app.publish(topic, payload)
        reply = (await app.wait_for(response, is_json(status="error"), after=after)).json()
        state = await app.request(f"{TM}/request/state", transaction="sync")
    assert reply["code"] == code
    assert reply["transaction"] is None
    assert "{}" in reply["error"] or "JSON" in reply["error"]
    assert treadmill.calls == []
    assert state["data"]["phase"] == "idle"


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (f"{TM}/set", b"", "empty_payload"),
        (f"{TM}/set/command", b"", "empty_payload"),
        (f"{TM}/set/speed_kmh", b"  ", "empty_payload"),
        (f"{TM}/set", b"pause", "invalid_json"),
    ],
)
async def test_empty_or_non_json_set_is_an_error_event(
    mqtt_broker: EmbeddedBroker, topic: str, payload: bytes, code: str
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/event")
        await app.publish(topic, payload)
        event = (await app.wait_for(f"{TM}/event", is_json(type="error"))).json()
    assert (event["code"], event["request"]) == (code, topic)
    assert treadmill.calls == []


async def test_clearing_a_retained_start_never_starts_the_selected_profile(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#", f"{TM}/state")
        await app.publish(f"{TM}/request/start", {"profile": "hill_30"}, retain=True)
        async with running_bridge(mqtt_broker, {"tm01": treadmill}):
            refused = await app.wait_for(f"{TM}/response/start", is_json(status="error"))
            await app.publish(f"{TM}/set/profile", "retro_intro")
            await app.wait_for(f"{TM}/state", is_json(selected_profile="retro_intro"))
            # What the refusal asks for: clear the retained command. The broker delivers the
            # empty message to the subscribed daemon like any live publish.
            after = app.mark()
            await app.publish(f"{TM}/request/start", b"", retain=True)
            cleared = await app.wait_for(f"{TM}/response/start", after=after)
            state = await app.request(f"{TM}/request/state", transaction="sync")
    assert refused.json()["code"] == "retained_command"
    assert cleared.json()["code"] == "empty_payload"
    assert treadmill.calls == []
    assert state["data"]["phase"] == "idle"


async def test_unknown_profile_selection_is_refused(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/event")
        await app.publish(f"{TM}/set", {"profile": "no_such_profile", "transaction": 7})
        event = (await app.wait_for(f"{TM}/event", is_json(type="error"))).json()
    assert (event["code"], event["transaction"]) == ("unknown_profile", 7)


async def test_engine_refusal_is_reported_with_its_code(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RejectsEverything("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#", f"{TM}/event")
        reply = await app.request(f"{TM}/request/pause", transaction="r")
        await app.publish(f"{TM}/set", {"speed_kmh": 3.0, "transaction": "s"})
        event = (await app.wait_for(f"{TM}/event", is_json(type="error"))).json()
        estop = await app.request(f"{TM}/request/emergency_stop", transaction="e")
    assert reply["status"] == "error"
    assert reply["code"] == "control_not_permitted"
    assert (event["code"], event["transaction"]) == ("control_not_permitted", "s")
    assert estop["status"] == "ok"
    assert treadmill.names() == ["emergency_stop"]


async def test_retained_command_is_refused_not_replayed(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/event")
        # Left on the broker by a careless client before the daemon came up.
        await app.publish(
            f"{TM}/set", {"command": "start", "profile": "hill_30", "transaction": "r"}, retain=True
        )
        async with running_bridge(mqtt_broker, {"tm01": treadmill}):
            event = (await app.wait_for(f"{TM}/event", is_json(type="error"))).json()
            await app.publish(f"{TM}/set", b"", retain=True)  # clear it
            await app.publish(f"{TM}/set", {"command": "pause"})
            async with asyncio.timeout(10):
                await treadmill.call_recorded.wait()
    assert event["code"] == "retained_command"
    assert event["transaction"] == "r"
    assert treadmill.calls == [("pause", ())]


async def test_stale_and_future_commands_are_refused(mqtt_broker: EmbeddedBroker) -> None:
    now = 1_800_000_000.0
    treadmill = RecordingTreadmill("tm01")
    async with (
        running_bridge(
            mqtt_broker, {"tm01": treadmill}, wall_time=lambda: now, max_command_age_s=5.0
        ),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{TM}/event", f"{TM}/response/#")
        await app.publish(f"{TM}/set", {"speed_kmh": 3.0, "ts": now - 60, "transaction": "old"})
        stale = (await app.wait_for(f"{TM}/event", is_json(transaction="old"))).json()
        future = await app.request(
            f"{TM}/request/start", {"profile": "hill_30", "ts": now + 600}, transaction="fut"
        )
        fresh = await app.request(
            f"{TM}/request/pause", {"ts": "2027-01-15T08:00:01+00:00"}, transaction="ok"
        )
        # Stopping is always safe: an old emergency stop still stops.
        await app.publish(f"{TM}/set", {"command": "emergency_stop", "ts": now - 3600})
        async with asyncio.timeout(10):
            while "emergency_stop" not in treadmill.names():
                await treadmill.call_recorded.wait()
                treadmill.call_recorded.clear()
    assert stale["code"] == "stale_command"
    assert future["code"] == "timestamp_in_future"
    assert fresh["status"] == "ok"
    assert treadmill.names() == ["pause", "emergency_stop"]


async def test_emergency_stop_runs_ahead_of_queued_commands(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    treadmill.hold_commands = True  # the first command hangs, e.g. a slow BLE write
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#", f"{TM}/event")
        await app.publish(f"{TM}/request/start", {"profile": "hill_30", "transaction": "s"})
        async with asyncio.timeout(10):
            await treadmill.command_began.wait()
        await app.publish(f"{TM}/request/resume", {"transaction": "queued-1"})
        await app.publish(f"{TM}/set", {"speed_kmh": 5.0, "transaction": "queued-2"})
        await app.publish(f"{TM}/set", {"command": "emergency_stop"})
        dropped_1 = await app.wait_for(f"{TM}/response/resume", is_json(transaction="queued-1"))
        dropped_2 = await app.wait_for(f"{TM}/event", is_json(transaction="queued-2"))
        # The emergency stop ran while the first command was still stuck.
        assert treadmill.names() == ["emergency_stop"]
        treadmill.release()
        await app.wait_for(f"{TM}/response/start", is_json(transaction="s"))
    assert dropped_1.json()["code"] == "superseded_by_emergency_stop"
    assert dropped_2.json()["code"] == "superseded_by_emergency_stop"
    assert treadmill.names() == ["emergency_stop", "start_profile"]
    assert treadmill.started == ["start_profile"]  # resume and set_speed never began


@pytest.mark.parametrize("outcome", [StopOutcome.BELT_STANDING, StopOutcome.STOP_SENT])
async def test_emergency_stop_reply_says_what_the_belt_did(
    mqtt_broker: EmbeddedBroker, outcome: StopOutcome
) -> None:
    treadmill = RecordingTreadmill("tm01", stop_outcome=outcome)
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#")
        reply = await app.request(f"{TM}/request/emergency_stop", transaction="e")
    assert reply == {
        "status": "ok",
        "belt": outcome.value,
        "data": {"belt": outcome.value},
        "transaction": "e",
    }
    assert treadmill.names() == ["emergency_stop"]


async def test_unconfirmed_emergency_stop_is_an_error_telling_to_pull_the_key(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01", stop_outcome=StopOutcome.NOT_CONFIRMED)
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#", f"{TM}/event")
        reply = await app.request(f"{TM}/request/emergency_stop", transaction="e")
        # The same from Home Assistant's button: `set` has no reply, so it is an error event.
        await app.publish(f"{TM}/set", {"command": "emergency_stop", "transaction": "ha"})
        event = (await app.wait_for(f"{TM}/event", is_json(type="error", transaction="ha"))).json()
    for refusal in (reply, event):
        assert refusal["status"] == "error"
        assert refusal["code"] == "stop_not_confirmed"
        assert refusal["belt"] == "not_confirmed"
        assert "pull the safety key" in refusal["error"]
    assert reply["transaction"] == "e"
    assert treadmill.names() == ["emergency_stop", "emergency_stop"]


async def test_emergency_stop_that_raises_is_not_reported_as_done(
    mqtt_broker: EmbeddedBroker,
) -> None:
    class BrokenEmergencyStop(RecordingTreadmill):
        async def emergency_stop(self) -> StopOutcome:
            raise RuntimeError("engine bug")

    treadmill = BrokenEmergencyStop("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#")
        reply = await app.request(f"{TM}/request/emergency_stop", transaction="e")
    assert (reply["status"], reply["code"]) == ("error", "stop_not_confirmed")
    assert "pull the safety key" in reply["error"]


async def test_bridge_requests(mqtt_broker: EmbeddedBroker) -> None:
    treadmills = {"tm01": RecordingTreadmill("tm01"), "tm02": RecordingTreadmill("tm02")}
    async with running_bridge(mqtt_broker, treadmills), Observer(mqtt_broker) as app:
        await app.subscribe(f"{BRIDGE}/response/#")
        health = await app.request(f"{BRIDGE}/request/health_check", transaction="h")
        devices = await app.request(f"{BRIDGE}/request/devices", transaction="d")
        profiles = await app.request(f"{BRIDGE}/request/profiles", transaction="p")
        info = await app.request(f"{BRIDGE}/request/info", transaction="i")
    assert health["status"] == "ok"
    assert health["transaction"] == "h"
    assert health["data"]["healthy"] is True
    assert health["data"]["treadmills"] == {"tm01": "connected", "tm02": "connected"}
    assert [d["id"] for d in devices["data"]] == ["tm01", "tm02"]
    assert [p["name"] for p in profiles["data"]] == ["hill_30", "retro_intro"]
    assert info["data"]["treadmills"] == ["tm01", "tm02"]


async def test_get_republishes_state(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    clock = ManualClock()  # frozen: neither rate limit nor heartbeat will publish by itself
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, clock=clock),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{TM}/state")
        await app.wait_for(f"{TM}/state")
        after = app.mark()
        await app.publish(f"{TM}/get", "")
        again = await app.wait_for(f"{TM}/state", after=after)
    assert again.json()["treadmill_id"] == "tm01"


async def test_state_changes_are_published_rate_limited_and_coalesced(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    clock = ManualClock()
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, clock=clock, state_min_interval_s=1.0),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{TM}/state")
        await app.wait_for(f"{TM}/state")
        treadmill.change(speed_kmh=2.0)
        # The publisher is now holding that change back until the interval has passed.
        async with asyncio.timeout(10):
            await clock.sleeper_until(clock.now() + 1.0)
        treadmill.change(speed_kmh=3.0, distance_m=12.4)
        await clock.advance(1.0)
        latest = await app.wait_for(f"{TM}/state", is_json(speed_kmh=3.0))
        await app.publish(f"{TM}/get", "")  # sync point: everything before it has arrived
        await app.wait_for(f"{TM}/state", after=app.received.index(latest) + 1)
    assert latest.json()["distance_m"] == 12
    # 2.0 was superseded before its slot came: it was never published.
    assert app.matching(f"{TM}/state", is_json(speed_kmh=2.0)) == []


async def test_heartbeat_republishes_unchanged_state(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    clock = ManualClock()
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, clock=clock, heartbeat_interval_s=30.0),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{TM}/state")
        first = await app.wait_for(f"{TM}/state")
        after = app.mark()
        await clock.advance(30.0)
        beat = await app.wait_for(f"{TM}/state", after=after)
    assert beat.json()["phase"] == first.json()["phase"] == "idle"


async def test_engine_events_and_availability_are_published(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/#", f"{BRIDGE}/event")
        await app.wait_for(f"{TM}/availability", lambda m: m.text == "online")
        treadmill.emit(
            WorkoutFinished(
                treadmill_id="tm01",
                at=1.0,
                profile="hill_30",
                elapsed_s=1800.0,
                distance_forward_m=900.0,
                distance_backward_m=300.0,
                calories_kcal=150.0,
            )
        )
        finished = await app.wait_for(f"{TM}/event", is_json(type="workout_finished"))
        after = app.mark()
        treadmill.change(connection="disconnected")
        offline = await app.wait_for(f"{TM}/availability", after=after)
        bridge_event = await app.wait_for(f"{BRIDGE}/event", is_json(type="treadmill_disconnected"))
    assert finished.json()["distance_backward_m"] == 300.0
    assert not finished.retain
    assert offline.text == "offline"  # live copy: retain=0 (MQTT 3.1.1 §3.3.1.3)
    assert bridge_event.json()["data"] == {"id": "tm01"}


async def test_stop_outcomes_and_the_measured_belt_are_published(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/#")
        await app.wait_for(f"{TM}/state", is_json(belt="standing"))
        treadmill.change(belt=BeltState.MOVING, speed_kmh=3.5)
        moving = await app.wait_for(f"{TM}/state", is_json(belt="moving"))
        treadmill.emit(
            WorkoutAborted(
                treadmill_id="tm01",
                at=2.0,
                reason=AbortReason.BELT_STOPPED,
                detail="the belt stood still while it was told to move",
            )
        )
        treadmill.emit(
            StopUnconfirmed(
                treadmill_id="tm01",
                at=3.0,
                after_s=6.5,
                speed_kmh=3.5,
                detail="still moving 6.5 s after Stop",
            )
        )
        treadmill.emit(StopConfirmed(treadmill_id="tm01", at=4.0, after_s=8.0))
        treadmill.change(belt=BeltState.STANDING, speed_kmh=0.0)
        aborted = await app.wait_for(f"{TM}/event", is_json(type="workout_aborted"))
        alarm = await app.wait_for(f"{TM}/event", is_json(type="stop_unconfirmed"))
        confirmed = await app.wait_for(f"{TM}/event", is_json(type="stop_confirmed"))
        standing = await app.wait_for(
            f"{TM}/state", is_json(belt="standing"), after=app.received.index(moving)
        )
    assert aborted.json() == {
        "type": "workout_aborted",
        "event_type": "workout_aborted",  # what Home Assistant's event entity reads
        "reason": "belt_stopped",
        "detail": "the belt stood still while it was told to move",
    }
    assert alarm.json() == {
        "type": "stop_unconfirmed",
        "event_type": "stop_unconfirmed",
        "after_s": 6.5,
        "speed_kmh": 3.5,
        "detail": "still moving 6.5 s after Stop",
    }
    assert confirmed.json() == {
        "type": "stop_confirmed",
        "event_type": "stop_confirmed",
        "after_s": 8.0,
    }
    assert standing.json()["speed_kmh"] == 0.0


async def test_clean_close_publishes_offline(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with Observer(mqtt_broker) as app:
        await app.subscribe(f"{BRIDGE}/state")
        async with running_bridge(mqtt_broker, {"tm01": treadmill}):
            await app.wait_for(f"{BRIDGE}/state", lambda m: m.text == "online")
            after = app.mark()
        goodbye = await app.wait_for(f"{BRIDGE}/state", after=after)
    assert goodbye.text == "offline"
    assert treadmill.calls == []  # closing never touches the belt by itself


@pytest.mark.needs_mosquitto
async def test_clean_close_leaves_offline_retained(mosquitto_broker: EmbeddedBroker) -> None:
    async with running_bridge(mosquitto_broker, {"tm01": RecordingTreadmill("tm01")}):
        pass
    async with Observer(mosquitto_broker) as later:
        await later.subscribe(f"{BRIDGE}/state")
        retained = await later.wait_for(f"{BRIDGE}/state")
    assert (retained.text, retained.retain) == ("offline", True)


@pytest.mark.needs_mosquitto
async def test_clean_close_leaves_the_final_state_then_offline_retained(
    mosquitto_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    treadmill.change(phase=Phase.RUNNING, target_speed_kmh=3.5, target_incline_pct=0.0)
    clock = ManualClock()  # frozen: the rate limit holds back the shutdown's state change
    async with Observer(mosquitto_broker) as live:
        await live.subscribe(f"{BASE}/#")
        async with running_bridge(
            mosquitto_broker, {"tm01": treadmill}, clock=clock, state_min_interval_s=1.0
        ):
            await live.wait_for(f"{TM}/state", is_json(phase="running"))
            # What the daemon's shutdown does to the session just before closing the bridge.
            treadmill.change(
                phase=Phase.ABORTED,
                abort_reason=AbortReason.SHUTDOWN,
                target_speed_kmh=None,
                target_incline_pct=None,
            )
            async with asyncio.timeout(10):
                await clock.sleeper_until(clock.now() + 1.0)
            after = live.mark()
        await live.wait_for(f"{BRIDGE}/state", lambda m: m.text == "offline", after=after)
        goodbye = [(m.topic, m.payload) for m in live.received[after:]]
    async with Observer(mosquitto_broker) as later:
        await later.subscribe(f"{TM}/state", f"{TM}/availability", f"{BRIDGE}/state")
        state = await later.wait_for(f"{TM}/state")
        availability = await later.wait_for(f"{TM}/availability")
        bridge_state = await later.wait_for(f"{BRIDGE}/state")
    assert [topic for topic, _ in goodbye] == [
        f"{TM}/state",
        f"{TM}/availability",
        f"{BRIDGE}/state",
    ]
    assert state.retain
    assert state.json()["phase"] == "aborted"
    assert state.json()["abort_reason"] == "shutdown"
    assert (state.json()["target_speed_kmh"], state.json()["target_incline_pct"]) == (None, None)
    assert (availability.text, availability.retain) == ("offline", True)
    assert (bridge_state.text, bridge_state.retain) == ("offline", True)


@pytest.mark.needs_mosquitto
async def test_v5_response_topic_and_correlation_data_are_honoured(
    mosquitto_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with (
        running_bridge(mosquitto_broker, {"tm01": treadmill}, protocol="5"),
        Observer(mosquitto_broker, v5=True) as app,
    ):
        await app.subscribe(f"{TM}/response/mine/#")
        await app.publish(
            f"{TM}/request/pause",
            {"transaction": "v5"},
            response_topic=f"{TM}/response/mine/42",
            correlation_data=b"\x00corr-42",
        )
        reply = await app.wait_for(f"{TM}/response/mine/42")
    assert reply.json() == {"status": "ok", "data": {}, "transaction": "v5"}
    assert reply.correlation_data == b"\x00corr-42"
    assert treadmill.names() == ["pause"]


@pytest.mark.needs_mosquitto
async def test_v5_response_topic_cannot_target_daemon_owned_topics(
    mosquitto_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with (
        running_bridge(mosquitto_broker, {"tm01": treadmill}, protocol="5"),
        Observer(mosquitto_broker, v5=True) as app,
    ):
        await app.subscribe(f"{TM}/state", f"{TM}/response/pause")
        await app.wait_for(f"{TM}/state")
        after = app.mark()
        await app.publish(
            f"{TM}/request/pause",
            {"transaction": "spoof"},
            response_topic=f"{TM}/state",
            correlation_data=b"x",
        )
        reply = await app.wait_for(f"{TM}/response/pause", after=after)
    assert reply.json()["transaction"] == "spoof"
    assert reply.correlation_data == b"x"
    assert app.matching(f"{TM}/state", is_json(transaction="spoof"), after=after) == []


async def test_two_treadmills_are_independent(mqtt_broker: EmbeddedBroker) -> None:
    tm01, tm02 = RecordingTreadmill("tm01"), RecordingTreadmill("tm02")
    async with (
        running_bridge(mqtt_broker, {"tm01": tm01, "tm02": tm02}),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BASE}/+/response/#")
        await app.request(f"{BASE}/tm02/request/emergency_stop", transaction="e2")
        await app.request(f"{BASE}/tm01/request/start", {"profile": "hill_30"}, transaction="s1")
    assert tm01.names() == ["start_profile"]
    assert tm02.names() == ["emergency_stop"]
    assert tm01.snapshot().phase is Phase.RUNNING


async def test_a_command_sent_the_moment_the_bridge_says_online_is_carried_out(
    mqtt_broker: EmbeddedBroker,
) -> None:
    # Dashboards and scripts wait for `bridge/state online` and then send at once: by then the
    # bridge must already be subscribed, or that first command is silently lost.
    treadmill = RecordingTreadmill("tm01")
    async with Observer(mqtt_broker) as app:
        await app.subscribe(f"{BRIDGE}/state")
        async with running_bridge_unready(mqtt_broker, {"tm01": treadmill}):
            await app.wait_for(f"{BRIDGE}/state", where=lambda m: m.text == "online")
            await app.publish(f"{TM}/set", {"command": "pause"})
            async with asyncio.timeout(10):
                await treadmill.call_recorded.wait()
    assert treadmill.calls == [("pause", ())]


async def test_commands_for_an_unknown_treadmill_get_an_error_listing_the_known_ones(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmills = {"tm01": RecordingTreadmill("tm01"), "tm02": RecordingTreadmill("tm02")}
    async with running_bridge(mqtt_broker, treadmills), Observer(mqtt_broker) as app:
        await app.subscribe(f"{BASE}/tm99/#", f"{TM}/response/#")
        reply = await app.request(f"{BASE}/tm99/request/start", {"profile": "hill_30"})
        after = app.mark()
        await app.publish(f"{BASE}/tm99/set", {"command": "stop", "transaction": "s1"})
        from_set = (await app.wait_for(f"{BASE}/tm99/event", after=after)).json()
        after = app.mark()
        await app.publish(f"{BASE}/tm99/set/speed_kmh", "3.5")
        from_plain = (await app.wait_for(f"{BASE}/tm99/event", after=after)).json()
        # Still answered once the typo is fixed.
        fixed = await app.request(f"{TM}/request/state", transaction="ok")
    assert reply["status"] == "error"
    assert reply["code"] == "unknown_treadmill"
    assert reply["transaction"] == "t1"
    assert reply["treadmills"] == ["tm01", "tm02"]
    assert "no treadmill 'tm99'" in reply["error"]
    assert "tm01, tm02" in reply["error"]
    assert from_set["type"] == "error"
    assert (from_set["code"], from_set["transaction"]) == ("unknown_treadmill", "s1")
    assert from_set["request"] == f"{BASE}/tm99/set"
    assert from_plain["code"] == "unknown_treadmill"
    assert fixed["status"] == "ok"
    assert all(treadmill.calls == [] for treadmill in treadmills.values())


async def test_a_command_for_one_treadmill_runs_once(mqtt_broker: EmbeddedBroker) -> None:
    # Commands are subscribed with wildcards only: a per-treadmill subscription beside them
    # would make a broker deliver each command twice.
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/response/#")
        await app.request(f"{TM}/request/set_speed", {"speed_kmh": 3.0})
        await app.publish(f"{TM}/set/speed_kmh", "3.5")
        await app.publish(f"{TM}/set", {"speed_kmh": 4.0})
        await app.request(f"{TM}/request/state", transaction="last")
        await asyncio.sleep(0.2)
    assert treadmill.calls == [
        ("set_speed", (3.0,)),
        ("set_speed", (3.5,)),
        ("set_speed", (4.0,)),
    ]
