"""The one module that imports aiomqtt (and, through it, paho's v5 properties).

`MqttLink` owns a single aiomqtt client and keeps it connected: clean session, a Will,
capped jittered reconnect backoff, a stale-queue drain after every (re)connect, and a publish
that never raises because the broker is away. Everything above it speaks `IncomingMessage`
and plain strings, so moving to aiomqtt 3 touches this file only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from treadmilld.mqtt.config import MqttCredentialError, MqttSettings

log = structlog.get_logger()

# Bound on the goodbye (`offline`) publish during a clean stop, so shutdown never hangs.
GOODBYE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A received message, free of aiomqtt types."""

    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None = None  # MQTT v5 ResponseTopic property
    correlation_data: bytes | None = None  # MQTT v5 CorrelationData property


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    payload: str
    qos: int = 1
    retain: bool = False


def _publish_properties() -> Properties:
    return Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


# What `close()` publishes before disconnecting: fixed messages, or a function called at that
# moment (e.g. the final state of each treadmill), whose messages go out in order.
Goodbye = Sequence[OutgoingMessage] | Callable[[], Sequence[OutgoingMessage]]


class MqttLinkError(Exception):
    """The link was used in a way it does not support (e.g. run twice at once)."""


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    ca_file, cert_file, key_file = settings.tls.resolved()
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context


# What OpenSSL says when strict verification (VERIFY_X509_STRICT, on by default in Python
# 3.13's `ssl.create_default_context`) refuses a chain that lax verification accepts: a CA
# made with the usual `openssl req -x509` recipe, or a broker certificate signed without
# extensions. Matched lower-case against the error text.
_STRICT_X509_FAILURES = (
    "ca cert does not include key usage extension",
    "basic constraints of ca cert not marked critical",
    "missing authority key identifier",
    "missing subject key identifier",
    "key identifier marked critical",
    "path length given without key usage keycertsign",
    "key usage keycertsign invalid for non-ca cert",
    "empty subject alternative name extension",
)
STRICT_X509_HINT = (
    "TLS failed: the broker's CA or certificate lacks X.509 extensions that Python 3.13+ "
    "requires (strict verification); remake the CA and the broker's certificate with the "
    'recipe in docs/gym-broker.md, section "TLS certificates"'
)


def reconnect_hint(settings: MqttSettings, error: BaseException) -> str:
    """What an operator should check, worded for the failure at hand."""
    text = str(error)
    if isinstance(error, MqttConnectError) and "protocol" in text.lower():
        return 'the broker does not speak this MQTT version: set mqtt.protocol = "3.1.1"'
    if isinstance(error, MqttConnectError):
        return (
            "the broker refused the login: check mqtt.username, the password "
            "(mqtt.password / mqtt.password_file) and the broker's password file"
        )
    if any(failure in text.lower() for failure in _STRICT_X509_FAILURES):
        return STRICT_X509_HINT
    if "CERTIFICATE" in text or "SSL" in text:
        return "TLS failed: check mqtt.tls.ca_file matches the broker's certificate and hostname"
    if "timed out" in text:
        checks = ["the port"]
        if settings.tls is None:
            checks.append("whether that listener wants TLS (set mqtt.tls)")
        if settings.protocol == "5":
            checks.append('whether the broker speaks MQTT v5 (else mqtt.protocol = "3.1.1")')
        return f"no MQTT answer from {settings.host}:{settings.port}: check " + ", ".join(checks)
    return f"check that a broker is running and reachable at {settings.host}:{settings.port}"


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
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._client: aiomqtt.Client | None = None
        self._online = False
        self._stop = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._inflight: set[asyncio.Future[Any]] = set()
        self.connect_count = 0
        self.stale_dropped = 0  # messages from earlier connections drained, never handled

    @property
    def online(self) -> bool:
        return self._online

    @property
    def queued_incoming(self) -> int:
        """Messages received but not yet consumed through `messages()`."""
        return len(self._client.messages) if self._client is not None else 0

    @property
    def v5(self) -> bool:
        return self._settings.protocol == "5"

    def _make_client(self) -> aiomqtt.Client:
        # aiomqtt.Client.__init__ grabs the running loop, so this runs inside `run()`.
        settings = self._settings
        v5 = self.v5
        return aiomqtt.Client(
            settings.host,
            settings.port,
            identifier=settings.client_id,
            username=settings.username,
            password=settings.resolved_password(),
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            # A persistent session would let the broker queue commands while we are down and
            # replay them minutes later; v5 expresses the same with clean start + expiry 0.
            clean_session=None if v5 else True,
            clean_start=True if v5 else MQTT_CLEAN_START_FIRST_ONLY,  # paho: v5 only
            keepalive=settings.keepalive_s,
            timeout=settings.operation_timeout_s,
            will=aiomqtt.Will(
                self._will.topic, self._will.payload, self._will.qos, retain=self._will.retain
            ),
            tls_context=_tls_context(settings),
            tls_insecure=settings.tls.insecure if settings.tls is not None else None,
            # Commands and replies are tiny: without this, Nagle plus delayed ACKs adds ~40 ms
            # per round trip, which an emergency stop should not pay.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    def _backoff_s(self, failures: int) -> float:
        ceiling = min(
            self._settings.reconnect_max_s,
            self._settings.reconnect_initial_s * (2.0 ** min(failures, 30)),
        )
        # Jitter spreads a gym's daemons out so a restarted broker is not hit all at once.
        return ceiling * self._rng.uniform(0.5, 1.0)

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
        try:
            client = self._make_client()
        except (MqttCredentialError, ssl.SSLError, OSError) as error:
            log.exception("mqtt_config_invalid", error=str(error))
            raise
        self._client = client
        failures = 0
        while not self._stop.is_set():
            try:
                async with client:
                    failures = 0
                    await self._connected(client, session)
                    if self._stop.is_set():
                        return
            except* aiomqtt.MqttError as group:
                # except* also catches a bare MqttError (from connect or the message loop).
                await self._lost(group.exceptions[0], failures)
                failures += 1

    async def _lost(self, error: BaseException, failures: int) -> None:
        was_online = self._online
        self._online = False
        if self._stop.is_set():
            return
        delay = self._backoff_s(failures)
        log.warning(
            "mqtt_connection_lost" if was_online else "mqtt_connect_failed",
            broker=self._settings.url,
            error=str(error),
            retry_in_s=round(delay, 2),
            hint=reconnect_hint(self._settings, error),
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    async def _connected(
        self, client: aiomqtt.Client, session: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self.connect_count += 1
        drained = await self._drain(client)
        self.stale_dropped += drained
        self._online = True
        log.info(
            "mqtt_connected",
            broker=self._settings.url,
            client_id=self._settings.client_id,
            stale_messages_dropped=drained,
        )
        session_task = asyncio.create_task(session(), name="mqtt-session")
        stop_task = asyncio.create_task(self._stop.wait(), name="mqtt-stop-wait")
        # aiomqtt resolves this future when the connection drops. Watching it means a lost
        # connection is noticed even while the session is not reading messages (aiomqtt 2
        # offers no public hook for it).
        dropped: asyncio.Future[None] = client._disconnected
        waiting: set[asyncio.Future[Any]] = {session_task, stop_task, dropped}
        try:
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if stop_task in done:
                    break
                if session_task in done:
                    error = session_task.exception()
                    if error is not None:
                        await self._cancel(stop_task)
                        raise error  # the MqttError that ended the session: reconnect
                    waiting.discard(session_task)  # returned: stay connected until close()
                if dropped in done:
                    await self._cancel(session_task, stop_task)
                    cause = dropped.exception()
                    raise aiomqtt.MqttError(f"connection to the broker was lost: {cause}")
        except asyncio.CancelledError:
            # Cancelled from outside (the daemon's TaskGroup shutting down): still say goodbye.
            await self._cancel(session_task, stop_task)
            await self._say_goodbye()
            raise
        await self._cancel(session_task, stop_task)
        await self._say_goodbye()

    @staticmethod
    async def _cancel(*tasks: asyncio.Task[object]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task

    def _goodbye_messages(self) -> Sequence[OutgoingMessage]:
        goodbye = self._goodbye
        if not callable(goodbye):
            return goodbye
        try:
            return goodbye()
        except Exception:
            # Never leave without a word: the graceful DISCONNECT suppresses the Will.
            log.exception("mqtt_goodbye_failed", hint="publishing the Will's message instead")
            return [self._will]

    async def _say_goodbye(self) -> None:
        """The `offline` state etc., published before the graceful DISCONNECT (which, unlike a
        dropped connection, does not fire the Will).

        All messages are handed to the client at once, in order (each publish task reaches
        paho before the next starts, so the broker receives them in this order), and their
        acknowledgements are awaited together: one slow round trip cannot hold back the
        last message, which is usually the bridge's `offline`.
        """
        messages = self._goodbye_messages()
        publishes = [
            asyncio.ensure_future(
                self.publish(message.topic, message.payload, message.qos, message.retain)
            )
            for message in messages
        ]
        if publishes:
            _, late = await asyncio.wait(publishes, timeout=GOODBYE_TIMEOUT_S)
            if late:
                log.warning(
                    "mqtt_goodbye_timed_out",
                    broker=self._settings.url,
                    unacknowledged=len(late),
                    hint="the broker may keep stale retained state; check the broker's load",
                )
                for task in late:
                    task.cancel()
        self._online = False

    @staticmethod
    async def _drain(client: aiomqtt.Client) -> int:
        """Drop messages received on an earlier connection and never consumed: a command
        that sat out an outage must not run when the broker comes back."""
        stale = len(client.messages)
        for _ in range(stale):
            await anext(aiter(client.messages))
        return stale

    async def _acknowledged(self, operation: Coroutine[Any, Any, Any]) -> Any:
        """Await an aiomqtt operation so that cancelling the caller always works.

        aiomqtt waits for acknowledgements with `asyncio.wait_for`, which on Python 3.11 can
        swallow a cancellation that lands as the acknowledgement arrives (CPython gh-86296);
        a swallowed cancel left a TaskGroup waiting forever. Awaiting through `shield`
        delivers our cancellation reliably; the operation itself finishes in the background.
        """
        future = asyncio.ensure_future(operation)
        self._inflight.add(future)
        future.add_done_callback(self._operation_done)
        return await asyncio.shield(future)

    def _operation_done(self, future: asyncio.Future[Any]) -> None:
        self._inflight.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.debug("mqtt_operation_failed_after_caller_left", error=str(future.exception()))

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
        await self._acknowledged(client.subscribe([(topic, qos) for topic in topics]))

    async def messages(self) -> AsyncIterator[IncomingMessage]:
        """Messages of the current connection, in arrival order; raises `MqttError` when the
        connection drops."""
        client = self._require_client()
        async for message in client.messages:
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
                log.debug("mqtt_publish_dropped_offline", topic=topic)
            return False
        properties: Properties | None = None
        if correlation_data is not None and self.v5:
            properties = _publish_properties()
            properties.CorrelationData = correlation_data
        try:
            await self._acknowledged(
                client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
            )
        except aiomqtt.MqttError as error:
            log.debug("mqtt_publish_failed", topic=topic, error=str(error))
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
        properties: Properties | None = None
        if self.v5 and (response_topic is not None or correlation_data is not None):
            properties = _publish_properties()
            if response_topic is not None:
                properties.ResponseTopic = response_topic
            if correlation_data is not None:
                properties.CorrelationData = correlation_data
        await self._acknowledged(client.publish(topic, payload, qos=qos, properties=properties))

    def _require_client(self) -> aiomqtt.Client:
        if self._client is None or not self._online:
            raise aiomqtt.MqttError("not connected to the broker")
        return self._client


# Re-exported so callers can catch a dropped connection without importing aiomqtt.
MqttError = aiomqtt.MqttError
