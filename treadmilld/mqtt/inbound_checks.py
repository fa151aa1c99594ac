"""Checks every incoming command takes before anything runs, besides its payload model
(treadmilld.mqtt.payloads): never a retained command, never a stale or future-dated one.
Pure: each raises `PayloadError` with the code the reply carries.
"""

from __future__ import annotations

from treadmilld.mqtt.messages import IncomingMessage
from treadmilld.mqtt.payloads import PayloadError


def refuse_retained(message: IncomingMessage) -> None:
    """Raise `PayloadError` for a retained command."""
    if message.retain:
        # A retained command would fire again on every resubscribe (MQTT 3.1.1 §3.3.1.3:
        # live deliveries carry retain=0, so retain=1 means a replay from the broker).
        raise PayloadError(
            "retained_command",
            "commands must not be retained: they would replay on every reconnect; "
            "publish without the retain flag, and clear the retained one by publishing "
            "an empty retained message to this topic (it is refused as empty_payload, "
            "which is expected)",
        )


def check_age(sent_age_s: float | None, *, limit_s: float, urgent: bool) -> None:
    """Raise `PayloadError` for a command stamped more than `limit_s` ago or ahead."""
    if sent_age_s is None or urgent:
        # An emergency stop is never refused for its age: stopping is always safe.
        return
    if sent_age_s > limit_s:
        raise PayloadError(
            "stale_command",
            f"command is {sent_age_s:.1f} s old (limit {limit_s:g} s); send it again, and "
            "check the sender's clock if this repeats",
        )
    if sent_age_s < -limit_s:
        raise PayloadError(
            "timestamp_in_future",
            f"command ts is {-sent_age_s:.1f} s in the future; fix the sender's clock",
        )
