"""Incoming messages, per broker connection: the *listener* routes each by its topic,
checks it (payload model, retained, stale) and hands a valid command to its treadmill's
queue. It never waits on the engine, so the next message (an emergency stop) is read at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import structlog

from treadmilld.mqtt.bridge_requests import BridgeRequests
from treadmilld.mqtt.commands import Command, EmergencyStop
from treadmilld.mqtt.dispatch import TreadmillCommands
from treadmilld.mqtt.fleet import Fleet
from treadmilld.mqtt.inbound_checks import check_age, refuse_retained
from treadmilld.mqtt.link import MqttLink
from treadmilld.mqtt.messages import IncomingMessage
from treadmilld.mqtt.payloads import (
    TREADMILL_REQUESTS,
    PayloadError,
    command_age_s,
    parse_plain_set,
    parse_request,
    parse_set,
    request_command,
    transaction_of,
)
from treadmilld.mqtt.publisher import Publisher
from treadmilld.mqtt.replies import Replies, Route
from treadmilld.mqtt.topics import Topics

_log = structlog.get_logger(__name__)


class Listener:
    """Routes and checks the messages of one broker connection."""

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        commands: Mapping[str, TreadmillCommands],
        *,
        publisher: Publisher,
        fleet: Fleet,
        bridge_requests: BridgeRequests,
        replies: Replies,
        max_command_age_s: float,
        wall_time: Callable[[], float],
    ) -> None:
        self._link = link
        self._topics = topics
        self._commands = commands
        self._publisher = publisher
        self._fleet = fleet
        self._bridge_requests = bridge_requests
        self._replies = replies
        self._max_command_age_s = max_command_age_s
        self._wall_time = wall_time

    async def listen(self) -> None:
        """Runs for one connection; ends with it."""
        async for message in self._link.messages():
            try:
                await self._handle(message)
            except Exception:  # noqa: BLE001 - logged with its traceback below
                # A bug in one message's handling must not stop the next (an e-stop) arriving.
                _log.exception("mqtt_message_handling_failed", topic=message.topic)

    async def _handle(self, message: IncomingMessage) -> None:
        if message.topic == self._topics.ha_status:
            await self._on_ha_status(message)
            return
        ours = self._commands
        levels = self._topics.levels(message.topic)
        match levels:
            case ["bridge", instance, "request", action] if instance == self._topics.instance:
                await self._bridge_requests.handle(action, message)
            case ["bridge", instance, "devices"]:
                self._fleet.on_devices(instance, message)
            case ["bridge", instance, "state"]:
                self._fleet.on_state(instance, message)
            case ["bridge", "state"]:
                self._fleet.on_legacy_state(message)
            case ["bridge", "info"]:
                await self._fleet.on_legacy_info(message)
            case [treadmill_id, "set"] if treadmill_id in ours:
                await self._on_set(treadmill_id, None, message)
            case [treadmill_id, "set", field_name] if treadmill_id in ours:
                await self._on_set(treadmill_id, field_name, message)
            case [treadmill_id, "get"] if treadmill_id in ours:
                await self._publisher.publish_state(treadmill_id)
            case [treadmill_id, "request", action] if treadmill_id in ours:
                await self._on_request(treadmill_id, action, message)
            case [treadmill_id, "set" | "request", *_] if treadmill_id != "bridge":
                await self._fleet.unknown_treadmill(treadmill_id, levels, message)
            case _:
                _log.debug("mqtt_message_ignored", topic=message.topic)

    async def _on_ha_status(self, message: IncomingMessage) -> None:
        if message.payload.strip() == b"online":
            await self._publisher.home_assistant_online()

    def _check_fresh(self, sent: datetime | None, command: Command | None) -> None:
        """Refuse a command stamped too long ago (an emergency stop is never too old)."""
        check_age(
            command_age_s(sent, self._wall_time()),
            limit_s=self._max_command_age_s,
            urgent=isinstance(command, EmergencyStop),
        )

    async def _refuse(
        self, event: str, route: Route, message: IncomingMessage, error: PayloadError
    ) -> None:
        _log.info(
            event,
            treadmill_id=route.treadmill_id,
            topic=message.topic,
            code=error.code,
            error=error.message,
        )
        await self._replies.refuse(route, error.code, error.message)

    async def _on_set(
        self, treadmill_id: str, field_name: str | None, message: IncomingMessage
    ) -> None:
        route = Route.of(
            message,
            treadmill_id=treadmill_id,
            reply_topic=None,
            transaction=transaction_of(message.payload) if field_name is None else None,
        )
        try:
            refuse_retained(message)
            payload = (
                parse_set(message.payload)
                if field_name is None
                else parse_plain_set(field_name, message.payload)
            )
            command = payload.to_command()
            self._check_fresh(payload.ts, command)
        except PayloadError as error:
            await self._refuse("mqtt_set_refused", route, message, error)
            return
        self._commands[treadmill_id].submit(command, route)

    async def _on_request(self, treadmill_id: str, action: str, message: IncomingMessage) -> None:
        route = Route.of(
            message,
            treadmill_id=treadmill_id,
            reply_topic=self._topics.treadmill(treadmill_id, f"response/{action}"),
            transaction=transaction_of(message.payload),
        )
        try:
            refuse_retained(message)
            request = parse_request(action, message.payload, TREADMILL_REQUESTS)
            command = request_command(action, request)
            self._check_fresh(request.ts, command)
        except PayloadError as error:
            await self._refuse("mqtt_request_refused", route, message, error)
            return
        if command is None:  # "state": read-only, answered at once
            await self._replies.succeed(route, self._publisher.state_payload(treadmill_id))
            return
        self._commands[treadmill_id].submit(command, route)
