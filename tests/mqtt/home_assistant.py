"""What Home Assistant makes of our discovery config: its documented options per platform, its
shared-option inheritance, its templates (Jinja, as HA renders them) and its availability
rules. Each rule cites the HA page or source it follows, so a test failing here means HA would
see the same thing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from .client import WAIT_S, Observer, Received

# Options every MQTT entity takes (https://www.home-assistant.io/integrations/mqtt/,
# "availability", "device", and each platform page's common entries).
COMMON_OPTIONS = frozenset(
    {
        "platform",
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "default_entity_id",
        "enabled_by_default",
        "encoding",
        "entity_category",
        "entity_picture",
        "icon",
        "json_attributes_template",
        "json_attributes_topic",
        "name",
        "payload_available",
        "payload_not_available",
        "qos",
        "unique_id",
    }
)
# Each platform's own options, from its page https://www.home-assistant.io/integrations/
# <platform>.mqtt/ ("Configuration variables").
PLATFORM_OPTIONS: dict[str, frozenset[str]] = {
    "button": frozenset(
        {"command_template", "command_topic", "device_class", "payload_press", "retain"}
    ),
    "event": frozenset({"device_class", "event_types", "state_topic", "value_template"}),
    "number": frozenset(
        {
            "command_template",
            "command_topic",
            "device_class",
            "max",
            "min",
            "mode",
            "optimistic",
            "payload_reset",
            "retain",
            "state_topic",
            "step",
            "unit_of_measurement",
            "value_template",
        }
    ),
    "select": frozenset(
        {
            "command_template",
            "command_topic",
            "optimistic",
            "options",
            "retain",
            "state_topic",
            "value_template",
        }
    ),
    "sensor": frozenset(
        {
            "device_class",
            "expire_after",
            "force_update",
            "last_reset_value_template",
            "options",
            "suggested_display_precision",
            "state_class",
            "state_topic",
            "unit_of_measurement",
            "value_template",
        }
    ),
    "binary_sensor": frozenset(
        {
            "device_class",
            "expire_after",
            "force_update",
            "off_delay",
            "payload_off",
            "payload_on",
            "state_topic",
            "value_template",
        }
    ),
}
# Required on each page (after the device's shared options are inherited).
REQUIRED_OPTIONS: dict[str, frozenset[str]] = {
    "button": frozenset({"command_topic"}),
    "event": frozenset({"state_topic", "event_types"}),
    "number": frozenset({"command_topic"}),
    "select": frozenset({"command_topic", "options"}),
    "sensor": frozenset({"state_topic"}),
    "binary_sensor": frozenset({"state_topic"}),
}
# The device classes each platform documents that we use, with the units HA accepts for
# them (https://www.home-assistant.io/integrations/sensor/#device-class, .../number/).
DEVICE_CLASS_UNITS: dict[str, dict[str, frozenset[str] | None]] = {
    "sensor": {
        "speed": frozenset(
            {"km/h", "m/s", "mph", "ft/s", "in/h", "in/s", "kn", "mm/d", "mm/h", "mm/s"}
        ),
        "distance": frozenset({"km", "m", "cm", "mm", "mi", "nmi", "yd", "in", "ft"}),
        "duration": frozenset({"d", "h", "min", "s", "ms", "µs"}),
        "weight": frozenset({"kg", "g", "mg", "µg", "oz", "lb", "st"}),
        "enum": None,  # no unit at all
    },
    "number": {
        "speed": frozenset(
            {"km/h", "m/s", "mph", "ft/s", "in/h", "in/s", "kn", "mm/d", "mm/h", "mm/s"}
        ),
        "weight": frozenset({"kg", "g", "mg", "µg", "oz", "lb", "st"}),
    },
    "binary_sensor": {"connectivity": None},
    "button": {},
    "event": {},
}
# The device block (https://www.home-assistant.io/integrations/mqtt/, "device").
DEVICE_OPTIONS = frozenset(
    {
        "configuration_url",
        "connections",
        "hw_version",
        "identifiers",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "serial_number",
        "suggested_area",
        "sw_version",
        "via_device",
    }
)
STATE_CLASSES = frozenset({"measurement", "measurement_angle", "total", "total_increasing"})
# Inherited from the device config unless the component sets them itself (HA's
# mqtt/discovery.py `_merge_common_device_options`, SHARED_OPTIONS).
SHARED_OPTIONS = (
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "command_topic",
    "encoding",
    "payload_available",
    "payload_not_available",
    "state_topic",
    "qos",
)
# What a template rendering `None` means to HA: unknown (mqtt/const.py PAYLOAD_NONE).
UNKNOWN = "None"

_jinja = ImmutableSandboxedEnvironment()
# HA's own JSON filter (https://www.home-assistant.io/docs/configuration/templating/,
# "To/From JSON"), which our templates use rather than Jinja's HTML-escaping `tojson`.
_jinja.filters["to_json"] = lambda value: json.dumps(value, ensure_ascii=False)


def render(template: str, payload: bytes | str, **variables: Any) -> str:
    """A template as HA's MqttValueTemplate renders it: `value` is the payload text and
    `value_json` its JSON, when it is JSON."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    context: dict[str, Any] = {"value": text, **variables}
    with contextlib.suppress(ValueError):
        context["value_json"] = json.loads(text)
    return str(_jinja.from_string(template).render(**context))


def compile_template(template: str) -> None:
    """Raise if HA could not parse `template`."""
    _jinja.parse(template)


def entity_config(device_config: Mapping[str, Any], key: str) -> dict[str, Any]:
    """One component as HA sets it up: its own options plus the shared ones it does not set."""
    component = dict(device_config["components"][key])
    for option in SHARED_OPTIONS:
        if option in device_config and option not in component:
            component[option] = device_config[option]
    return component


@dataclass
class HomeAssistant:
    """Reads what an `Observer` subscribed to the treadmill's topics received, as HA would."""

    observer: Observer
    config: dict[str, Any]

    @classmethod
    async def discover(
        cls, observer: Observer, config_topic: str, *, within_s: float = WAIT_S
    ) -> HomeAssistant:
        """Subscribe like HA (the device config, then every topic it names: state, events,
        availability) and wait until the config and each retained topic are in."""
        await observer.subscribe(config_topic)
        config = (await observer.wait_for(config_topic, within_s=within_s)).json()
        topics = {config["state_topic"], *(a["topic"] for a in config["availability"])}
        for component in config["components"].values():
            topics.add(component.get("state_topic", config["state_topic"]))
        await observer.subscribe(*sorted(topics))
        retained = topics - {t for t in topics if t.endswith("/event")}
        for topic in sorted(retained):
            await observer.wait_for(topic, within_s=within_s)
        return cls(observer, config)

    def entity(self, key: str) -> dict[str, Any]:
        return entity_config(self.config, key)

    def last(self, topic: str) -> Received | None:
        found = self.observer.matching(topic)
        return found[-1] if found else None

    def state(self, key: str) -> str | None:
        """The entity's state from the last message on its state topic: the rendered value
        (`None` is HA's unknown), or None if nothing arrived yet."""
        entity = self.entity(key)
        message = self.last(entity["state_topic"])
        if message is None:
            return None
        template = entity.get("value_template")
        return message.text if template is None else render(template, message.payload)

    def available(self, key: str) -> bool:
        """HA's availability: each listed topic's last payload (through its value_template)
        against `payload_available`, combined by `availability_mode` (default `latest`)."""
        entity = self.entity(key)
        verdicts: list[tuple[int, bool]] = []
        for source in entity.get("availability", []):
            message = self.last(source["topic"])
            if message is None:
                verdicts.append((-1, False))
                continue
            template = source.get("value_template")
            value = message.text if template is None else render(template, message.payload)
            index = self.observer.received.index(message)
            verdicts.append((index, value == source.get("payload_available", "online")))
        mode = entity.get("availability_mode", "latest")
        if not verdicts:
            return True
        if mode == "all":
            return all(ok for _, ok in verdicts)
        if mode == "any":
            return any(ok for _, ok in verdicts)
        return max(verdicts)[1]

    def press(self, key: str) -> tuple[str, str]:
        """What pressing a button publishes: (topic, payload)."""
        entity = self.entity(key)
        assert entity["platform"] == "button"
        assert self.available(key), f"{key} is not available in HA; no press would be sent"
        return entity["command_topic"], entity["payload_press"]

    def choose(self, key: str, value: str | float) -> tuple[str, str]:
        """What setting a select or number publishes: its command_template rendered with the
        chosen option or value."""
        entity = self.entity(key)
        assert entity["platform"] in ("select", "number")
        if entity["platform"] == "select":
            assert value in entity["options"], f"{value!r} is not an option of {key}"
        template = entity.get("command_template")
        text = str(value)
        payload = text if template is None else render(template, text, value=value)
        return entity["command_topic"], payload
