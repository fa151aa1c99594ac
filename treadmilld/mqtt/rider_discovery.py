"""Home Assistant MQTT device discovery of a rider: their progress as a device of its own.

A second table beside the treadmills' (treadmilld.mqtt.discovery), with the same device
discovery shape (`device`, `origin`, `components`); sensor options as in
https://www.home-assistant.io/integrations/sensor.mqtt/.
"""

from __future__ import annotations

from typing import Any

from treadmilld.mqtt.discovery_parts import node_id, value_template


def rider_discovery_config(
    *, base_topic: str, bridge_state_topic: str, rider_id: str, version: str
) -> dict[str, Any]:
    """A rider's progress as a Home Assistant device of its own, named by the pseudonymous id
    (never the display name: discovery topics are readable by every dashboard). Its sensors
    read `<base>/riders/<id>/progress`."""
    node = node_id(base_topic, f"riders_{rider_id}")

    def sensor(key: str, label: str, template: str, **options: Any) -> dict[str, Any]:
        return {
            "platform": "sensor",
            "unique_id": f"{node}_{key}",
            "default_entity_id": f"sensor.{node}_{key}",
            "name": label,
            "value_template": template,
            **options,
        }

    sessions = {"state_class": "measurement", "icon": "mdi:calendar-check"}
    return {
        "device": {"identifiers": [node], "name": f"Rider {rider_id}", "model": "treadmilld rider"},
        "origin": {"name": "treadmilld", "sw_version": version},
        "availability": [{"topic": bridge_state_topic}],
        "state_topic": f"{base_topic}/riders/{rider_id}/progress",
        "qos": 1,
        "components": {
            "stage": sensor(
                "stage", "Program stage", value_template("stage"), icon="mdi:stairs-up"
            ),
            "sessions_this_week": sensor(
                "sessions_this_week",
                "Sessions this week",
                value_template("sessions_this_week"),
                **sessions,
            ),
            "weekly_target": sensor(
                "weekly_target", "Weekly target", value_template("weekly_target"), **sessions
            ),
            "streak": sensor(
                "streak",
                "Streak",
                value_template("streak_weeks"),
                unit_of_measurement="wk",
                icon="mdi:fire",
            ),
            "next_profile": sensor(
                "next_profile", "Next profile", value_template("next_profile"), icon="mdi:walk"
            ),
            "last_workout_distance": sensor(
                "last_workout_distance",
                "Last workout distance",
                "{{ value_json.last_workout.distance_m if value_json.last_workout else None }}",
                device_class="distance",
                unit_of_measurement="m",
                suggested_display_precision=0,
            ),
        },
    }
