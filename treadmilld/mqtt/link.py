"""The one module that imports aiomqtt (and, through it, paho's v5 properties).

`MqttLink` owns a single aiomqtt client and keeps it connected: clean session, a Will,
capped jittered reconnect backoff, a stale-queue drain after every (re)connect, and a publish
that never raises because the broker is away. Everything above it speaks `IncomingMessage`
and plain strings, so moving to aiomqtt 3 touches this file only.

Over 450 lines on purpose: being the one module that may import aiomqtt
(docs/architecture.md), it holds everything that touches an aiomqtt client, the kept-alive
link and `treadmilld diagnose`'s broker round trip (`check_broker`). What needs no aiomqtt
type lives elsewhere: the operator hints in `treadmilld.mqtt.broker_hints`, and everything
above the link in the bridge's modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from treadmilld.mqtt.broker_hints import (
    connect_problem,
    duplicate_client_id_hint,
    failure_hint,
)
from treadmilld.mqtt.config import MqttCredentialError, MqttSettings
from treadmilld.runtime.background import Background
from treadmilld.runtime.backoff import Backoff
from treadmilld.runtime.clock import LoopClock
from treadmilld.runtime.waiting import sleep_until_set

_log = structlog.get_logger(__name__)

# Bound on the goodbye (`offline`) publish during a clean stop, so shutdown never hangs.
GOODBYE_TIMEOUT_S = 2.0
# MQTT 5 DISCONNECT reason code 0x8E: another client connected with our client id.
SESSION_TAKEN_OVER = 0x8E
# This many connections in a row that the broker closed soon after accepting them (no failed
# connect in between) is the mark of two clients sharing one client id: each CONNECT makes
# the broker drop the other (MQTT 3.1.1 section 3.1.4; on 3.1.1, and from mosquitto 2.0.11
# even on v5, the old connection is just closed, with no reason given).
TAKEOVER_PATTERN_DROPS = 3
# While the pattern lasts, say so again every this many drops (not on every flap).
TAKEOVER_REPEAT_EVERY = 10


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


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    ca_file, cert_file, key_file = settings.tls.resolved()
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context


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
        tls_context=_tls_context(settings),
        tls_insecure=settings.tls.insecure if settings.tls is not None else None,
        # Commands and replies are tiny: without this, Nagle plus delayed ACKs adds ~40 ms
        # per round trip, which an emergency stop should not pay.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


@dataclass(frozen=True, slots=True)
class BrokerCheck:
    """What `check_broker` saw: each step's time, or the step that failed, why, and what
    to fix."""

    topic: str
    connect_ms: float | None = None
    subscribe_ms: float | None = None
    round_trip_ms: float | None = None
    failed_step: str | None = None  # "connect", "subscribe" or "round trip"
    error: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_step is None


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 1)


async def check_broker(settings: MqttSettings, *, timeout_s: float) -> BrokerCheck:
    """Connect with the daemon's login, subscribe to a private topic under this instance's
    bridge topics, publish to it and wait for the message to come back, each step bounded
    by `timeout_s`. Never raises for a broker problem: the result says what went wrong.

    The client id is the daemon's plus a random suffix, so a running daemon is not thrown
    off (unless the broker uses the login as client id: then it reconnects at once)."""
    token = secrets.token_hex(4)
    topic = f"{settings.base_topic}/bridge/{settings.instance}/diagnose/{token}"
    login = settings.username or "(anonymous)"
    acl_hint = (
        f"its ACL probably keeps login {login} from writing or reading "
        f"{settings.base_topic}/bridge/{settings.instance}/#"
    )
    result = BrokerCheck(topic)
    step = "connect"
    try:
        client = _new_client(
            settings, identifier=f"{settings.client_id}-diagnose-{token}", will=None
        )
        started = time.perf_counter()
        async with asyncio.timeout(timeout_s):
            await client.__aenter__()
        try:
            result = dataclasses.replace(result, connect_ms=_ms(started))
            step = "subscribe"
            started = time.perf_counter()
            async with asyncio.timeout(timeout_s):
                granted = await client.subscribe(topic, qos=1)
            result = dataclasses.replace(result, subscribe_ms=_ms(started))
            refused = [code for code in granted if getattr(code, "value", code) >= 0x80]
            if refused:
                return dataclasses.replace(
                    result,
                    failed_step=step,
                    error=f"SUBACK {refused[0]}",
                    hint=f"the broker refused the subscription: {acl_hint}",
                )
            step = "round trip"
            started = time.perf_counter()
            async with asyncio.timeout(timeout_s):
                await client.publish(topic, token, qos=1)
                async for message in client.messages:
                    if message.topic.value == topic and message.payload in (token, token.encode()):
                        break
            result = dataclasses.replace(result, round_trip_ms=_ms(started))
        finally:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await client.__aexit__(None, None, None)
    except TimeoutError:
        if step == "round trip":
            hint = (
                f"the broker took the message but did not deliver it back within "
                f"{timeout_s:g} s: {acl_hint}"
            )
        else:
            hint = broker_problem(settings, aiomqtt.MqttError("Operation timed out"))
        return dataclasses.replace(
            result, failed_step=step, error=f"no answer within {timeout_s:g} s", hint=hint
        )
    except aiomqtt.MqttError as error:
        return dataclasses.replace(
            result, failed_step=step, error=str(error), hint=broker_problem(settings, error)
        )
    except MqttCredentialError as error:
        # An unreadable password or TLS file: found before any network traffic.
        return dataclasses.replace(
            result, failed_step=step, error=str(error), hint="the error names what to fix"
        )
    except (ssl.SSLError, OSError) as error:
        return dataclasses.replace(
            result,
            failed_step=step,
            error=str(error),
            hint="check that mqtt.tls.ca_file, cert_file and key_file are readable PEM files "
            "and that the key belongs to the certificate",
        )
    return result


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
        # Jitter spreads a gym's daemons out so a restarted broker is not hit all at once.
        self._backoff = Backoff(
            initial_s=settings.reconnect_initial_s,
            maximum_s=settings.reconnect_max_s,
            jitter=(0.5, 1.0),
            rng=rng,
        )
        self._client: aiomqtt.Client | None = None
        # The current connection's messages, moved here by `_read` as they arrive and ended by
        # how the connection ended; `_unread` counts the messages `messages()` has not taken.
        self._inbox: asyncio.Queue[aiomqtt.Message | aiomqtt.MqttError] = asyncio.Queue()
        self._unread = 0
        self._online = False
        self._stop = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._inflight = Background(
            on_error=lambda error: _log.debug(
                "mqtt_operation_failed_after_caller_left", error=str(error)
            )
        )
        self.connect_count = 0
        self.stale_dropped = 0  # messages from earlier connections drained, never handled
        self._connected_at: float | None = None
        self._quick_drops = 0  # broker drops in a row soon after a successful connect

    @property
    def online(self) -> bool:
        return self._online

    @property
    def queued_incoming(self) -> int:
        """Messages received but not yet consumed through `messages()`."""
        waiting = len(self._client.messages) if self._client is not None else 0
        return self._unread + waiting

    @property
    def v5(self) -> bool:
        return self._settings.protocol == "5"

    def _make_client(self) -> aiomqtt.Client:
        will = self._will
        return _new_client(
            self._settings,
            identifier=self._settings.client_id,
            will=aiomqtt.Will(will.topic, will.payload, will.qos, retain=will.retain),
        )

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
            _log.exception("mqtt_config_invalid", error=str(error))
            raise
        self._client = client
        failures = 0
        while not self._stop.is_set():
            self._connected_at = None
            try:
                async with client:
                    await self._connected(client, session)
                    if self._stop.is_set():
                        return
            except* aiomqtt.MqttError as group:
                # except* also catches a bare MqttError (from connect or the message loop).
                held_s = self._held_s()
                if held_s is not None and held_s > self._settings.reconnect_max_s:
                    # Only a connection that outlived the longest backoff resets it: two
                    # clients fighting over one client id drop each other within one backoff
                    # delay, and resetting there would make them flap several times a second.
                    failures = 0
                await self._lost(group.exceptions[0], failures, held_s)
                failures += 1

    def _held_s(self) -> float | None:
        """How long the last connection lasted; None if it never got established."""
        if self._connected_at is None:
            return None
        return asyncio.get_running_loop().time() - self._connected_at

    def _takeover_suspected(self, error: BaseException, held_s: float | None) -> bool:
        """Track broker drops soon after connecting; True while they look like another
        client using our client id (and log that, once per streak and then now and then)."""
        settings = self._settings
        taken_over = (
            isinstance(error, BrokerDroppedError) and error.reason_code == SESSION_TAKEN_OVER
        )
        quick = (
            isinstance(error, BrokerDroppedError)
            and held_s is not None
            and held_s <= settings.reconnect_max_s
        )
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

    async def _lost(self, error: BaseException, failures: int, held_s: float | None) -> None:
        was_online = self._online
        self._online = False
        if self._stop.is_set():
            return
        delay = self._backoff.delay(failures)
        if self._takeover_suspected(error, held_s):
            hint = duplicate_client_id_hint(self._settings)
        elif isinstance(error, BrokerDroppedError):
            hint = (
                "the broker or the network closed the connection; reconnecting. If this "
                "repeats right after every connect, another client uses client_id "
                f"{self._settings.client_id!r}"
            )
        else:
            hint = broker_problem(self._settings, error)
        _log.warning(
            "mqtt_connection_lost" if was_online else "mqtt_connect_failed",
            broker=self._settings.url,
            error=str(error),
            retry_in_s=round(delay, 2),
            held_s=None if held_s is None else round(held_s, 2),
            hint=hint,
        )
        # Real time (the loop's clock): the broker's timeouts do not follow a demo's speed-up.
        await sleep_until_set(self._stop, delay, LoopClock())

    async def _connected(
        self, client: aiomqtt.Client, session: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self.connect_count += 1
        self._connected_at = asyncio.get_running_loop().time()
        # The last connection's unread messages are as stale as the ones aiomqtt still holds.
        drained = self._unread + await self._drain(client)
        self.stale_dropped += drained
        inbox: asyncio.Queue[aiomqtt.Message | aiomqtt.MqttError] = asyncio.Queue()
        self._inbox, self._unread = inbox, 0
        reader = asyncio.create_task(self._read(client, inbox), name="mqtt-reader")
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

    async def _read(
        self, client: aiomqtt.Client, inbox: asyncio.Queue[aiomqtt.Message | aiomqtt.MqttError]
    ) -> None:
        """Move this connection's messages into `inbox` as they arrive, then how it ended.

        aiomqtt 2 has no public callback for a lost connection; its message iteration raising
        `MqttError` (the drop's reason chained as the cause) is the public sign. Iterating
        here for the whole connection notices a drop whether or not the session reads.
        """
        ended = aiomqtt.MqttError("Disconnected during message iteration")
        try:
            async for message in client.messages:
                inbox.put_nowait(message)
                self._unread += 1
        except aiomqtt.MqttError as error:
            ended = error
            raise
        finally:
            inbox.put_nowait(ended)  # so `messages()` ends with the connection

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

    def _goodbye_messages(self) -> Sequence[OutgoingMessage]:
        goodbye = self._goodbye
        if not callable(goodbye):
            return goodbye
        try:
            return goodbye()
        except Exception:  # noqa: BLE001 - logged with its traceback below
            # Never leave without a word: the graceful DISCONNECT suppresses the Will.
            _log.exception("mqtt_goodbye_failed", hint="publishing the Will's message instead")
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
                _log.warning(
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
        a swallowed cancel left a TaskGroup waiting forever. Awaiting through a shield
        delivers our cancellation reliably; the operation itself finishes in the background.
        """
        return await self._inflight.shielded(operation)

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
        self._require_client()
        inbox = self._inbox
        while True:
            message = await inbox.get()
            if isinstance(message, aiomqtt.MqttError):
                inbox.put_nowait(message)  # a later read of this connection ends the same way
                raise aiomqtt.MqttError(str(message)) from message.__cause__
            if inbox is self._inbox:
                self._unread -= 1
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
        properties: Properties | None = None
        if correlation_data is not None and self.v5:
            properties = _publish_properties()
            properties.CorrelationData = correlation_data
        try:
            await self._acknowledged(
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
