"""Everything the bridge publishes of its own accord: each treadmill's state, availability,
events and Home Assistant discovery, and this instance's bridge topics (info, devices,
profiles, bridge events, and the goodbye of a clean stop).

Two sides that never meet on the network:

- per treadmill, a *follower* reads the controller's events. It never touches the network:
  it marks state changed and queues events, so a slow or absent broker can never hold up the
  engine;
- per broker connection, the *publish loop* sends what is due: state on change,
  rate-limited, and a heartbeat; events at once; discovery when what it is built from
  changes.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from treadmilld.engine.api import ProfileCatalog, StateChanged, TreadmillController
from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.discovery import discovery_config
from treadmilld.mqtt.link import MqttLink
from treadmilld.mqtt.messages import OutgoingMessage
from treadmilld.mqtt.outgoing import availability, compact_json, event_payload
from treadmilld.mqtt.payloads import (
    BRIDGE_REQUEST_MODELS,
    COMMAND_NAMES,
    PLAIN_SET_FIELDS,
    TREADMILL_REQUESTS,
)
from treadmilld.mqtt.state import display_state
from treadmilld.mqtt.topics import Topics
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import sleep_until_set

_log = structlog.get_logger(__name__)

# Events produced while the broker is away are dropped beyond this many (they are not
# retained; the retained state says where things stand when the broker returns).
EVENT_BACKLOG = 256


@dataclass(slots=True)
class _Published:
    """What this connection has told the broker about one treadmill (reset on every
    connect)."""

    dirty: bool = True
    last_state_at: float | None = None
    # The last state published, as JSON without `ts`: a change that does not show in the
    # rounded payload is not published (only the heartbeat repeats it).
    last_state_body: str | None = None
    availability: str | None = None
    # The ranges last in `bridge/<instance>/devices`, and what the last discovery config was
    # built from: discovery is sent again only when that changes.
    devices_ranges: tuple[object, object] | None = None
    announced: tuple[object, ...] | None = None


class Publisher:
    """Publishes state, events, discovery and the bridge topics over one `MqttLink`."""

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        settings: MqttSettings,
        catalog: ProfileCatalog,
        controllers: Mapping[str, TreadmillController],
        *,
        names: Mapping[str, str],
        version: str,
        clock: Clock,
        wall_time: Callable[[], float],
        selected_profile: Callable[[str], str | None],
        offline: OutgoingMessage,
    ) -> None:
        """`names`: each treadmill's display name for Home Assistant; `selected_profile`:
        a treadmill's selected profile, shown in its state; `offline`: the bridge's `offline`
        (the Will), the goodbye's last word."""
        self._link = link
        self._topics = topics
        self._settings = settings
        self._catalog = catalog
        self._controllers = controllers
        self._names = names
        self._version = version
        self._clock = clock
        self._wall_time = wall_time
        self._selected_profile = selected_profile
        self._published = {treadmill_id: _Published() for treadmill_id in controllers}
        self._events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=EVENT_BACKLOG)
        self._wake = asyncio.Event()
        # The profile list as last published (retained), to re-announce only on a change.
        self._published_profiles: list[dict[str, Any]] | None = None
        self._offline = offline

    # -- engine side: never waits on the network -----------------------------------------

    async def follow(self, treadmill_id: str) -> None:
        """The follower of one treadmill's controller: runs for the bridge's lifetime."""
        async for event in self._controllers[treadmill_id].events():
            if isinstance(event, StateChanged):
                self._published[treadmill_id].dirty = True
            else:
                self._events.append((treadmill_id, event_payload(event.payload())))
            self._wake.set()

    def state_changed(self, treadmill_id: str) -> None:
        """Something in the treadmill's state changed outside its controller (a selection)."""
        self._published[treadmill_id].dirty = True
        self._wake.set()

    # -- payloads -------------------------------------------------------------------------

    def profiles(self) -> list[dict[str, Any]]:
        profiles = []
        for summary in self._catalog.summaries():
            entry = asdict(summary)
            entry["sources"] = list(summary.sources)
            profiles.append(entry)
        return profiles

    def devices(self) -> list[dict[str, Any]]:
        devices = []
        for treadmill_id, controller in self._controllers.items():
            snapshot = controller.snapshot()
            devices.append(
                {
                    "id": treadmill_id,
                    "connection": snapshot.connection,
                    "availability": availability(snapshot),
                    "speed_range": asdict(snapshot.speed_range) if snapshot.speed_range else None,
                    "incline_range": (
                        asdict(snapshot.incline_range) if snapshot.incline_range else None
                    ),
                    "state_topic": self._topics.treadmill(treadmill_id, "state"),
                }
            )
        return devices

    def _state_body(self, treadmill_id: str) -> dict[str, Any]:
        """The state payload without `ts`, rounded for display (mqtt/state.py)."""
        state = display_state(self._controllers[treadmill_id].snapshot())
        state["selected_profile"] = self._selected_profile(treadmill_id)
        return state

    def state_payload(self, treadmill_id: str) -> dict[str, Any]:
        return self._stamped(self._state_body(treadmill_id))

    def _stamped(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "ts": round(self._wall_time(), 3)}

    def goodbye(self) -> list[OutgoingMessage]:
        """What a clean stop publishes, in this order: events not yet sent (the shutdown's
        `workout_aborted`, `stop_confirmed`), each treadmill's final state (retained, QoS 1,
        so the last retained state is the one after the shutdown), each availability
        `offline` (the daemon no longer speaks for the treadmill), then bridge `offline`."""
        topics = self._topics
        messages = [
            OutgoingMessage(topics.treadmill(treadmill_id, "event"), compact_json(payload), qos=1)
            for treadmill_id, payload in self._events
        ]
        self._events.clear()
        for treadmill_id in self._controllers:
            try:
                state = compact_json(self.state_payload(treadmill_id))
            except Exception:  # noqa: BLE001 - a bug, logged; the offline messages still go out
                _log.exception("mqtt_final_state_failed", treadmill_id=treadmill_id)
            else:
                messages.append(
                    OutgoingMessage(
                        topics.treadmill(treadmill_id, "state"), state, qos=1, retain=True
                    )
                )
            messages.append(
                OutgoingMessage(
                    topics.treadmill(treadmill_id, "availability"), "offline", qos=1, retain=True
                )
            )
        messages.append(self._offline)
        return messages

    # -- broker side ----------------------------------------------------------------------

    def new_connection(self) -> None:
        """Forget what the last connection published: everything goes out again."""
        self._events.clear()  # events from the outage are old news; state says the rest
        for treadmill_id in self._controllers:
            self._published[treadmill_id] = _Published()

    async def publish_bridge_info(self) -> None:
        settings = self._settings
        info = {
            "version": self._version,
            "base_topic": self._topics.base,
            "instance": self._topics.instance,
            "protocol": settings.protocol,
            "ha_discovery": {
                "enabled": settings.ha_discovery,
                "prefix": settings.ha_discovery_prefix,
            },
            "treadmills": list(self._controllers),
            "commands": list(COMMAND_NAMES),
            "set_fields": list(PLAIN_SET_FIELDS),
            "requests": sorted(TREADMILL_REQUESTS),
            "bridge_requests": sorted(BRIDGE_REQUEST_MODELS),
            "max_command_age_s": settings.max_command_age_s,
        }
        await self._link.publish(
            self._topics.bridge("info"), compact_json(info), qos=1, retain=True
        )
        await self._publish_devices()
        await self._publish_profiles(self.profiles())

    async def publish_online(self) -> None:
        await self._link.publish(self._topics.bridge("state"), "online", qos=1, retain=True)

    async def _publish_devices(self) -> None:
        await self._link.publish(
            self._topics.bridge("devices"), compact_json(self.devices()), qos=1, retain=True
        )

    async def _publish_profiles(self, profiles: list[dict[str, Any]]) -> None:
        self._published_profiles = profiles
        await self._link.publish(
            self._topics.bridge("profiles"), compact_json(profiles), qos=1, retain=True
        )

    async def profiles_changed(self) -> None:
        """Republish `bridge/<instance>/profiles` and every treadmill's discovery if the
        profile list (names, titles, totals, ...) differs from what was published."""
        profiles = self.profiles()
        if profiles == self._published_profiles:
            return
        _log.info("mqtt_profiles_republished", profiles=[entry["name"] for entry in profiles])
        await self._publish_profiles(profiles)
        for treadmill_id in self._controllers:
            await self._announce_discovery(treadmill_id)

    async def home_assistant_online(self) -> None:
        _log.info("mqtt_home_assistant_online")
        for treadmill_id in self._controllers:
            await self._announce_discovery(treadmill_id)
            # HA wants state after config: republish now, rate limit or not.
            await self.publish_state(treadmill_id)

    async def publish_state(self, treadmill_id: str, body: dict[str, Any] | None = None) -> None:
        if body is None:
            body = self._state_body(treadmill_id)
        published = self._published[treadmill_id]
        published.dirty = False
        published.last_state_at = self._clock.now()
        published.last_state_body = compact_json(body)
        # QoS 0: telemetry, superseded a moment later; retained so late subscribers see it.
        await self._link.publish(
            self._topics.treadmill(treadmill_id, "state"),
            compact_json(self._stamped(body)),
            qos=0,
            retain=True,
        )

    def _discovery_inputs(self, treadmill_id: str) -> tuple[object, ...] | None:
        """What the treadmill's discovery config is built from; None until its link has read
        the deck (Device Information, Supported Speed/Inclination Range), so the config goes
        out once, with the real ranges, never with a placeholder first."""
        controller = self._controllers[treadmill_id]
        device = controller.device_info()
        if device is None:
            return None
        snapshot = controller.snapshot()
        profiles = tuple((summary.name, summary.title) for summary in self._catalog.summaries())
        return (device, snapshot.speed_range, snapshot.incline_range, profiles)

    async def _announce_discovery(self, treadmill_id: str) -> None:
        """Publish the discovery config if the deck has been read (else it follows once it
        has, from the publish loop)."""
        controller = self._controllers[treadmill_id]
        inputs = self._discovery_inputs(treadmill_id)
        device = controller.device_info()
        if inputs is None or device is None or not self._settings.ha_discovery:
            return
        self._published[treadmill_id].announced = inputs
        config = discovery_config(
            base_topic=self._topics.base,
            bridge_state_topic=self._topics.bridge("state"),
            treadmill_id=treadmill_id,
            name=self._names[treadmill_id],
            device=device,
            snapshot=controller.snapshot(),
            profiles=self._catalog.summaries(),
            version=self._version,
        )
        _log.info("mqtt_discovery_announced", treadmill_id=treadmill_id)
        await self._link.publish(
            self._topics.discovery(treadmill_id), compact_json(config), qos=1, retain=True
        )

    async def publish_loop(self) -> None:
        """Runs for one connection."""
        while True:
            next_due = await self.publish_pass()
            if not self._wake.is_set():
                await self._sleep_until_woken(next_due - self._clock.now())

    async def publish_pass(self) -> float:
        """Publish whatever is due; returns the clock time of the next deadline."""
        self._wake.clear()
        next_due = math.inf
        devices_changed = False
        for treadmill_id in self._controllers:
            changed, due = await self._publish_treadmill(treadmill_id)
            devices_changed = devices_changed or changed
            next_due = min(next_due, due)
        if devices_changed:
            await self._publish_devices()
        while self._events:
            treadmill_id, payload = self._events.popleft()
            await self._link.publish(
                self._topics.treadmill(treadmill_id, "event"), compact_json(payload), qos=1
            )
        return next_due

    async def _publish_treadmill(self, treadmill_id: str) -> tuple[bool, float]:
        """Availability, discovery and state for one treadmill, as far as due. Returns
        (whether bridge/devices needs republishing, next deadline)."""
        settings = self._settings
        published = self._published[treadmill_id]
        snapshot = self._controllers[treadmill_id].snapshot()
        devices_changed = False
        now_available = availability(snapshot)
        if now_available != published.availability:
            previous = published.availability
            published.availability = now_available
            await self._link.publish(
                self._topics.treadmill(treadmill_id, "availability"),
                now_available,
                qos=1,
                retain=True,
            )
            if previous is not None:
                devices_changed = True
                kind = "connected" if now_available == "online" else "disconnected"
                await self._publish_bridge_event(f"treadmill_{kind}", {"id": treadmill_id})
        ranges = (snapshot.speed_range, snapshot.incline_range)
        if ranges != published.devices_ranges:
            # `devices` went out with this connection's bridge info; again once they change.
            devices_changed = devices_changed or published.devices_ranges is not None
            published.devices_ranges = ranges
        if settings.ha_discovery:
            inputs = self._discovery_inputs(treadmill_id)
            if inputs is not None and inputs != published.announced:
                await self._announce_discovery(treadmill_id)
        now = self._clock.now()
        last = published.last_state_at
        next_due = math.inf
        if last is None or now - last >= settings.heartbeat_interval_s:
            await self.publish_state(treadmill_id)
        elif published.dirty:
            # The engine says something changed (it does on every Treadmill Data record, idle
            # or not); publish only if the rounded payload shows it, and at most every
            # `state_min_interval_s` (changes in between are coalesced).
            body = self._state_body(treadmill_id)
            if compact_json(body) == published.last_state_body:
                published.dirty = False
            elif now - last >= settings.state_min_interval_s:
                await self.publish_state(treadmill_id, body)
            else:
                next_due = last + settings.state_min_interval_s
        if published.last_state_at is not None:
            next_due = min(next_due, published.last_state_at + settings.heartbeat_interval_s)
        return devices_changed, next_due

    async def _sleep_until_woken(self, delay_s: float) -> None:
        await sleep_until_set(self._wake, delay_s if delay_s < math.inf else 3600, self._clock)

    async def _publish_bridge_event(self, kind: str, data: dict[str, Any]) -> None:
        await self._link.publish(
            self._topics.bridge("event"), compact_json({"type": kind, "data": data}), qos=1
        )
