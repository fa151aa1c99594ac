"""When the MQTT link reconnects, and what a run of drops says about the client id.

`treadmilld.mqtt.link` notices how each connection ended and asks here how long to wait
before the next attempt, and whether the drops look like another client using our client id.
No client library here: the link hands over what it found as plain values.
"""

from __future__ import annotations

import random

import structlog

from treadmilld.mqtt.broker_hints import duplicate_client_id_hint
from treadmilld.mqtt.config import MqttSettings
from treadmilld.runtime.backoff import Backoff
from treadmilld.runtime.clock import Clock, LoopClock

_log = structlog.get_logger(__name__)

# MQTT 5 DISCONNECT reason code 0x8E, Session taken over: another client connected with our
# client id (MQTT 5.0 section 3.14.2.1).
SESSION_TAKEN_OVER = 0x8E
# This many connections in a row that the broker closed soon after accepting them (no failed
# connect in between) is the mark of two clients sharing one client id: each CONNECT makes
# the broker drop the other (MQTT 3.1.1 section 3.1.4; on 3.1.1, and from mosquitto 2.0.11
# even on v5, the old connection is just closed, with no reason given).
TAKEOVER_PATTERN_DROPS = 3
# While the pattern lasts, say so again every this many drops (not on every flap).
TAKEOVER_REPEAT_EVERY = 10


class ReconnectPolicy:
    """The reconnect delay (capped, jittered backoff) and the client-id takeover watch of one
    link."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        # Real time (the loop's clock) by default: the broker's timeouts do not follow a
        # demo's speed-up.
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._connected_at: float | None = None
        # Jitter spreads a gym's daemons out so a restarted broker is not hit all at once.
        self._backoff = Backoff(
            initial_s=settings.reconnect_initial_s,
            maximum_s=settings.reconnect_max_s,
            jitter=(0.5, 1.0),
            rng=rng,
        )
        self._failures = 0  # losses since the last connection that counted as stable
        self._quick_drops = 0  # broker drops in a row soon after a successful connect

    def connecting(self) -> None:
        """A connect attempt begins."""
        self._connected_at = None

    def connected(self) -> None:
        """The broker accepted the connection."""
        self._connected_at = self.clock.now()

    def after_loss(
        self,
        *,
        was_online: bool,
        error: str,
        dropped_by_broker: bool,
        reason_code: int | None,
        connect_hint: str,
    ) -> float:
        """Log how the attempt or connection ended and what to check; the delay before the
        next attempt.

        `dropped_by_broker`: an established connection was closed (not a failed connect), with
        MQTT `reason_code` if one was given; `connect_hint`: what to fix when the connect
        itself failed, from the link's reading of the client library's error."""
        # How long the connection lasted; None if it never got established.
        held_s = None if self._connected_at is None else self.clock.now() - self._connected_at
        delay = self.next_delay(held_s)
        if self.takeover_suspected(
            dropped_by_broker=dropped_by_broker, reason_code=reason_code, held_s=held_s
        ):
            hint = duplicate_client_id_hint(self._settings)
        elif dropped_by_broker:
            hint = (
                "the broker or the network closed the connection; reconnecting. If this "
                "repeats right after every connect, another client uses client_id "
                f"{self._settings.client_id!r}"
            )
        else:
            hint = connect_hint
        _log.warning(
            "mqtt_connection_lost" if was_online else "mqtt_connect_failed",
            broker=self._settings.url,
            error=error,
            retry_in_s=round(delay, 2),
            held_s=None if held_s is None else round(held_s, 2),
            hint=hint,
        )
        return delay

    def next_delay(self, held_s: float | None) -> float:
        """How long to wait before the next attempt, after a connection that lasted `held_s`
        (None: it never got established)."""
        if held_s is not None and held_s > self._settings.reconnect_max_s:
            # Only a connection that outlived the longest backoff resets it: two clients
            # fighting over one client id drop each other within one backoff delay, and
            # resetting there would make them flap several times a second.
            self._failures = 0
        delay = self._backoff.delay(self._failures)
        self._failures += 1
        return delay

    def takeover_suspected(
        self, *, dropped_by_broker: bool, reason_code: int | None, held_s: float | None
    ) -> bool:
        """Track broker drops soon after connecting; True while they look like another client
        using our client id (and log that, once per streak and then now and then).

        `dropped_by_broker`: an established connection was closed (not a failed connect);
        `reason_code`: the MQTT reason it was closed with, if any."""
        settings = self._settings
        taken_over = dropped_by_broker and reason_code == SESSION_TAKEN_OVER
        quick = dropped_by_broker and held_s is not None and held_s <= settings.reconnect_max_s
        if taken_over:
            self._quick_drops = max(self._quick_drops + 1, TAKEOVER_PATTERN_DROPS)
        elif quick:
            self._quick_drops += 1
        else:
            self._quick_drops = 0  # a failed connect or a long-lived connection: not that
        beyond = self._quick_drops - TAKEOVER_PATTERN_DROPS
        if beyond < 0:
            return False
        if beyond % TAKEOVER_REPEAT_EVERY == 0:
            _log.error(
                "mqtt_client_id_in_use",
                broker=settings.url,
                client_id=settings.client_id,
                instance=settings.instance,
                reason="session taken over (MQTT reason code 0x8E)"
                if taken_over
                else f"the broker closed {self._quick_drops} connections in a row right after "
                "accepting them",
                hint=duplicate_client_id_hint(settings),
            )
        return True
