"""The goodbye: what the link publishes before a clean DISCONNECT.

A graceful DISCONNECT, unlike a dropped connection, does not fire the Will (MQTT 3.1.1
section 3.14.4), so the `offline` state and the like are published explicitly, bounded in
time so a shutdown never hangs on a slow broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from treadmilld.mqtt.messages import Goodbye, OutgoingMessage

_log = structlog.get_logger(__name__)

# Bound on the goodbye publishes during a clean stop, so shutdown never hangs.
GOODBYE_TIMEOUT_S = 2.0

# Publishes one message if connected; True once the broker has acknowledged it.
Publish = Callable[[OutgoingMessage], Awaitable[bool]]


def goodbye_messages(goodbye: Goodbye, *, will: OutgoingMessage) -> Sequence[OutgoingMessage]:
    """The messages to say goodbye with now; the Will's message if `goodbye` fails."""
    if not callable(goodbye):
        return goodbye
    try:
        return goodbye()
    except Exception:  # noqa: BLE001 - logged with its traceback below
        # Never leave without a word: the graceful DISCONNECT suppresses the Will.
        _log.exception("mqtt_goodbye_failed", hint="publishing the Will's message instead")
        return [will]


async def say_goodbye(
    messages: Sequence[OutgoingMessage], publish: Publish, *, broker: str
) -> None:
    """Publish `messages` before the graceful DISCONNECT, waiting at most `GOODBYE_TIMEOUT_S`.

    All messages are handed to the client at once, in order (each publish task reaches the
    client before the next starts, so the broker receives them in this order), and their
    acknowledgements are awaited together: one slow round trip cannot hold back the last
    message, which is usually the bridge's `offline`.
    """
    publishes = [asyncio.ensure_future(publish(message)) for message in messages]
    if not publishes:
        return
    _, late = await asyncio.wait(publishes, timeout=GOODBYE_TIMEOUT_S)
    if late:
        _log.warning(
            "mqtt_goodbye_timed_out",
            broker=broker,
            unacknowledged=len(late),
            hint="the broker may keep stale retained state; check the broker's load",
        )
        for task in late:
            task.cancel()
