"""The topic contract (docs/mqtt.md) as pure functions of the settings: every topic the
daemon publishes to or subscribes to, and which reply topics a client may aim it at. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.discovery import discovery_topic

# A treadmill id is one topic level beside `bridge` and `riders` (`<base>/riders/<id>/...`).
RIDERS_LEVEL = "riders"
_RESERVED_IDS = frozenset({"bridge", RIDERS_LEVEL})
_BAD_ID_CHARS = frozenset("/+#\x00 ")
# MQTT 3.1.1 section 4.7: wildcards and NUL may not appear in a topic name.
_BAD_TOPIC_CHARS = frozenset("+#\x00")
# The single-daemon layout before instances (`<base>/bridge/state` etc.): cleared at start-up
# when it is provably this daemon's own leftover (see `treadmilld.mqtt.fleet`).
LEGACY_BRIDGE_LEAVES = ("state", "info", "devices", "profiles")


def is_valid_treadmill_id(treadmill_id: str) -> bool:
    """Whether the id can be a topic level of its own: `<base>/<id>/...`."""
    return bool(treadmill_id) and not (
        treadmill_id in _RESERVED_IDS or _BAD_ID_CHARS.intersection(treadmill_id)
    )


@dataclass(frozen=True, slots=True)
class Topics:
    """This daemon's topics under its base topic and instance name."""

    base: str
    instance: str
    ha_discovery_prefix: str

    @classmethod
    def of(cls, settings: MqttSettings) -> Topics:
        return cls(settings.base_topic, settings.instance, settings.ha_discovery_prefix)

    def bridge(self, suffix: str) -> str:
        """`<base>/bridge/<instance>/<suffix>`: this daemon's own bridge topics."""
        return f"{self.base}/bridge/{self.instance}/{suffix}"

    def other_bridge(self, instance: str, suffix: str) -> str:
        """Another instance's bridge topic (named in errors and hints)."""
        return f"{self.base}/bridge/{instance}/{suffix}"

    def legacy_bridge(self, leaf: str) -> str:
        return f"{self.base}/bridge/{leaf}"

    def treadmill(self, treadmill_id: str, suffix: str) -> str:
        return f"{self.base}/{treadmill_id}/{suffix}"

    def rider(self, rider_id: str, suffix: str) -> str:
        """`<base>/riders/<rider_id>/<suffix>`: a rider's topics, by pseudonymous id only."""
        return f"{self.base}/{RIDERS_LEVEL}/{rider_id}/{suffix}"

    def rider_discovery(self, rider_id: str) -> str:
        return discovery_topic(self.ha_discovery_prefix, self.base, f"{RIDERS_LEVEL}_{rider_id}")

    def discovery(self, treadmill_id: str) -> str:
        return discovery_topic(self.ha_discovery_prefix, self.base, treadmill_id)

    @property
    def ha_status(self) -> str:
        return f"{self.ha_discovery_prefix}/status"

    def levels(self, topic: str) -> list[str]:
        """A topic's levels below the base topic."""
        return topic.removeprefix(self.base + "/").split("/")

    def subscriptions(self, treadmill_ids: Iterable[str], *, ha_discovery: bool) -> list[str]:
        topics = [
            self.bridge("request/+"),
            # Every instance's retained device list and state: a treadmill id served twice is a
            # misconfiguration two Pis cannot see otherwise, and a command for a treadmill no
            # live instance serves gets an answer.
            f"{self.base}/bridge/+/devices",
            f"{self.base}/bridge/+/state",
            # The old single-daemon layout, state before info (retained messages come in
            # subscription order), to clear our own leftovers once.
            self.legacy_bridge("state"),
            self.legacy_bridge("info"),
        ]
        # Commands for every treadmill id, ours or not, so an unknown id gets an answer. One
        # wildcard each and no per-treadmill filter beside it: overlapping subscriptions may
        # deliver a message once per match (mosquitto does), which would run a command twice.
        # Under a per-Pi ACL the broker delivers only the treadmills this daemon may read.
        topics += [
            f"{self.base}/+/set",
            f"{self.base}/+/set/+",
            f"{self.base}/+/request/+",
        ]
        topics += [self.treadmill(treadmill_id, "get") for treadmill_id in treadmill_ids]
        if ha_discovery:
            topics.append(self.ha_status)
        return topics

    def may_reply_to(self, wanted: str, treadmill_id: str | None) -> bool:
        """Whether a v5 ResponseTopic may be honoured: not one of the topics the daemon owns
        (other than its own reply topics), since the daemon may write where a member may not,
        so a member must not aim replies at a state topic."""
        own_reply_space = [f"{self.bridge('response')}/"]
        if treadmill_id is not None:
            own_reply_space.append(f"{self.treadmill(treadmill_id, 'response')}/")
        daemon_owned = (f"{self.base}/", f"{self.ha_discovery_prefix}/")
        return not _BAD_TOPIC_CHARS.intersection(wanted) and (
            wanted.startswith(tuple(own_reply_space)) or not wanted.startswith(daemon_owned)
        )
