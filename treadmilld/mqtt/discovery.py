"""Home Assistant MQTT device discovery: one retained config per treadmill.

Device-based discovery (`<prefix>/device/<object_id>/config`) with an `origin` block and a
`components` map; entity ids are suggested with `default_entity_id` (HA 2025.10 deprecated
`object_id`, core PR #151775). Entity mapping and units follow HA's `sensor/const.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from treadmilld.engine.api import BeltState, Phase, Range, SessionSnapshot

# Used until the treadmill reports its Supported Speed/Inclination Range (FTMS 4.11, 4.12);
# discovery is re-announced with the real bounds once they are known.
DEFAULT_SPEED_RANGE = Range(minimum=0.0, maximum=20.0, increment=0.1)
DEFAULT_INCLINE_RANGE = Range(minimum=0.0, maximum=15.0, increment=0.5)

_NOT_SLUG = re.compile(r"[^a-z0-9_]+")


def node_id(base_topic: str, treadmill_id: str) -> str:
    """A discovery object id unique per site: `treadmilld_tm01`, `gym_north_treadmilld_tm01`."""
    return _NOT_SLUG.sub("_", f"{base_topic}_{treadmill_id}".lower()).strip("_")


def discovery_topic(prefix: str, base_topic: str, treadmill_id: str) -> str:
    return f"{prefix}/device/{node_id(base_topic, treadmill_id)}/config"


def _value(field: str) -> str:
    return "{{ value_json." + field + " }}"


def discovery_config(
    *,
    base_topic: str,
    bridge_state_topic: str,
    treadmill_id: str,
    snapshot: SessionSnapshot,
    profiles: Sequence[str],
    version: str,
) -> dict[str, Any]:
    """The device config payload for one treadmill. `bridge_state_topic` is the state of the
    daemon instance serving it: another Pi stopping must not make it unavailable."""
    node = node_id(base_topic, treadmill_id)
    prefix = f"{base_topic}/{treadmill_id}"
    state_topic = f"{prefix}/state"
    set_topic = f"{prefix}/set"
    bridge_state = bridge_state_topic
    speed = snapshot.speed_range or DEFAULT_SPEED_RANGE
    incline = snapshot.incline_range or DEFAULT_INCLINE_RANGE

    def entity(platform: str, key: str, name: str, **options: Any) -> dict[str, Any]:
        return {
            "platform": platform,
            "unique_id": f"{node}_{key}",
            "default_entity_id": f"{platform}.{node}_{key}",
            "name": name,
            **options,
        }

    def sensor(key: str, name: str, field: str, **options: Any) -> dict[str, Any]:
        return entity("sensor", key, name, value_template=_value(field), **options)

    def button(key: str, name: str, command: str, **options: Any) -> dict[str, Any]:
        return entity(
            "button",
            key,
            name,
            command_topic=set_topic,
            payload_press=json.dumps({"command": command}),
            **options,
        )

    components: dict[str, dict[str, Any]] = {
        "speed": sensor(
            "speed",
            "Speed",
            "speed_kmh",
            device_class="speed",
            unit_of_measurement="km/h",
            state_class="measurement",
            suggested_display_precision=1,
        ),
        "incline": sensor(
            "incline",
            "Incline",
            "incline_pct",
            unit_of_measurement="%",
            state_class="measurement",
            icon="mdi:slope-uphill",
        ),
        "distance": sensor(
            "distance",
            "Distance",
            "distance_m",
            device_class="distance",
            unit_of_measurement="m",
            state_class="total_increasing",
        ),
        "elapsed": sensor(
            "elapsed",
            "Elapsed time",
            "elapsed_s",
            device_class="duration",
            unit_of_measurement="s",
        ),
        "calories": sensor(
            "calories",
            "Calories",
            "calories_kcal",
            device_class="energy",
            unit_of_measurement="kcal",
            state_class="total_increasing",
        ),
        "heart_rate": sensor(
            "heart_rate",
            "Heart rate",
            "heart_rate_bpm",
            unit_of_measurement="bpm",
            state_class="measurement",
            icon="mdi:heart-pulse",
        ),
        "phase": sensor(
            "phase",
            "Phase",
            "phase",
            device_class="enum",
            options=[phase.value for phase in Phase],
        ),
        "belt": sensor(
            "belt",
            "Belt",
            "belt",
            device_class="enum",
            options=[belt.value for belt in BeltState],
            icon="mdi:walk",
        ),
        "profile": entity(
            "select",
            "profile",
            "Profile",
            options=list(profiles),
            value_template=_value("selected_profile"),
            command_topic=set_topic,
            command_template='{"profile": "{{ value }}"}',
        ),
        "target_speed": entity(
            "number",
            "target_speed",
            "Target speed",
            device_class="speed",
            unit_of_measurement="km/h",
            min=speed.minimum,
            max=speed.maximum,
            step=speed.increment,
            mode="box",
            value_template=_value("target_speed_kmh"),
            command_topic=set_topic,
            command_template='{"speed_kmh": {{ value }}}',
        ),
        "target_incline": entity(
            "number",
            "target_incline",
            "Target incline",
            unit_of_measurement="%",
            min=incline.minimum,
            max=incline.maximum,
            step=incline.increment,
            mode="slider",
            value_template=_value("target_incline_pct"),
            command_topic=set_topic,
            command_template='{"incline_pct": {{ value }}}',
        ),
        "start": button("start", "Start", "start", icon="mdi:play"),
        "pause": button("pause", "Pause", "pause", icon="mdi:pause"),
        "stop": button("stop", "Stop", "stop", icon="mdi:stop"),
        "emergency_stop": button(
            "emergency_stop", "Emergency stop", "emergency_stop", icon="mdi:alert-octagon"
        ),
        "connected": entity(
            "binary_sensor",
            "connected",
            "Bluetooth connected",
            device_class="connectivity",
            entity_category="diagnostic",
            state_topic=f"{prefix}/availability",
            payload_on="online",
            payload_off="offline",
            # Only the bridge: this entity must be able to show "disconnected".
            availability=[{"topic": bridge_state}],
        ),
    }
    return {
        "device": {
            "identifiers": [node],
            "name": f"Treadmill {treadmill_id}",
            "model": "FTMS treadmill",
            "manufacturer": "treadmilld",
            "sw_version": version,
        },
        "origin": {"name": "treadmilld", "sw_version": version},
        "availability": [
            {"topic": bridge_state},
            {"topic": f"{prefix}/availability"},
        ],
        "availability_mode": "all",
        "state_topic": state_topic,
        "qos": 1,
        "components": components,
    }
