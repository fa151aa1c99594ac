"""Where the outcome of a message goes, and the reply itself.

A request is answered on its `response/<action>` topic (or the MQTT v5 ResponseTopic it names,
if the daemon may write there); a `set` has no reply when it succeeds (the state topic shows
the result) and an error event when it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from treadmilld.mqtt.link import MqttLink
from treadmilld.mqtt.messages import IncomingMessage
from treadmilld.mqtt.outgoing import compact_json, event_payload
from treadmilld.mqtt.payloads import Transaction
from treadmilld.mqtt.topics import Topics

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """Where the outcome of one message goes."""

    treadmill_id: str | None
    reply_topic: str | None  # request/<action> -> response/<action>; None for `set`
    transaction: Transaction | None
    response_topic: str | None = None  # MQTT v5 ResponseTopic: wins over reply_topic
    correlation_data: bytes | None = None
    request: str | None = None  # topic, named in error events

    @classmethod
    def of(
        cls,
        message: IncomingMessage,
        *,
        treadmill_id: str | None,
        reply_topic: str | None,
        transaction: Transaction | None,
    ) -> Route:
        return cls(
            treadmill_id=treadmill_id,
            reply_topic=reply_topic,
            transaction=transaction,
            response_topic=message.response_topic,
            correlation_data=message.correlation_data,
            request=message.topic,
        )


class Replies:
    """Answers messages: success, refusal (as an error event too, for a `set`)."""

    def __init__(self, link: MqttLink, topics: Topics) -> None:
        self._link = link
        self._topics = topics

    async def succeed(self, route: Route, data: Any, **extra: Any) -> None:
        """`extra` goes at the top level of the reply, e.g. an emergency stop's `belt`."""
        if route.reply_topic is None and route.response_topic is None:
            return  # a plain `set` succeeded: the state topic shows the result
        payload = {"status": "ok", **extra, "data": data, "transaction": route.transaction}
        await self._reply(route, payload)

    async def refuse(self, route: Route, code: str, error: str, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "status": "error",
            **extra,
            "error": error,
            "code": code,
            "transaction": route.transaction,
        }
        if route.reply_topic is None and route.treadmill_id is not None:
            # `set` has no response topic of its own: errors go out as events.
            event = event_payload({"type": "error", **payload, "request": route.request})
            await self._link.publish(
                self._topics.treadmill(route.treadmill_id, "event"), compact_json(event), qos=1
            )
        await self._reply(route, payload)

    def _honoured_response_topic(self, route: Route) -> str | None:
        wanted = route.response_topic
        if wanted is None:
            return None
        if not self._topics.may_reply_to(wanted, route.treadmill_id):
            _log.warning(
                "mqtt_response_topic_refused",
                treadmill_id=route.treadmill_id,
                response_topic=wanted,
                request=route.request,
            )
            return None
        return wanted

    async def _reply(self, route: Route, payload: dict[str, Any]) -> None:
        topic = self._honoured_response_topic(route) or route.reply_topic
        if topic is None:
            return
        await self._link.publish(
            topic, compact_json(payload), qos=1, correlation_data=route.correlation_data
        )
