"""The other daemons on this broker and base topic (a gym's Pis), as their retained bridge
topics show them.

Each daemon owns `<base>/bridge/<instance>/...` and its own treadmills' `<base>/<id>/...`.
This one reads the other instances' retained `devices` and `state` to warn about a treadmill
id served twice, and to answer a command for a treadmill no live instance serves (by one
instance only). It also clears the single-daemon bridge topics of a version before instances,
when they are provably its own leftovers.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import structlog

from treadmilld.mqtt.config import RESERVED_INSTANCE_NAMES
from treadmilld.mqtt.link import MqttLink
from treadmilld.mqtt.messages import IncomingMessage
from treadmilld.mqtt.payloads import transaction_of
from treadmilld.mqtt.replies import Replies, Route
from treadmilld.mqtt.topics import LEGACY_BRIDGE_LEAVES, Topics

_log = structlog.get_logger(__name__)


class Fleet:
    """What this daemon knows of the other instances, and what it does about them."""

    def __init__(
        self, topics: Topics, own_treadmills: Collection[str], link: MqttLink, replies: Replies
    ) -> None:
        self._topics = topics
        self._instance = topics.instance
        self._ours = frozenset(own_treadmills)
        self._link = link
        self._replies = replies
        # (other instance, treadmill id) pairs already warned about, so a republished
        # `devices` does not repeat the warning.
        self._duplicates_warned: set[tuple[str, str]] = set()
        # The other instances on this base topic, from their retained `bridge/<instance>/...`:
        # the treadmills each announces and whether it is up. A command for a treadmill this
        # daemon does not serve is left to a live instance that does (see `unknown_treadmill`).
        self._devices: dict[str, frozenset[str]] = {}
        self._online: dict[str, bool] = {}
        self._legacy_state: bytes | None = None

    def on_state(self, instance: str, message: IncomingMessage) -> None:
        """`<base>/bridge/<instance>/state`."""
        if instance == self._instance or instance in RESERVED_INSTANCE_NAMES:
            return
        self._online[instance] = message.payload.strip() == b"online"

    def on_devices(self, instance: str, message: IncomingMessage) -> None:
        """Note which treadmills another instance serves, and warn when it announces a
        treadmill id this one serves: both would publish to and take commands from the same
        `<base>/<id>/...` topics."""
        if instance == self._instance or instance in RESERVED_INSTANCE_NAMES:
            return  # ours, or an old daemon's `bridge/response/devices` reply
        try:
            devices = json.loads(message.payload) if message.payload.strip() else []
            theirs = {str(device["id"]) for device in devices if isinstance(device, dict)}
        except (ValueError, TypeError, KeyError):
            _log.debug("mqtt_fleet_devices_unreadable", instance=instance)
            return
        self._devices[instance] = frozenset(theirs)
        base = self._topics.base
        for treadmill_id in sorted(theirs & self._ours):
            if (instance, treadmill_id) in self._duplicates_warned:
                continue
            self._duplicates_warned.add((instance, treadmill_id))
            _log.warning(
                "mqtt_duplicate_treadmill_id",
                treadmill_id=treadmill_id,
                instance=self._instance,
                other_instance=instance,
                hint=f"instance {instance!r} also announces treadmill {treadmill_id!r} under "
                f"base topic {base!r}: both daemons would answer its commands. Give each "
                "treadmill a fleet-wide unique id; if that instance is retired, clear its "
                "retained topics (mosquitto_pub -r -n -t "
                f"{self._topics.other_bridge(instance, 'devices')}, "
                "and the same for state, info and profiles)",
            )
        # Forget pairs it no longer announces, so a later duplicate is reported again.
        self._duplicates_warned = {
            (other, treadmill_id)
            for other, treadmill_id in self._duplicates_warned
            if other != instance or treadmill_id in theirs
        }

    async def unknown_treadmill(
        self, treadmill_id: str, levels: list[str], message: IncomingMessage
    ) -> None:
        """A command or request for a treadmill this daemon does not serve. Left to another
        live instance that serves it (it answers); otherwise answered with an error, by one
        instance only: of the live ones on this base topic, the first by name."""
        owners = sorted(i for i, ids in self._devices.items() if treadmill_id in ids)
        live_owners = [owner for owner in owners if self._online.get(owner)]
        live_others = [i for i, online in self._online.items() if online]
        if live_owners or min([self._instance, *live_others]) != self._instance:
            _log.debug("mqtt_message_left_to_fleet", topic=message.topic, owners=live_owners)
            return
        if message.retain:
            # A leftover on the broker, not a sender waiting: answering it at every reconnect
            # of every Pi would only be noise.
            _log.debug("mqtt_retained_message_ignored", topic=message.topic)
            return
        is_request = levels[1] == "request" and len(levels) == 3
        plain_set = levels[1] == "set" and len(levels) == 3
        route = Route.of(
            message,
            treadmill_id=treadmill_id,
            reply_topic=(
                self._topics.treadmill(treadmill_id, f"response/{levels[2]}")
                if is_request
                else None
            ),
            transaction=None if plain_set else transaction_of(message.payload),
        )
        known = sorted({*self._ours, *(t for i in live_others for t in self._devices.get(i, ()))})
        base = self._topics.base
        if owners:
            code = "treadmill_offline"
            error = (
                f"treadmill {treadmill_id!r} is served by instance {owners[0]!r}, which is "
                f"offline ({self._topics.other_bridge(owners[0], 'state')}); nothing was done: "
                "check that daemon (systemctl status treadmilld on its Pi)"
            )
        else:
            code = "unknown_treadmill"
            error = (
                f"no treadmill {treadmill_id!r} under base topic {base!r}; nothing was "
                f"done. Known treadmills: {', '.join(known) or 'none'}; fix the id in the topic"
            )
        _log.info(
            "mqtt_unknown_treadmill", treadmill_id=treadmill_id, topic=message.topic, code=code
        )
        await self._replies.refuse(route, code, error, treadmills=known)

    def on_legacy_state(self, message: IncomingMessage) -> None:
        """`<base>/bridge/state` of the single-daemon layout (it arrives before `info`)."""
        self._legacy_state = message.payload

    async def on_legacy_info(self, message: IncomingMessage) -> None:
        """Clear the retained single-daemon bridge topics (`<base>/bridge/state|info|devices|
        profiles`) if they are this daemon's own, left by a version before instances.

        Ours means: replayed from the broker's store (retain flag set: no daemon of that
        version is publishing it right now), listing only treadmills this daemon serves, and
        with no `online` retained beside it. Anything else belongs to another daemon (an older
        version on another Pi) and is left alone: clearing it would mark that Pi's treadmills
        unknown in every dashboard still reading the old layout."""
        if not message.retain or not message.payload.strip():
            return
        try:
            info = json.loads(message.payload)
            listed = {str(item) for item in info["treadmills"]}
        except (ValueError, TypeError, KeyError):
            _log.debug("mqtt_legacy_bridge_info_unreadable")
            return
        ours = bool(listed) and listed <= self._ours
        if not ours or self._legacy_state == b"online":
            _log.info(
                "mqtt_legacy_bridge_topics_left",
                topic=self._topics.legacy_bridge("info"),
                treadmills=sorted(listed),
                state=(self._legacy_state or b"").decode(errors="replace") or None,
                hint="another daemon (an older treadmilld) still uses the shared bridge topics; "
                "upgrade it, or clear them by hand with mosquitto_pub -r -n once it is gone",
            )
            return
        for leaf in LEGACY_BRIDGE_LEAVES:
            await self._link.publish(self._topics.legacy_bridge(leaf), "", qos=1, retain=True)
        self._legacy_state = None
        _log.info(
            "mqtt_legacy_bridge_topics_cleared",
            topics=[self._topics.legacy_bridge(leaf) for leaf in LEGACY_BRIDGE_LEAVES],
            replaced_by=self._topics.bridge("#"),
        )
