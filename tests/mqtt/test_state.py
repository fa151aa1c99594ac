"""The state topic is honest and economical: rounded for display, published when something a
person could see changed, and otherwise only by the heartbeat (docs/mqtt.md)."""

from __future__ import annotations

from typing import Any

from treadmilld_broker import EmbeddedBroker

from treadmilld.engine.api import Phase, SegmentSkipped

from .client import ManualClock, Observer, Received, running_bridge
from .doubles import RecordingTreadmill
from .test_bridge import TM, is_json


def without_ts(message: Received) -> dict[str, Any]:
    body = message.json()
    assert isinstance(body, dict)
    body.pop("ts")
    return body


async def settled(app: Observer, treadmill: RecordingTreadmill, index: int) -> int:
    """An event through the bridge, as a sync point: the bridge has looked at every state
    change made before it (state is handled before events in each publish pass). Returns the
    mark after it."""
    treadmill.emit(SegmentSkipped(treadmill_id="tm01", at=0.0, index=index))
    await app.wait_for(f"{TM}/event", is_json(type="segment_skipped", index=index))
    return app.mark()


async def test_state_is_rounded_to_what_a_display_needs(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as app:
        await app.subscribe(f"{TM}/state", f"{TM}/response/+")
        await app.wait_for(f"{TM}/state")
        # What the engine integrates and measures, at full precision.
        treadmill.change(
            phase=Phase.RUNNING,
            speed_kmh=2.987,
            target_speed_kmh=3.0000000004,
            incline_pct=-0.04,
            target_incline_pct=1.25001,
            distance_m=632.7906451800551,
            distance_forward_m=530.3006451800551,
            distance_backward_m=102.49,
            elapsed_s=479.99999999,
            remaining_s=1019.2,
            segment_remaining_s=0.3,
            backward_s=150.7,
            calories_kcal=31.4567,
            progress_pct=32.04999,
            body_weight_kg=75.04,
        )
        published = await app.wait_for(f"{TM}/state", is_json(phase="running"))
        reply = await app.request(f"{TM}/request/state")
    state = published.json()
    assert (state["speed_kmh"], state["target_speed_kmh"]) == (3.0, 3.0)
    assert (state["incline_pct"], state["target_incline_pct"]) == (0.0, 1.3)
    assert b"-0.0" not in published.payload  # a level belt is not "minus zero"
    assert (state["distance_m"], state["distance_forward_m"], state["distance_backward_m"]) == (
        633,
        530,
        102,
    )
    # Time done as a stopwatch shows it, time left as a countdown does.
    assert (state["elapsed_s"], state["backward_s"]) == (480, 150)
    assert (state["remaining_s"], state["segment_remaining_s"]) == (1020, 1)
    assert (state["calories_kcal"], state["progress_pct"], state["body_weight_kg"]) == (
        31.5,
        32.0,
        75.0,
    )
    # The state request answers with the same rounded payload.
    assert {k: v for k, v in reply["data"].items() if k != "ts"} == without_ts(published)


async def test_an_idle_treadmill_is_republished_only_by_its_heartbeat(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    clock = ManualClock()
    async with (
        running_bridge(
            mqtt_broker,
            {"tm01": treadmill},
            clock=clock,
            state_min_interval_s=1.0,
            heartbeat_interval_s=30.0,
        ),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{TM}/state", f"{TM}/event")
        first = await app.wait_for(f"{TM}/state")
        after = await settled(app, treadmill, 0)
        for second in range(1, 30):
            await clock.advance(1.0)
            # What an idle deck reports every second: the belt at 0, give or take a reading.
            treadmill.change(
                speed_kmh=(0.0, 0.01, 0.03)[second % 3], incline_pct=(0.0, 0.04)[second % 2]
            )
            await settled(app, treadmill, second)
        assert app.matching(f"{TM}/state", after=after) == []
        await clock.advance(1.0)
        beat = await app.wait_for(f"{TM}/state", after=after)
        after_beat = await settled(app, treadmill, 30)
        # Something a person would see is published, in its slot a second after the beat.
        treadmill.change(speed_kmh=0.6)
        await clock.advance(1.0)
        moved = await app.wait_for(f"{TM}/state", after=after_beat)
    assert without_ts(beat) == without_ts(first)
    assert moved.json()["speed_kmh"] == 0.6


async def test_events_and_replies_are_not_held_back_by_the_state_interval(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    clock = ManualClock()  # frozen: the state interval never passes by itself
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, clock=clock, state_min_interval_s=1.0),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{TM}/state", f"{TM}/event", f"{TM}/response/+")
        await app.wait_for(f"{TM}/state")
        after = app.mark()
        treadmill.change(phase=Phase.RUNNING, speed_kmh=1.0)
        # The state waits for its slot; the event and the reply do not.
        await settled(app, treadmill, 1)
        reply = await app.request(f"{TM}/request/pause", {})
        assert reply["status"] == "ok"
        assert app.matching(f"{TM}/state", after=after) == []
        await clock.advance(1.0)
        state = await app.wait_for(f"{TM}/state", after=after)
    assert state.json()["phase"] == "paused"  # the latest, coalesced
