"""Home Assistant MQTT device discovery: one retained config per treadmill.

A rider's progress device is in treadmilld.mqtt.rider_discovery (`rider_discovery_config`,
importable from here too); the object ids and field templates both use are in
treadmilld.mqtt.discovery_parts.

Device-based discovery (`<prefix>/device/<object_id>/config`) with an `origin` block and a
`components` map; entity ids are suggested with `default_entity_id` (HA 2025.10 deprecated
`object_id`, core PR #151775). Entity mapping and units follow HA's `sensor/const.py`.
Options of each platform: https://www.home-assistant.io/integrations/<platform>.mqtt/
(button, event, number, select, sensor, binary_sensor); device discovery and shared options:
https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload.

Templates are Jinja as Home Assistant renders them: a value that renders as `None` is HA's
"unknown" (`PAYLOAD_NONE`, and the number platform's default `payload_reset`).

Over 450 lines on purpose: `discovery_config` is one declarative table of every entity a
treadmill offers; read in one place, it shows at a glance what Home Assistant gets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from treadmilld.engine.api import (
    MAX_BODY_WEIGHT_KG,
    MIN_BODY_WEIGHT_KG,
    AbortReason,
    BeltState,
    DeviceInfo,
    Direction,
    HeartRateSource,
    Phase,
    ProfileSummary,
    Range,
    SessionSnapshot,
    ZonePosition,
)
from treadmilld.mqtt.discovery_parts import node_id, value_template
from treadmilld.mqtt.rider_discovery import rider_discovery_config

# Phases with a workout under way (the select shows the running profile, not the selection).
_ACTIVE = [
    phase.value
    for phase in (
        Phase.RUNNING,
        Phase.TURNING,
        Phase.AWAITING_CONFIRMATION,
        Phase.RESTING,
        Phase.PAUSED,
    )
]
_PAUSABLE = [phase for phase in _ACTIVE if phase != Phase.PAUSED.value]
# When each control applies (a Jinja condition on the state); elsewhere its button is
# unavailable, so HA never offers a press the daemon would refuse.
_APPLIES = {
    # A bare start runs the selection: without one it could only be refused.
    "start": f"value_json.phase not in {_ACTIVE} and value_json.selected_profile",
    "pause": f"value_json.phase in {_PAUSABLE}",
    "resume": f"value_json.phase == '{Phase.PAUSED.value}'",
    # A turn is never cut short (WorkoutSession.skip_segment refuses it).
    "skip": f"value_json.phase in {[Phase.RUNNING.value, Phase.RESTING.value]}",
    "confirm_turn": f"value_json.phase == '{Phase.AWAITING_CONFIRMATION.value}'",
}

# Every `type` published on `<base>/<id>/event`: HA's event entity drops a type not listed
# in `event_types` (https://www.home-assistant.io/integrations/event.mqtt/). The engine's
# SessionEvent types, `workout_stopped` (a user stop's summary) and the bridge's `error`.
EVENT_TYPES: tuple[str, ...] = (
    "workout_started",
    "segment_started",
    "turn_countdown",
    "turn_now",
    "turn_confirmation_needed",
    "workout_paused",
    "workout_resumed",
    "segment_skipped",
    "limit_applied",
    "heart_rate_ceiling",
    "heart_rate_missing",
    "workout_finished",
    "workout_stopped",
    "workout_aborted",
    "stop_confirmed",
    "stop_unconfirmed",
    "error",
)

# What ended the last workout (`outcome` in the state).
OUTCOMES: tuple[str, ...] = ("finished", "stopped", *(reason.value for reason in AbortReason))


def discovery_topic(prefix: str, base_topic: str, treadmill_id: str) -> str:
    return f"{prefix}/device/{node_id(base_topic, treadmill_id)}/config"


def _jinja_literal(mapping: dict[str, str]) -> str:
    """A dict literal for a template. JSON's string escapes (`\\"`, `\\u00e9`) are
    Jinja's too, so any title survives."""
    return json.dumps(mapping, sort_keys=True)


def profile_options(profiles: Sequence[ProfileSummary]) -> dict[str, str]:
    """The select's options: each profile's title (what a person reads), mapped to its name.
    Options must be unique, so a title two profiles share gets the name added."""
    titles = [summary.title for summary in profiles]
    options: dict[str, str] = {}
    for summary in profiles:
        title = summary.title
        if titles.count(title) > 1 or title in options:
            title = f"{title} ({summary.name})"
        options[title] = summary.name
    return options


def _device(name: str, node: str, info: DeviceInfo) -> dict[str, Any]:
    """The device registry entry (https://www.home-assistant.io/integrations/mqtt/, "device"):
    the configured name, the Bluetooth address as a connection (HA's `bluetooth` connection
    type) and what the deck's Device Information Service told, where it did."""
    device: dict[str, Any] = {
        "identifiers": [node],
        "name": name,
        "connections": [["bluetooth", info.address]],
        "model": info.model or "FTMS treadmill",
    }
    optional = {
        "manufacturer": info.manufacturer,
        "serial_number": info.serial_number,
        "hw_version": info.hardware_revision,
        "sw_version": info.firmware_revision or info.software_revision,
    }
    device.update({key: value for key, value in optional.items() if value})
    return device


def discovery_config(
    *,
    base_topic: str,
    bridge_state_topic: str,
    treadmill_id: str,
    name: str,
    device: DeviceInfo,
    snapshot: SessionSnapshot,
    profiles: Sequence[ProfileSummary],
    version: str,
) -> dict[str, Any]:
    """The device config payload for one treadmill, once its link has read the deck
    (`device`, and the speed and incline ranges in `snapshot`). `bridge_state_topic` is the
    state of the daemon instance serving it: another Pi stopping must not make it
    unavailable."""
    node = node_id(base_topic, treadmill_id)
    prefix = f"{base_topic}/{treadmill_id}"
    state_topic = f"{prefix}/state"
    set_topic = f"{prefix}/set"
    bridge_availability = {"topic": bridge_state_topic}
    treadmill_availability = {"topic": f"{prefix}/availability"}

    def entity(platform: str, key: str, label: str, **options: Any) -> dict[str, Any]:
        return {
            "platform": platform,
            "unique_id": f"{node}_{key}",
            "default_entity_id": f"{platform}.{node}_{key}",
            "name": label,
            **options,
        }

    def sensor(key: str, label: str, template: str, **options: Any) -> dict[str, Any]:
        return entity("sensor", key, label, value_template=template, **options)

    def seconds(key: str, label: str, field: str, **options: Any) -> dict[str, Any]:
        return sensor(
            key,
            label,
            value_template(field),
            device_class="duration",
            unit_of_measurement="s",
            suggested_display_precision=0,
            **options,
        )

    def metres(key: str, label: str, field: str, **options: Any) -> dict[str, Any]:
        return sensor(
            key,
            label,
            value_template(field),
            device_class="distance",
            unit_of_measurement="m",
            state_class="total_increasing",
            suggested_display_precision=0,
            **options,
        )

    def button(key: str, label: str, command: str, **options: Any) -> dict[str, Any]:
        applies = _APPLIES.get(command)
        if applies is not None:
            # A component's own `availability` replaces the device's shared one (shared
            # options are inherited only where the component sets none: HA's
            # mqtt/discovery.py `_merge_common_device_options`), so the bridge and the link
            # are listed again beside the state condition.
            options["availability"] = [
                bridge_availability,
                treadmill_availability,
                {
                    "topic": state_topic,
                    "value_template": "{{ 'online' if " + applies + " else 'offline' }}",
                },
            ]
            options["availability_mode"] = "all"
        return entity(
            "button",
            key,
            label,
            command_topic=set_topic,
            payload_press=json.dumps({"command": command}),
            **options,
        )

    options = profile_options(profiles)
    titles = {slug: title for title, slug in options.items()}
    shown_profile = (
        "{% set titles = " + _jinja_literal(titles) + " %}"
        "{% set p = value_json.profile if value_json.phase in "
        + str(_ACTIVE)
        + " else value_json.selected_profile %}"
        "{{ titles[p] if p in titles else None }}"
    )
    components: dict[str, dict[str, Any]] = {
        "speed": sensor(
            "speed",
            "Speed",
            value_template("speed_kmh"),
            device_class="speed",
            unit_of_measurement="km/h",
            state_class="measurement",
            suggested_display_precision=1,
        ),
        "incline": sensor(
            "incline",
            "Incline",
            value_template("incline_pct"),
            unit_of_measurement="%",
            state_class="measurement",
            icon="mdi:slope-uphill",
        ),
        "distance": metres("distance", "Distance", "distance_m"),
        "distance_forward": metres(
            "distance_forward", "Distance forward", "distance_forward_m", icon="mdi:arrow-up"
        ),
        "distance_backward": metres(
            "distance_backward", "Distance backward", "distance_backward_m", icon="mdi:arrow-down"
        ),
        "elapsed": seconds("elapsed", "Elapsed time", "elapsed_s"),
        "remaining": seconds("remaining", "Time remaining", "remaining_s", icon="mdi:timer-sand"),
        "backward_time": seconds(
            "backward_time", "Backward time", "backward_s", icon="mdi:history"
        ),
        "progress": sensor(
            "progress",
            "Progress",
            value_template("progress_pct"),
            unit_of_measurement="%",
            suggested_display_precision=0,
            icon="mdi:progress-clock",
        ),
        # Not the `energy` device class: that one is for the Energy dashboard (kWh meters).
        "calories": sensor(
            "calories",
            "Calories",
            value_template("calories_kcal"),
            unit_of_measurement="kcal",
            state_class="total_increasing",
            suggested_display_precision=0,
            icon="mdi:fire",
        ),
        "heart_rate": sensor(
            "heart_rate",
            "Heart rate",
            value_template("heart_rate_bpm"),
            unit_of_measurement="bpm",
            state_class="measurement",
            icon="mdi:heart-pulse",
        ),
        # Where the heart rate lies against a heart-rate-guided walk's zone (None elsewhere).
        "heart_rate_zone": sensor(
            "heart_rate_zone",
            "Heart rate zone",
            value_template("heart_rate_zone"),
            device_class="enum",
            options=[position.value for position in ZonePosition],
            icon="mdi:heart-settings",
        ),
        # Whose heart rate counts now: a strap's while fresh, else the treadmill's own field
        # (None: none valid). Says whether the strap is heard before a workout needs it.
        "heart_rate_source": sensor(
            "heart_rate_source",
            "Heart rate source",
            value_template("heart_rate_source"),
            device_class="enum",
            options=[source.value for source in HeartRateSource],
            entity_category="diagnostic",
            icon="mdi:heart-cog",
        ),
        "phase": sensor(
            "phase",
            "Phase",
            value_template("phase"),
            device_class="enum",
            options=[phase.value for phase in Phase],
        ),
        "direction": sensor(
            "direction",
            "Direction",
            value_template("direction"),
            device_class="enum",
            options=[direction.value for direction in Direction],
            icon="mdi:swap-vertical",
        ),
        "workout": sensor(
            "workout", "Workout", value_template("profile_title"), icon="mdi:format-list-numbered"
        ),
        "segment": sensor(
            "segment",
            "Segment",
            "{% if value_json.segment_index is none %}None{% else %}"
            "{{ value_json.segment_index + 1 }} of {{ value_json.segment_count }}{% endif %}",
            json_attributes_topic=state_topic,
            json_attributes_template=(
                '{{ {"cue": value_json.segment_cue, '
                '"remaining_s": value_json.segment_remaining_s} | to_json }}'
            ),
            icon="mdi:counter",
        ),
        "cue": sensor("cue", "Cue", value_template("segment_cue"), icon="mdi:bullhorn"),
        "segment_remaining": seconds(
            "segment_remaining", "Segment time left", "segment_remaining_s", icon="mdi:timer"
        ),
        "turn_countdown": seconds(
            "turn_countdown", "Turn countdown", "turn_countdown_s", icon="mdi:timer-alert"
        ),
        "outcome": sensor(
            "outcome",
            "Last result",
            value_template("outcome"),
            device_class="enum",
            options=list(OUTCOMES),
            icon="mdi:flag-checkered",
        ),
        "belt": sensor(
            "belt",
            "Belt",
            value_template("belt"),
            device_class="enum",
            options=[belt.value for belt in BeltState],
            icon="mdi:walk",
        ),
        "profile": entity(
            "select",
            "profile",
            "Profile",
            options=list(options),
            value_template=shown_profile,
            command_topic=set_topic,
            # HA sends the option (a title); the wire takes the profile's name.
            command_template=(
                "{% set names = " + _jinja_literal(options) + " %}"
                '{"profile": {{ names[value] | to_json }}}'
            ),
            icon="mdi:format-list-bulleted",
        ),
        "body_weight": entity(
            "number",
            "body_weight",
            "Body weight",
            device_class="weight",
            unit_of_measurement="kg",
            min=MIN_BODY_WEIGHT_KG,
            max=MAX_BODY_WEIGHT_KG,
            step=0.5,
            mode="box",
            value_template=value_template("body_weight_kg"),
            command_topic=set_topic,
            command_template='{"body_weight_kg": {{ value }}}',
            entity_category="config",
        ),
        "start": button("start", "Start", "start", icon="mdi:play"),
        "pause": button("pause", "Pause", "pause", icon="mdi:pause"),
        "resume": button("resume", "Resume", "resume", icon="mdi:play-pause"),
        "skip": button("skip", "Skip segment", "skip", icon="mdi:skip-next"),
        "confirm_turn": button(
            "confirm_turn", "Confirm turn", "confirm_turn", icon="mdi:check-circle"
        ),
        "stop": button("stop", "Stop", "stop", icon="mdi:stop"),
        # Always offered while the bridge and the link are up: stopping always applies.
        "emergency_stop": button(
            "emergency_stop", "Emergency stop", "emergency_stop", icon="mdi:alert-octagon"
        ),
        "events": entity(
            "event",
            "events",
            "Events",
            state_topic=f"{prefix}/event",
            event_types=list(EVENT_TYPES),
            icon="mdi:bell-ring",
            # The bridge only: a lost link's `workout_aborted` and a `not_connected` refusal
            # come exactly while the link is down, and must still reach HA.
            availability=[bridge_availability],
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
            availability=[bridge_availability],
        ),
    }
    speed = snapshot.speed_range
    if speed is not None:
        components["target_speed"] = _target_number(
            entity("number", "target_speed", "Target speed", device_class="speed"),
            speed,
            unit="km/h",
            field="target_speed_kmh",
            command="speed_kmh",
            set_topic=set_topic,
            mode="box",
        )
    incline = snapshot.incline_range
    # An all-zero range is how a deck without incline says so: nothing to control.
    if incline is not None and incline.maximum > incline.minimum:
        components["target_incline"] = _target_number(
            entity("number", "target_incline", "Target incline", icon="mdi:slope-uphill"),
            incline,
            unit="%",
            field="target_incline_pct",
            command="incline_pct",
            set_topic=set_topic,
            mode="slider",
        )
    return {
        "device": _device(name, node, device),
        "origin": {"name": "treadmilld", "sw_version": version},
        "availability": [bridge_availability, treadmill_availability],
        "availability_mode": "all",
        "state_topic": state_topic,
        "qos": 1,
        "components": components,
    }


def _target_number(
    component: dict[str, Any],
    bounds: Range,
    *,
    unit: str,
    field: str,
    command: str,
    set_topic: str,
    mode: str,
) -> dict[str, Any]:
    """A setpoint bounded by the deck's own range. With nothing driving the belt the state
    has `null` there, rendered `None`: the number's `payload_reset` (its default, spelt out
    here), which HA shows as unknown rather than the last target."""
    return {
        **component,
        "unit_of_measurement": unit,
        "min": bounds.minimum,
        "max": bounds.maximum,
        "step": bounds.increment,
        "mode": mode,
        "value_template": value_template(field),
        "payload_reset": "None",
        "command_topic": set_topic,
        "command_template": '{"' + command + '": {{ value }}}',
    }


__all__ = [
    "EVENT_TYPES",
    "OUTCOMES",
    "discovery_config",
    "discovery_topic",
    "node_id",
    "profile_options",
    "rider_discovery_config",
]
