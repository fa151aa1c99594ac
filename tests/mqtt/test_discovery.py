"""Home Assistant device discovery, as HA would receive it from a real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from treadmilld_broker import EmbeddedBroker

from treadmilld.engine import api as engine_api
from treadmilld.engine.api import (
    AbortReason,
    Direction,
    LimitApplied,
    Phase,
    SessionEvent,
    StopOutcome,
    TurnNow,
    WorkoutFinished,
)
from treadmilld.mqtt.discovery import EVENT_TYPES

from .client import INSTANCE, ManualClock, Observer, Received, eventually, running_bridge
from .doubles import DECK, INCLINE_RANGE, SPEED_RANGE, RecordingTreadmill, StaticCatalog
from .home_assistant import (
    COMMON_OPTIONS,
    DEVICE_CLASS_UNITS,
    DEVICE_OPTIONS,
    PLATFORM_OPTIONS,
    REQUIRED_OPTIONS,
    STATE_CLASSES,
    UNKNOWN,
    HomeAssistant,
    compile_template,
    entity_config,
    render,
)

BASE = "treadmilld"
BRIDGE = f"{BASE}/bridge/{INSTANCE}"  # this bridge instance's own topics
CONFIG = "homeassistant/device/treadmilld_tm01/config"


def state_has(**fields: object) -> Callable[[Received], bool]:
    """A `wait_for` condition: a state message with these values."""
    return lambda message: all(message.json().get(k) == v for k, v in fields.items())


async def test_device_config_describes_every_entity(mqtt_broker: EmbeddedBroker) -> None:
    async with (
        running_bridge(
            mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, names={"tm01": "Gym floor 1"}
        ),
        Observer(mqtt_broker) as ha,
    ):
        await ha.subscribe("homeassistant/device/+/config")
        message = await ha.wait_for(CONFIG)
    config: dict[str, Any] = message.json()
    assert message.retain
    assert config["origin"] == {"name": "treadmilld", "sw_version": "9.9.9"}
    # The device as the config names it, with what its Device Information Service told.
    assert config["device"] == {
        "identifiers": ["treadmilld_tm01"],
        "name": "Gym floor 1",
        "connections": [["bluetooth", DECK.address]],
        "manufacturer": "FitShow",
        "model": "T4",
        "serial_number": "SN-0042",
        "hw_version": "HW 1.2",
        "sw_version": "FW 3.4.5",
    }
    # Entities are unavailable unless the bridge AND the treadmill's BLE link are up.
    assert config["availability"] == [
        {"topic": f"{BRIDGE}/state"},
        {"topic": f"{BASE}/tm01/availability"},
    ]
    assert config["availability_mode"] == "all"
    components = config["components"]
    assert {key: c["platform"] for key, c in components.items()} == {
        "speed": "sensor",
        "incline": "sensor",
        "distance": "sensor",
        "distance_forward": "sensor",
        "distance_backward": "sensor",
        "elapsed": "sensor",
        "remaining": "sensor",
        "backward_time": "sensor",
        "progress": "sensor",
        "calories": "sensor",
        "heart_rate": "sensor",
        "heart_rate_zone": "sensor",
        "heart_rate_source": "sensor",
        "phase": "sensor",
        "direction": "sensor",
        "workout": "sensor",
        "segment": "sensor",
        "cue": "sensor",
        "segment_remaining": "sensor",
        "turn_countdown": "sensor",
        "outcome": "sensor",
        "belt": "sensor",
        "profile": "select",
        "body_weight": "number",
        "target_speed": "number",
        "target_incline": "number",
        "start": "button",
        "pause": "button",
        "resume": "button",
        "skip": "button",
        "confirm_turn": "button",
        "stop": "button",
        "emergency_stop": "button",
        "events": "event",
        "connected": "binary_sensor",
    }
    for key, component in components.items():
        assert component["unique_id"] == f"treadmilld_tm01_{key}"
        assert component["default_entity_id"] == f"{component['platform']}.treadmilld_tm01_{key}"
        assert "object_id" not in component  # deprecated by HA 2025.10, removed in 2026.4
    assert components["speed"]["unit_of_measurement"] == "km/h"
    assert components["speed"]["device_class"] == "speed"
    # Calories are no energy meter: no `energy` class (no Energy dashboard, no lightning).
    assert components["calories"]["unit_of_measurement"] == "kcal"
    assert "device_class" not in components["calories"]
    assert components["calories"]["icon"] == "mdi:fire"
    assert components["phase"]["device_class"] == "enum"
    assert components["phase"]["options"] == [phase.value for phase in Phase]
    assert components["direction"]["options"] == ["forward", "backward", "rest"]
    assert components["heart_rate_zone"]["options"] == ["below", "in", "above"]
    assert components["heart_rate_source"]["options"] == ["strap", "treadmill"]
    assert components["heart_rate_source"]["entity_category"] == "diagnostic"
    assert components["outcome"]["options"] == [
        "finished",
        "stopped",
        *(reason.value for reason in AbortReason),
    ]
    # What the belt is measured to do, from the treadmill's own data.
    assert components["belt"]["value_template"] == "{{ value_json.belt }}"
    assert components["belt"]["options"] == ["moving", "standing", "unknown"]
    # Titles, not slugs (StaticCatalog titles "hill_30" as "Hill 30").
    assert components["profile"]["options"] == ["Hill 30", "Retro Intro"]
    body_weight = components["body_weight"]
    assert (body_weight["min"], body_weight["max"], body_weight["mode"]) == (20.0, 300.0, "box")
    assert body_weight["unit_of_measurement"] == "kg"
    assert components["emergency_stop"]["command_topic"] == f"{BASE}/tm01/set"
    assert json.loads(components["emergency_stop"]["payload_press"]) == {
        "command": "emergency_stop"
    }
    # Emergency stop is never withheld: only the shared bridge + link availability.
    assert "availability" not in components["emergency_stop"]
    events = components["events"]
    assert events["state_topic"] == f"{BASE}/tm01/event"
    assert set(events["event_types"]) >= {
        "turn_countdown",
        "turn_now",
        "segment_started",
        "limit_applied",
        "error",
        "workout_aborted",
        "workout_finished",
        "workout_stopped",
    }
    connected = components["connected"]
    assert connected["state_topic"] == f"{BASE}/tm01/availability"
    # Only the bridge gates it, so it can show the treadmill as disconnected.
    assert connected["availability"] == [{"topic": f"{BRIDGE}/state"}]


def check_values(key: str, component: dict[str, Any]) -> None:
    """One component's values against its platform's page."""
    platform = component["platform"]
    device_class = component.get("device_class")
    if device_class is not None:
        units = DEVICE_CLASS_UNITS[platform][device_class]
        if units is None:
            assert "unit_of_measurement" not in component, key
        else:
            assert component["unit_of_measurement"] in units, key
    if device_class == "enum":
        assert "state_class" not in component, key
        assert len(set(component["options"])) == len(component["options"]) > 0
    if "state_class" in component:
        assert component["state_class"] in STATE_CLASSES, key
    if "icon" in component:
        assert component["icon"].startswith("mdi:"), key
    for option, value in component.items():
        if option.endswith("template"):
            compile_template(value)  # a syntax error here is one HA would log
    for source in component.get("availability", []):
        if "value_template" in source:
            compile_template(source["value_template"])
    check_platform_values(key, component)


def check_platform_values(key: str, component: dict[str, Any]) -> None:
    platform = component["platform"]
    if platform == "number":
        assert component["min"] < component["max"], key
        assert component["step"] >= 0.001, key
        assert component["mode"] in ("auto", "box", "slider"), key
    if platform == "button":
        assert isinstance(json.loads(component["payload_press"]), dict), key
    if platform in ("select", "event"):
        listed = component["options" if platform == "select" else "event_types"]
        assert listed, key
        assert all(isinstance(item, str) and item for item in listed), key
        assert len(set(listed)) == len(listed), key


async def test_every_option_is_one_home_assistant_documents(mqtt_broker: EmbeddedBroker) -> None:
    """Field by field against each platform's page (tests/mqtt/home_assistant.py): only
    documented options, the required ones present, device classes with their units, valid
    state classes and templates HA can compile."""
    async with (
        running_bridge(mqtt_broker, {"tm01": RecordingTreadmill("tm01")}),
        Observer(mqtt_broker) as ha,
    ):
        await ha.subscribe(CONFIG)
        config = (await ha.wait_for(CONFIG)).json()
    assert set(config) == {
        "device",
        "origin",
        "availability",
        "availability_mode",
        "state_topic",
        "qos",
        "components",
    }
    assert set(config["device"]) <= DEVICE_OPTIONS
    assert set(config["origin"]) <= {"name", "sw_version", "support_url"}
    platforms_seen = set()
    for key, component in config["components"].items():
        platform = component["platform"]
        platforms_seen.add(platform)
        entity = entity_config(config, key)
        unknown = set(component) - COMMON_OPTIONS - PLATFORM_OPTIONS[platform]
        assert not unknown, f"{key}: options {unknown} are not on the {platform}.mqtt page"
        missing = REQUIRED_OPTIONS[platform] - set(entity)
        assert not missing, f"{key}: required {missing} missing"
        assert entity["availability_mode"] in ("all", "any", "latest")
        for source in entity["availability"]:
            assert set(source) <= {
                "topic",
                "value_template",
                "payload_available",
                "payload_not_available",
            }
        check_values(key, component)
    assert platforms_seen == set(PLATFORM_OPTIONS)


async def test_templates_show_what_the_state_says(mqtt_broker: EmbeddedBroker) -> None:
    """Every value template rendered as HA renders it, against the state as published: a
    null is unknown (targets with nothing driving the belt), segments count from 1."""
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as mqtt:
        ha = await HomeAssistant.discover(mqtt, CONFIG)
        idle = {key: ha.state(key) for key in ha.config["components"]}
        mark = mqtt.mark()
        treadmill.change(
            phase=Phase.RUNNING,
            direction=Direction.BACKWARD,
            profile="retro_intro",
            profile_title="Retro Intro",
            segment_index=2,
            segment_count=9,
            segment_cue="Small steps",
            segment_remaining_s=42.0,
            target_speed_kmh=2.5,
            target_incline_pct=0.0,
            elapsed_s=300.0,
            remaining_s=900.0,
            progress_pct=25.0,
        )
        await mqtt.wait_for(
            f"{BASE}/tm01/state", lambda m: m.json()["phase"] == "running", after=mark
        )
        running = {key: ha.state(key) for key in ha.config["components"]}
        segment_attributes = render(
            ha.entity("segment")["json_attributes_template"],
            mqtt.matching(f"{BASE}/tm01/state")[-1].payload,
        )
    # Idle: nothing drives the belt, so the targets are unknown, not a stale value.
    assert idle["target_speed"] == UNKNOWN
    assert idle["target_incline"] == UNKNOWN
    assert ha.entity("target_speed")["payload_reset"] == UNKNOWN
    for key in ("segment", "cue", "direction", "remaining", "progress", "outcome", "workout"):
        assert idle[key] == UNKNOWN, key
    assert idle["phase"] == "idle"
    assert idle["body_weight"] == "70.0"
    assert idle["connected"] == "online"
    # Running: what a person reads.
    assert running["segment"] == "3 of 9"
    assert json.loads(segment_attributes) == {"cue": "Small steps", "remaining_s": 42}
    assert running["cue"] == "Small steps"
    assert running["direction"] == "backward"
    assert running["workout"] == "Retro Intro"
    assert running["progress"] == "25.0"
    assert running["remaining"] == "900"
    assert running["target_speed"] == "2.5"
    assert running["profile"] == "Retro Intro"  # the running profile, as its title


async def test_controls_from_discovery_drive_the_treadmill(mqtt_broker: EmbeddedBroker) -> None:
    """What HA sends when the user uses the entities, rendered from the config's templates."""
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as mqtt:
        ha = await HomeAssistant.discover(mqtt, CONFIG)
        # The user picks a title; the daemon gets the profile's name.
        await mqtt.publish(*ha.choose("profile", "Hill 30"))
        await mqtt.wait_for(
            f"{BASE}/tm01/state", lambda m: m.json()["selected_profile"] == "hill_30"
        )
        assert ha.state("profile") == "Hill 30"
        await mqtt.publish(*ha.press("start"))
        await mqtt.wait_for(f"{BASE}/tm01/state", lambda m: m.json()["phase"] == "running")
        await mqtt.publish(*ha.choose("target_speed", 3.5))
        await mqtt.wait_for(f"{BASE}/tm01/state", lambda m: m.json()["target_speed_kmh"] == 3.5)
    assert treadmill.calls == [
        ("start_profile", ("hill_30", None, False)),
        ("set_speed", (3.5,)),
    ]


async def test_profile_titles_of_any_spelling_map_back_to_their_names(
    mqtt_broker: EmbeddedBroker,
) -> None:
    """Titles with quotes, non-ASCII letters and a title two profiles share: every option
    selects its own profile, and the select shows the running one."""
    catalog = StaticCatalog(("a", "b", "c", "d"))
    catalog.retitle({"a": 'Rückwärts "leicht"', "b": "Knee {{ OA }}", "c": "Same", "d": "Same"})
    treadmill = RecordingTreadmill("tm01")
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, catalog=catalog),
        Observer(mqtt_broker) as mqtt,
    ):
        ha = await HomeAssistant.discover(mqtt, CONFIG)
        options = ha.entity("profile")["options"]
        assert options == ['Rückwärts "leicht"', "Knee {{ OA }}", "Same (c)", "Same (d)"]
        for option, name in zip(options, "abcd", strict=True):
            mark = mqtt.mark()
            await mqtt.publish(*ha.choose("profile", option))
            await mqtt.wait_for(
                f"{BASE}/tm01/state",
                state_has(selected_profile=name),
                after=mark,
            )
            assert ha.state("profile") == option
        # Running "b" while "d" is selected: the select shows what runs.
        mark = mqtt.mark()
        treadmill.change(phase=Phase.RUNNING, profile="b")
        await mqtt.wait_for(
            f"{BASE}/tm01/state", lambda m: m.json()["phase"] == "running", after=mark
        )
        assert ha.state("profile") == "Knee {{ OA }}"


@pytest.mark.parametrize(
    ("phase", "offered"),
    [
        (Phase.IDLE, {"start", "stop", "emergency_stop"}),
        (Phase.RUNNING, {"pause", "skip", "stop", "emergency_stop"}),
        (Phase.TURNING, {"pause", "stop", "emergency_stop"}),
        (Phase.AWAITING_CONFIRMATION, {"pause", "confirm_turn", "stop", "emergency_stop"}),
        (Phase.RESTING, {"pause", "skip", "stop", "emergency_stop"}),
        (Phase.PAUSED, {"resume", "stop", "emergency_stop"}),
        (Phase.FINISHED, {"start", "stop", "emergency_stop"}),
        (Phase.STOPPED, {"start", "stop", "emergency_stop"}),
        (Phase.ABORTED, {"start", "stop", "emergency_stop"}),
    ],
)
async def test_buttons_are_offered_only_when_they_apply(
    mqtt_broker: EmbeddedBroker, phase: Phase, offered: set[str]
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as mqtt:
        ha = await HomeAssistant.discover(mqtt, CONFIG)
        assert not ha.available("start")  # nothing selected: a bare start has nothing to run
        mark = mqtt.mark()
        await mqtt.publish(*ha.choose("profile", "Hill 30"))
        await mqtt.wait_for(f"{BASE}/tm01/state", state_has(selected_profile="hill_30"), after=mark)
        mark = mqtt.mark()
        treadmill.change(phase=phase)
        if phase is not Phase.IDLE:  # idle is shown already: an unchanged state is not resent
            await mqtt.wait_for(
                f"{BASE}/tm01/state", lambda m: m.json()["phase"] == phase, after=mark
            )
        buttons = [k for k, c in ha.config["components"].items() if c["platform"] == "button"]
        assert {key for key in buttons if ha.available(key)} == offered
        # The link going down takes every button with it, however the state reads.
        mark = mqtt.mark()
        treadmill.change(connection="disconnected")
        await mqtt.wait_for(f"{BASE}/tm01/availability", lambda m: m.text == "offline", after=mark)
        assert not any(ha.available(key) for key in buttons)
        # ... but not the events, which report exactly that kind of moment.
        assert ha.available("events")


async def test_every_button_press_is_a_valid_command(mqtt_broker: EmbeddedBroker) -> None:
    """Each button's payload, exactly as HA sends it, reaches the treadmill as its command
    (none is empty or invalid, which the daemon would refuse)."""
    treadmill = RecordingTreadmill("tm01", stop_outcome=StopOutcome.BELT_STANDING)
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as ha:
        await ha.subscribe(CONFIG, f"{BASE}/tm01/event")
        components = (await ha.wait_for(CONFIG)).json()["components"]
        buttons = {key: c for key, c in components.items() if c["platform"] == "button"}
        await ha.publish(f"{BASE}/tm01/set/profile", "hill_30")  # for the bare start
        for button in buttons.values():
            treadmill.call_recorded.clear()
            await ha.publish(button["command_topic"], button["payload_press"])
            async with asyncio.timeout(10):
                await treadmill.call_recorded.wait()
    assert list(buttons) == [
        "start",
        "pause",
        "resume",
        "skip",
        "confirm_turn",
        "stop",
        "emergency_stop",
    ]
    assert all(json.loads(b["payload_press"]) == {"command": key} for key, b in buttons.items())
    assert treadmill.names() == [
        "start_profile",
        "pause",
        "resume",
        "skip_segment",
        "confirm_turn",
        "stop",
        "emergency_stop",
    ]
    assert ha.matching(f"{BASE}/tm01/event", lambda m: m.json().get("type") == "error") == []


async def test_body_weight_is_set_from_its_number_and_checked(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as mqtt:
        ha = await HomeAssistant.discover(mqtt, CONFIG)
        await mqtt.subscribe(f"{BASE}/tm01/response/+")
        await mqtt.publish(*ha.choose("body_weight", 82.5))
        await mqtt.wait_for(f"{BASE}/tm01/state", lambda m: m.json()["body_weight_kg"] == 82.5)
        assert ha.state("body_weight") == "82.5"
        # The plain field and the request do the same.
        await mqtt.publish(f"{BASE}/tm01/set/body_weight_kg", "79")
        await mqtt.wait_for(f"{BASE}/tm01/state", lambda m: m.json()["body_weight_kg"] == 79)
        reply = await mqtt.request(f"{BASE}/tm01/request/set_body_weight", {"body_weight_kg": 80})
        assert reply["status"] == "ok"
        # Out of range, or not a number: an error event HA's event entity shows; no change.
        for bad in (
            '{"body_weight_kg": 5}',
            '{"body_weight_kg": "heavy"}',
            '{"body_weight_kg": 301}',
        ):
            await mqtt.publish(f"{BASE}/tm01/set", bad)
        await mqtt.publish(f"{BASE}/tm01/set/body_weight_kg", "-4")
        await eventually(lambda: len(mqtt.matching(f"{BASE}/tm01/event")) == 4)
    assert [args for name, args in treadmill.calls] == [(82.5,), (79.0,), (80.0,)]
    events = [m.json() for m in mqtt.matching(f"{BASE}/tm01/event")]
    assert [e["code"] for e in events] == ["invalid_payload"] * 4
    assert all(e["event_type"] == "error" and "body_weight_kg" in e["error"] for e in events)


async def test_discovery_waits_for_the_deck_and_goes_out_once(mqtt_broker: EmbeddedBroker) -> None:
    """No placeholder ranges: the config goes out when the link has read the deck, once, and
    again only when what it describes changes (here: the profile library)."""
    treadmill = RecordingTreadmill("tm01", deck_read=False)
    catalog = StaticCatalog()
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, catalog=catalog),
        Observer(mqtt_broker) as ha,
    ):
        await ha.subscribe(CONFIG, f"{BRIDGE}/devices", f"{BASE}/tm01/state")
        await ha.wait_for(f"{BASE}/tm01/state")
        assert ha.matching(CONFIG) == []
        # The FTMS Supported Speed/Inclination Range and Device Information were just read.
        treadmill.read_deck()
        config = (await ha.wait_for(CONFIG)).json()
        devices = await ha.wait_for(
            f"{BRIDGE}/devices", lambda m: m.json()[0]["speed_range"] is not None
        )
        # Telemetry, phases and a reconnect with the same deck change nothing HA is told.
        for speed in (1.0, 2.0, 3.0):
            treadmill.change(speed_kmh=speed, phase=Phase.RUNNING)
        treadmill.change(connection="disconnected")
        treadmill.change(connection="connected")
        mark = ha.mark()
        await ha.wait_for(
            f"{BASE}/tm01/state", lambda m: m.json()["connection"] == "connected", after=mark
        )
        assert len(ha.matching(CONFIG)) == 1
        # A new profile in the library: HA must offer it.
        catalog.retitle({"hill_30": "Hill thirty"})
        treadmill.change(speed_kmh=3.1)
        again = (await ha.wait_for(CONFIG, after=mark)).json()
    components = config["components"]
    assert components["target_speed"]["min"] == SPEED_RANGE.minimum
    assert components["target_speed"]["max"] == SPEED_RANGE.maximum
    assert components["target_speed"]["step"] == SPEED_RANGE.increment
    assert components["target_incline"]["max"] == INCLINE_RANGE.maximum
    assert devices.json()[0]["speed_range"]["maximum"] == SPEED_RANGE.maximum
    assert again["components"]["profile"]["options"] == ["Hill thirty", "Retro Intro"]


async def test_a_deck_without_incline_gets_no_incline_control(mqtt_broker: EmbeddedBroker) -> None:
    treadmill = RecordingTreadmill("tm01", deck_read=False)
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as ha:
        await ha.subscribe(CONFIG)
        # All zero: how a deck without incline says so (Urevo E1L).
        treadmill.read_deck(incline_range=engine_api.Range(0.0, 0.0, 0.0))
        components = (await ha.wait_for(CONFIG)).json()["components"]
    assert "target_incline" not in components
    assert "target_speed" in components


async def test_every_event_reaches_the_event_entity(mqtt_broker: EmbeddedBroker) -> None:
    """Each event type arrives on the event entity's topic with the `event_type` HA reads, and
    is one the entity lists (HA drops the others)."""
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as mqtt:
        ha = await HomeAssistant.discover(mqtt, CONFIG)
        sent: list[SessionEvent] = [
            TurnNow(treadmill_id="tm01", at=0.0, to_direction=Direction.BACKWARD),
            LimitApplied(
                treadmill_id="tm01", at=0.0, limit="max_speed_kmh", requested=9.0, applied=6.0
            ),
            WorkoutFinished(
                treadmill_id="tm01",
                at=0.0,
                profile="hill_30",
                elapsed_s=1800.0,
                distance_forward_m=1200.0,
                distance_backward_m=400.0,
                calories_kcal=120.0,
            ),
        ]
        for event in sent:
            treadmill.emit(event)
        await mqtt.wait_for(f"{BASE}/tm01/event", lambda m: m.json()["type"] == "workout_finished")
        await mqtt.publish(f"{BASE}/tm01/set", '{"command": "warp"}')  # refused: an error
        await mqtt.wait_for(f"{BASE}/tm01/event", lambda m: m.json()["type"] == "error")
        await mqtt.wait_for(f"{BASE}/tm01/event", lambda m: m.json()["type"] == "workout_finished")
    received = [m.json() for m in mqtt.matching(f"{BASE}/tm01/event")]
    event_types = ha.entity("events")["event_types"]
    assert [e["event_type"] for e in received] == [
        "turn_now",
        "limit_applied",
        "workout_finished",
        "error",
    ]
    assert all(e["event_type"] == e["type"] and e["type"] in event_types for e in received)
    assert received[2]["distance_backward_m"] == 400.0  # attributes of the HA event


def test_the_event_entity_lists_every_event_the_engine_has() -> None:
    """A new SessionEvent type must be added to EVENT_TYPES, or HA would drop it."""

    def subclasses(cls: type[SessionEvent]) -> list[type[SessionEvent]]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    types = {cls.type for cls in subclasses(SessionEvent)} - {"state_changed"}
    assert types <= set(EVENT_TYPES)
    assert {"error", "workout_stopped"} <= set(EVENT_TYPES)


async def test_home_assistant_birth_gets_config_then_state_again(
    mqtt_broker: EmbeddedBroker,
) -> None:
    clock = ManualClock()  # frozen: no heartbeat can be mistaken for the re-announcement
    async with (
        running_bridge(mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, clock=clock),
        Observer(mqtt_broker) as ha,
    ):
        await ha.subscribe(CONFIG, f"{BASE}/tm01/state")
        await ha.wait_for(CONFIG)
        await ha.wait_for(f"{BASE}/tm01/state")
        mark = ha.mark()
        await ha.publish("homeassistant/status", "online")  # HA restarted
        config = await ha.wait_for(CONFIG, after=mark)
        state = await ha.wait_for(f"{BASE}/tm01/state", after=mark)
    # HA needs the config before the state it describes.
    assert ha.received.index(config) < ha.received.index(state)


async def test_home_assistant_going_offline_is_not_a_birth(mqtt_broker: EmbeddedBroker) -> None:
    clock = ManualClock()
    async with (
        running_bridge(mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, clock=clock),
        Observer(mqtt_broker) as ha,
    ):
        await ha.subscribe(CONFIG, f"{BASE}/tm01/state")
        await ha.wait_for(CONFIG)
        mark = ha.mark()
        await ha.publish("homeassistant/status", "offline")
        await ha.publish(f"{BASE}/tm01/get", "")  # sync point: handled after the status
        await ha.wait_for(f"{BASE}/tm01/state", after=mark)
    assert ha.matching(CONFIG, after=mark) == []


@pytest.mark.needs_mosquitto
async def test_discovery_can_be_turned_off(mosquitto_broker: EmbeddedBroker) -> None:
    async with (
        running_bridge(mosquitto_broker, {"tm01": RecordingTreadmill("tm01")}, ha_discovery=False),
        Observer(mosquitto_broker) as ha,
    ):
        # One SUBSCRIBE: mosquitto sends the retained messages filter by filter, in order.
        await ha.subscribe("homeassistant/#", f"{BRIDGE}/state")
        await ha.wait_for(f"{BRIDGE}/state")
    assert ha.matching("homeassistant/#") == []
