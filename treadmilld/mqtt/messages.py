"""The MQTT messages everything above the link speaks: received, to send, and the goodbye.

Free of aiomqtt types, so the bridge, the listener and the tests never see the client
library (`treadmilld.mqtt.link` converts at its edge).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A received message."""

    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None = None  # MQTT v5 ResponseTopic property
    correlation_data: bytes | None = None  # MQTT v5 CorrelationData property


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to publish (the Will, the goodbye)."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = False


# What the link publishes before a clean disconnect: fixed messages, or a function called at
# that moment (e.g. the final state of each treadmill), whose messages go out in order.
Goodbye = Sequence[OutgoingMessage] | Callable[[], Sequence[OutgoingMessage]]
