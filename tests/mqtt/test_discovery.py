"""Home Assistant device discovery, as HA would receive it from a real broker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from treadmilld.engine.api import Phase, StopOutcome
from treadmilld.mqtt.embedded_broker import EmbeddedBroker

from .client import INSTANCE, ManualClock, Observer, running_bridge
from .doubles import INCLINE_RANGE, SPEED_RANGE, RecordingTreadmill

BASE = "treadmilld"
BRIDGE = f"{BASE}/bridge/{INSTANCE}"  # this bridge instance's own topics
CONFIG = "homeassistant/device/treadmilld_tm01/config"


async def test_device_config_describes_every_entity(mqtt_broker: EmbeddedBroker) -> None:
    async with (
        running_bridge(mqtt_broker, {"tm01": RecordingTreadmill("tm01")}),
        Observer(mqtt_broker) as ha,
    ):
        await ha.subscribe("homeassistant/device/+/config")
        message = await ha.wait_for(CONFIG)
    config: dict[str, Any] = message.json()
    assert message.retain
    assert config["origin"]["name"] == "treadmilld"
    assert config["origin"]["sw_version"] == "9.9.9"
    assert config["device"]["identifiers"] == ["treadmilld_tm01"]
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
        "elapsed": "sensor",
        "calories": "sensor",
        "heart_rate": "sensor",
        "phase": "sensor",
        "belt": "sensor",
        "profile": "select",
        "target_speed": "number",
        "target_incline": "number",
        "start": "button",
        "pause": "button",
        "stop": "button",
        "emergency_stop": "button",
        "connected": "binary_sensor",
    }
    for key, component in components.items():
        assert component["unique_id"] == f"treadmilld_tm01_{key}"
        assert component["default_entity_id"] == f"{component['platform']}.treadmilld_tm01_{key}"
        assert "object_id" not in component  # deprecated by HA 2025.10, removed in 2026.4
    assert components["speed"]["unit_of_measurement"] == "km/h"
    assert components["speed"]["device_class"] == "speed"
    assert components["calories"]["unit_of_measurement"] == "kcal"
    assert components["phase"]["device_class"] == "enum"
    assert components["phase"]["options"] == [phase.value for phase in Phase]
    # What the belt is measured to do, from the treadmill's own data.
    assert components["belt"]["value_template"] == "{{ value_json.belt }}"
    assert components["belt"]["options"] == ["moving", "standing", "unknown"]
    assert components["profile"]["options"] == ["hill_30", "retro_intro"]
    assert components["emergency_stop"]["command_topic"] == f"{BASE}/tm01/set"
    assert json.loads(components["emergency_stop"]["payload_press"]) == {
        "command": "emergency_stop"
    }
    connected = components["connected"]
    assert connected["state_topic"] == f"{BASE}/tm01/availability"
    # Only the bridge gates it, so it can show the treadmill as disconnected.
    assert connected["availability"] == [{"topic": f"{BRIDGE}/state"}]


async def test_controls_from_discovery_drive_the_treadmill(mqtt_broker: EmbeddedBroker) -> None:
    """What HA sends when the user uses the entities, built from the config's own templates."""
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as ha:
        await ha.subscribe(CONFIG, f"{BASE}/tm01/state")
        components = (await ha.wait_for(CONFIG)).json()["components"]
        select = components["profile"]
        await ha.publish(
            select["command_topic"], select["command_template"].replace("{{ value }}", "hill_30")
        )
        await ha.wait_for(f"{BASE}/tm01/state", lambda m: m.json()["selected_profile"] == "hill_30")
        start = components["start"]
        await ha.publish(start["command_topic"], start["payload_press"])
        number = components["target_speed"]
        await ha.publish(
            number["command_topic"], number["command_template"].replace("{{ value }}", "3.5")
        )
        await ha.wait_for(f"{BASE}/tm01/state", lambda m: m.json()["target_speed_kmh"] == 3.5)
    assert treadmill.calls == [
        ("start_profile", ("hill_30", None, False)),
        ("set_speed", (3.5,)),
    ]


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
    assert set(buttons) == {"start", "pause", "stop", "emergency_stop"}
    assert all(json.loads(b["payload_press"]) == {"command": key} for key, b in buttons.items())
    assert treadmill.names() == ["start_profile", "pause", "stop", "emergency_stop"]
    assert ha.matching(f"{BASE}/tm01/event", lambda m: m.json().get("type") == "error") == []


async def test_numbers_follow_the_treadmill_ranges_once_known(
    mqtt_broker: EmbeddedBroker,
) -> None:
    treadmill = RecordingTreadmill("tm01")
    async with running_bridge(mqtt_broker, {"tm01": treadmill}), Observer(mqtt_broker) as ha:
        await ha.subscribe(CONFIG, f"{BRIDGE}/devices")
        before = (await ha.wait_for(CONFIG)).json()["components"]
        after_mark = ha.mark()
        # The FTMS Supported Speed/Inclination Range characteristics were just read.
        treadmill.change(speed_range=SPEED_RANGE, incline_range=INCLINE_RANGE)
        after = (await ha.wait_for(CONFIG, after=after_mark)).json()["components"]
        devices = await ha.wait_for(
            f"{BRIDGE}/devices", lambda m: m.json()[0]["speed_range"] is not None
        )
    assert (before["target_speed"]["min"], before["target_speed"]["max"]) == (0.0, 20.0)
    assert after["target_speed"]["min"] == SPEED_RANGE.minimum
    assert after["target_speed"]["max"] == SPEED_RANGE.maximum
    assert after["target_speed"]["step"] == SPEED_RANGE.increment
    assert after["target_incline"]["max"] == INCLINE_RANGE.maximum
    assert devices.json()[0]["speed_range"]["maximum"] == SPEED_RANGE.maximum


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
