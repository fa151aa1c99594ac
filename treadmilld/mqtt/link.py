"""The one module that imports aiomqtt (and, through it, paho's v5 properties).

`MqttLink` owns a single aiomqtt client and keeps it connected: clean session, a Will,
reconnects, a stale-queue drain after every (re)connect, and a publish that never raises
because the broker is away. Everything above it speaks `IncomingMessage` and plain strings,
so moving to aiomqtt 3 touches this file only.

Only what touches an aiomqtt client lives here (the link, and `BrokerProbe` for `treadmilld
diagnose`); the rest sits beside it in `treadmilld.mqtt`: `messages`, `connection_options`
(TLS, socket), `reconnect_policy` (backoff, client-id takeover), `inbox`, `acknowledged`,
`goodbye`, `broker_hints` and `broker_check`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from treadmilld.mqtt import connection_options
from treadmilld.mqtt.acknowledged import AcknowledgedOperations
from treadmilld.mqtt.broker_hints import connect_problem, failure_hint
from treadmilld.mqtt.config import MqttCredentialError, MqttSettings
from treadmilld.mqtt.goodbye import GOODBYE_TIMEOUT_S, goodbye_messages, say_goodbye
from treadmilld.mqtt.inbox import Inbox
from treadmilld.mqtt.messages import Goodbye, IncomingMessage, OutgoingMessage
from treadmilld.mqtt.reconnect_policy import ReconnectPolicy
from treadmilld.runtime.waiting import sleep_until_set

_log = structlog.get_logger(__name__)

# MQTT reason codes from 0x80 up are failures: a SUBACK's 0x80 "Failure" (MQTT 3.1.1 section
# 3.9.3), and every v5 error reason code (MQTT 5.0 section 2.4).
FIRST_FAILURE_CODE = 0x80


class MqttLinkError(Exception):
    """The link was used in a way it does not support (e.g. run twice at once)."""


class BrokerDroppedError(aiomqtt.MqttError):
    """The broker (or the network) closed an established connection."""

    def __init__(self, message: str, *, reason_code: int | None) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def _only_mqtt_errors(error: BaseException) -> bool:
    """Whether `error` is an MqttError, or a TaskGroup's group made only of them."""
    if isinstance(error, BaseExceptionGroup):
        return all(_only_mqtt_errors(inner) for inner in error.exceptions)
    return isinstance(error, aiomqtt.MqttError)


def _drop_cause(reader: asyncio.Task[None]) -> BaseException | None:
    """Why the connection dropped: what aiomqtt chained to the `MqttError` that ended its
    message iteration (None after a clean DISCONNECT from the broker)."""
    error = None if reader.cancelled() else reader.exception()
    if error is None:
        return None
    if not isinstance(error, aiomqtt.MqttError):
        raise error  # a bug in reading, not a drop
    return error.__cause__


def _reason_code(error: BaseException | None) -> int | None:
    """The numeric MQTT reason code of an aiomqtt error, if it carries one."""
    rc = getattr(error, "rc", None)
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


def reconnect_hint(settings: MqttSettings, error: BaseException) -> str:
    """What an operator should check, worded for the failure at hand."""
    return failure_hint(settings, str(error), connect_refused=isinstance(error, MqttConnectError))


def broker_problem(settings: MqttSettings, error: BaseException) -> str:
    """What to fix when connecting fails, down to the socket error aiomqtt wraps: refused
    (nothing listening), an unknown host name, or `reconnect_hint`'s login / TLS / timeout."""
    # aiomqtt re-raises paho's OSError as a bare MqttError (`from None`): the socket error
    # survives as the context.
    cause = error.__context__ if type(error) is aiomqtt.MqttError else error
    return connect_problem(settings, cause, str(error), otherwise=reconnect_hint(settings, error))


def _new_client(
    settings: MqttSettings, *, identifier: str, will: aiomqtt.Will | None
) -> aiomqtt.Client:
    # aiomqtt.Client.__init__ grabs the running loop, so this runs inside a coroutine.
    v5 = settings.protocol == "5"
    return aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=identifier,
        username=settings.username,
        password=settings.resolved_password(),
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        # A persistent session would let the broker queue commands while we are down and
        # replay them minutes later; v5 expresses the same with clean start + expiry 0.
        clean_session=None if v5 else True,
        clean_start=True if v5 else MQTT_CLEAN_START_FIRST_ONLY,  # paho: v5 only
        keepalive=settings.keepalive_s,
        timeout=settings.operation_timeout_s,
        will=will,
        tls_context=connection_options.tls_context(settings),
        tls_insecure=settings.tls.insecure if settings.tls is not None else None,
        socket_options=connection_options.LOW_LATENCY_SOCKET_OPTIONS,
    )


class BrokerProbe:
    """A short-lived client for `treadmilld diagnose`'s round trip
    (`treadmilld.mqtt.broker_check`): the daemon's login and TLS, no Will, its own client id.
    Raises `MqttError` for a broker problem."""

    def __init__(self, settings: MqttSettings, *, identifier: str) -> None:
        self._client = _new_client(settings, identifier=identifier, will=None)

    async def connect(self) -> None:
        await self._client.__aenter__()

    async def disconnect(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def subscribe(self, topic: str) -> list[str]:
        """Subscribe at QoS 1; the broker's refusals as it worded them (none: granted)."""
        granted = await self._client.subscribe(topic, qos=1)
        return [str(code) for code in granted if getattr(code, "value", code) >= FIRST_FAILURE_CODE]

    async def publish(self, topic: str, payload: str) -> None:
        await self._client.publish(topic, payload, qos=1)

    async def receive(self, topic: str, payload: str) -> None:
        """Return once `payload` arrives on `topic`."""
        async for message in self._client.messages:
            if message.topic.value == topic and message.payload in (payload, payload.encode()):
                return


class MqttLink:
    """One broker connection, kept alive for the daemon's lifetime.

    `run(session)` connects and awaits `session()` for as long as the connection lasts
    (the caller subscribes and processes `messages()` there), reconnecting with backoff when
    the broker goes away. `close()` publishes the goodbye messages and disconnects cleanly.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        will: OutgoingMessage,
        goodbye: Goodbye = (),
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._will = will
        self._goodbye: Goodbye = goodbye if callable(goodbye) else tuple(goodbye)
        self._reconnect = ReconnectPolicy(settings, rng=rng)
        self._client: aiomqtt.Client | None = None
        # The current connection's messages, moved there by its reader task as they arrive.
        self._inbox: Inbox[aiomqtt.Message] = Inbox()
        self._online = False
        self._stop = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._acknowledged = AcknowledgedOperations()
        self.connect_count = 0
        self.stale_dropped = 0  # messages from earlier connections drained, never handled

    @property
    def online(self) -> bool:
        return self._online

    @property
    def queued_incoming(self) -> int:
        """Messages received but not yet consumed through `messages()`."""
        waiting = len(self._client.messages) if self._client is not None else 0
        return self._inbox.unread + waiting

    @property
    def v5(self) -> bool:
        return self._settings.protocol == "5"

    async def run(self, session: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Stay connected until `close()`; returns then. Raises only on cancellation or a
        configuration error (unreadable credential files)."""
        if self._running:
            raise MqttLinkError("MqttLink.run() is already running; use one link per bridge")
        self._running = True
        try:
            await self._run(session)
        finally:
            self._online = False
            self._running = False
            self._finished.set()

    async def _run(self, session: Callable[[], Coroutine[Any, Any, None]]) -> None:
        will = aiomqtt.Will(
            self._will.topic, self._will.payload, self._will.qos, retain=self._will.retain
        )
        try:
            client = _new_client(self._settings, identifier=self._settings.client_id, will=will)
        except (MqttCredentialError, ssl.SSLError, OSError) as error:
            _log.exception("mqtt_config_invalid", error=str(error))
            raise
        self._client = client
        while not self._stop.is_set():
            self._reconnect.connecting()
            try:
                async with client:
                    await self._connected(client, session)
                    if self._stop.is_set():
                        return
            except* aiomqtt.MqttError as group:
                # except* also catches a bare MqttError (from connect or the message loop).
                await self._lost(group.exceptions[0])

    async def _lost(self, error: BaseException) -> None:
        was_online = self._online
        self._online = False
        if self._stop.is_set():
            return
        dropped = error if isinstance(error, BrokerDroppedError) else None
        delay = self._reconnect.after_loss(
            was_online=was_online,
            error=str(error),
            dropped_by_broker=dropped is not None,
            reason_code=None if dropped is None else dropped.reason_code,
            connect_hint=broker_problem(self._settings, error),
        )
        await sleep_until_set(self._stop, delay, self._reconnect.clock)

    async def _connected(
        self, client: aiomqtt.Client, session: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self.connect_count += 1
        self._reconnect.connected()
        # The last connection's unread messages are as stale as the ones aiomqtt still holds.
        drained = self._inbox.unread + await self._drain(client)
        self.stale_dropped += drained
        inbox: Inbox[aiomqtt.Message] = Inbox()
        self._inbox = inbox
        # aiomqtt 2 has no public callback for a lost connection; its message iteration raising
        # `MqttError` (the drop's reason chained as the cause) is the public sign. Iterating for
        # the whole connection notices a drop whether or not the session reads.
        reader = asyncio.create_task(
            inbox.fill(client.messages, ended=aiomqtt.MqttError("Disconnected")),
            name="mqtt-reader",
        )
        self._online = True
        _log.info(
            "mqtt_connected",
            broker=self._settings.url,
            client_id=self._settings.client_id,
            stale_messages_dropped=drained,
        )
        session_task = asyncio.create_task(session(), name="mqtt-session")
        stop_task = asyncio.create_task(self._stop.wait(), name="mqtt-stop-wait")
        # The reader ends when the connection drops, so a lost connection is noticed even
        # while the session is not reading messages.
        waiting: set[asyncio.Future[Any]] = {session_task, stop_task, reader}
        try:
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if stop_task in done:
                    break
                if reader.done():
                    # Checked before the session: a drop also fails the session's reads and
                    # pending publishes, and the drop is the cause worth reporting. A bug in
                    # the session still surfaces as itself.
                    cause = _drop_cause(reader)
                    if session_task.done() and not session_task.cancelled():
                        failure = session_task.exception()
                        if failure is not None and not _only_mqtt_errors(failure):
                            await self._cancel(stop_task)
                            raise failure
                    await self._cancel(session_task, stop_task)
                    raise BrokerDroppedError(
                        f"connection to the broker was lost: {cause}",
                        reason_code=_reason_code(cause),
                    )
                if session_task in done:
                    error = session_task.exception()
                    if error is not None:
                        await self._cancel(stop_task, reader)
                        raise error  # the MqttError that ended the session: reconnect
                    waiting.discard(session_task)  # returned: stay connected until close()
        except asyncio.CancelledError:
            # Cancelled from outside (the daemon's TaskGroup shutting down): still say goodbye.
            await self._cancel(session_task, stop_task, reader)
            await self._say_goodbye()
            raise
        await self._cancel(session_task, stop_task, reader)
        await self._say_goodbye()

    @staticmethod
    async def _cancel(*tasks: asyncio.Task[object]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, aiomqtt.MqttError):
                pass
            except BaseExceptionGroup as group:
                # A session whose TaskGroup saw the drop before our cancel: the MqttErrors
                # inside are the drop being reported by the caller. Anything else is a bug.
                if not _only_mqtt_errors(group):
                    raise

    async def _say_goodbye(self) -> None:
        await say_goodbye(
            goodbye_messages(self._goodbye, will=self._will),
            lambda message: self.publish(
                message.topic, message.payload, message.qos, message.retain
            ),
            broker=self._settings.url,
        )
        self._online = False

    @staticmethod
    async def _drain(client: aiomqtt.Client) -> int:
        """Drop messages received on an earlier connection and never consumed: a command
        that sat out an outage must not run when the broker comes back."""
        stale = len(client.messages)
        for _ in range(stale):
            await anext(aiter(client.messages))
        return stale

    async def close(self) -> None:
        """Publish the goodbye messages, disconnect cleanly and let `run()` return."""
        self._stop.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GOODBYE_TIMEOUT_S + self._settings.operation_timeout_s):
                    await self._finished.wait()

    async def subscribe(self, topics: Sequence[str], qos: int = 1) -> None:
        """Subscribe on the current connection (raises `MqttError` if it is gone; the
        session then ends and `run()` reconnects)."""
        client = self._require_client()
        await self._acknowledged.wait(client.subscribe([(topic, qos) for topic in topics]))

    async def messages(self) -> AsyncIterator[IncomingMessage]:
        """Messages of the current connection, in arrival order; raises `MqttError` when the
        connection drops."""
        self._require_client()
        inbox = self._inbox
        while True:
            message = await inbox.take()
            if isinstance(message, BaseException):
                raise aiomqtt.MqttError(str(message)) from message.__cause__
            payload = message.payload
            response_topic: str | None = None
            correlation: bytes | None = None
            props = message.properties
            if props is not None:
                response_topic = getattr(props, "ResponseTopic", None)
                correlation = getattr(props, "CorrelationData", None)
            yield IncomingMessage(
                topic=message.topic.value,
                payload=payload if isinstance(payload, bytes) else str(payload).encode(),
                retain=bool(message.retain),
                response_topic=response_topic,
                correlation_data=correlation,
            )

    async def publish(
        self,
        topic: str,
        payload: str,
        qos: int = 0,
        retain: bool = False,
        *,
        correlation_data: bytes | None = None,
    ) -> bool:
        """Publish if connected; returns False (and drops the message) otherwise.

        Never raises for a missing broker: telemetry is best effort and retained state is
        republished after the next connect.
        """
        client = self._client
        if client is None or not self._online:
            if qos > 0:
                _log.debug("mqtt_publish_dropped_offline", topic=topic)
            return False
        properties = self._properties(correlation_data=correlation_data)
        try:
            await self._acknowledged.wait(
                client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
            )
        except aiomqtt.MqttError as error:
            _log.debug("mqtt_publish_failed", topic=topic, error=str(error))
            return False
        return True

    async def publish_request(
        self,
        topic: str,
        payload: str,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        qos: int = 1,
    ) -> None:
        """Publish with v5 request properties (tools and tests acting as a client)."""
        client = self._require_client()
        properties = self._properties(response_topic, correlation_data)
        await self._acknowledged.wait(
            client.publish(topic, payload, qos=qos, properties=properties)
        )

    def _properties(
        self, response_topic: str | None = None, correlation_data: bytes | None = None
    ) -> Properties | None:
        """v5 PUBLISH properties; None on 3.1.1, which has none, or when there is nothing."""
        if not self.v5 or (response_topic is None and correlation_data is None):
            return None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if response_topic is not None:
            properties.ResponseTopic = response_topic
        if correlation_data is not None:
            properties.CorrelationData = correlation_data
        return properties

    def _require_client(self) -> aiomqtt.Client:
        if self._client is None or not self._online:
            raise aiomqtt.MqttError("not connected to the broker")
        return self._client


# Re-exported so callers can catch a dropped connection without importing aiomqtt.
MqttError = aiomqtt.MqttError
