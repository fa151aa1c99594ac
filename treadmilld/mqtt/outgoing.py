"""How the daemon writes what it publishes: compact JSON, and events in the shape Home
Assistant's event entity reads. Pure."""

from __future__ import annotations

import json
from typing import Any

from treadmilld.engine.api import SessionSnapshot


def compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def event_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An event as published: `type`, and the same value as `event_type`, the key Home
    Assistant's event entity reads (https://www.home-assistant.io/integrations/event.mqtt/);
    every other key becomes an attribute of the HA event."""
    kind = payload["type"]
    return {"type": kind, "event_type": kind, **payload}


def availability(snapshot: SessionSnapshot) -> str:
    """`<base>/<id>/availability`: the treadmill's Bluetooth link."""
    return "online" if snapshot.connection == "connected" else "offline"
