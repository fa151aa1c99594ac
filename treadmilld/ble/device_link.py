"""`DeviceLink`: the reconnect loop and the session supervision of every Bluetooth link, a
treadmill's (`client.BleTreadmillLink`) and a heart-rate strap's (`strap.BleHeartRateStrap`),
written once.

The loop: connect until closed, back off after a failed step (a warning with what to check),
watch the session until it ends, end it (the loss logged and published, the pump reaped, the
device let go), reset the backoff after a healthy session, back off again and reconnect. A
session ends when the link is closed, the device or the stack drops it, its pump stops, or it
sends nothing for `liveness_timeout_s`.

A subclass says how a session is opened and announced (`_open_session`, which calls
`_make_current`), what goes with a session that ends (`_session_ending`), the loss event
(`_lost_event`) and how the device is let go (`_let_go`); its `LinkKind` holds its log event
names, its reasons' texts and which of its events a lagging subscriber may lose. The loop
itself sends nothing to the device, on a reconnect least of all.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

import structlog

from treadmilld.ble.api import ConnectionState, LinkLostCause
from treadmilld.ble.config import BackoffSettings, ReconnectBackoff, TargetSelector
from treadmilld.ble.device_connect import DeviceConnectError
from treadmilld.ble.gatt import GattBackend, GattConnection
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.fanout import FanOut
from treadmilld.runtime.waiting import sleep_until_set, until_set, wait_any

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

_log = structlog.get_logger(__name__)

# The same words for both links: the pump is our own code, whatever the device.
REASON_PUMP_STOPPED: Final = "notification processing stopped unexpectedly"


class LiveSession(Protocol):
    """What the loop reads of one connection (`LinkSession`, a strap's session)."""

    connection: GattConnection
    connected_at: float
    last_data_at: float  # moved by the pump on every sign of life
    disconnected: asyncio.Event  # set when the device or the stack drops the connection
    pump: asyncio.Task[None] | None


class LinkTimings(Protocol):
    """The settings the loop runs on (`LinkSettings`, `StrapLinkSettings`)."""

    @property
    def liveness_timeout_s(self) -> float: ...
    @property
    def backoff(self) -> BackoffSettings: ...


@dataclasses.dataclass(frozen=True, slots=True)
class LinkKind:
    """What one kind of link says and keeps: its log event names, its reasons' texts, its
    subscribers' queue."""

    noun: str  # "link" or "strap": names the event stream and the link in run()'s misuse error
    id_key: str  # the log field that names the device
    connect_failed: str
    reconnect_scheduled: str
    lost: str
    pump_failed: str
    closed: str
    reason_closed: str
    reason_dropped: str
    reason_no_data_prefix: str  # followed by the liveness timeout
    queue_size: int  # events queued per subscriber before a droppable one is dropped
    droppable: type[object]  # readings, superseded by the next one; every other event is kept


def gatt_or_bleak(
    gatt_backend: GattBackend | None,
    clock: Clock,
    scanner_backend: ScannerBackend | None,
    client_backend: ClientBackend | None,
) -> GattBackend:
    """`gatt_backend` if given (tests of our own seam), else bleak with the given backend
    classes (the simulator's), imported only now."""
    if gatt_backend is not None:
        return gatt_backend
    from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - bleak lazily

    return BleakGattBackend(clock, scanner_backend=scanner_backend, client_backend=client_backend)


S = TypeVar("S", bound=LiveSession)
E = TypeVar("E")


class DeviceLink(abc.ABC, Generic[S, E]):
    """One device's link: its state, its current session, its events and its reconnect loop."""

    def __init__(
        self,
        device_id: str,
        kind: LinkKind,
        target: TargetSelector,
        timings: LinkTimings,
        *,
        clock: Clock,
        rng: random.Random | None,
    ) -> None:
        self._id = device_id
        self._target = target
        self._clock = clock
        self._kind = kind
        self._timings = timings
        self._backoff = ReconnectBackoff(timings.backoff, rng)
        droppable = kind.droppable
        self._events: FanOut[E] = FanOut(
            f"{kind.noun} {device_id}",
            maxsize=kind.queue_size,
            keep=lambda event: not isinstance(event, droppable),
        )
        self._state = ConnectionState.DISCONNECTED
        self._session: S | None = None  # the current connection
        self._closing = asyncio.Event()
        self._closed = False
        self._run_done: asyncio.Event | None = None
        self._link_log = _log.bind(**{kind.id_key: device_id})

    # ------------------------------------------------------------------ what a subclass says

    @abc.abstractmethod
    async def _open_session(self) -> S:
        """A session opened and announced (after `_make_current`); raises
        `DeviceConnectError` when a step fails."""

    @abc.abstractmethod
    def _lost_event(self, cause: LinkLostCause, reason: str, at: float) -> E:
        """The event that says the session ended."""

    @abc.abstractmethod
    async def _let_go(self, connection: GattConnection) -> None:
        """Disconnect a session the device has not dropped itself; never raises."""

    def _session_ending(self, session: S, reason: str) -> None:
        """What ends with `session`, before its loss is published."""

    def _make_current(self, session: S) -> float:
        """`session` becomes the current connection, fresh (no silence yet); returns the time."""
        now = self._clock.now()
        session.connected_at = now
        session.last_data_at = now
        self._session = session
        self._state = ConnectionState.CONNECTED
        return now

    # ------------------------------------------------------------------ public

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    def events(self) -> AsyncIterator[E]:
        return self._events.subscribe()

    async def run(self) -> None:
        kind = self._kind
        if self._run_done is not None:
            raise RuntimeError(
                f"{self._id}: run() is already running; call it once per {kind.noun}"
            )
        self._run_done = asyncio.Event()
        failures = 0  # consecutive failed connect steps, for the logs
        try:
            while not self._closing.is_set():
                attempt_started = self._clock.now()
                outcome = await until_set(self._connect(), self._closing)
                if outcome is None:
                    break  # closed while connecting
                if isinstance(outcome, DeviceConnectError):
                    failures += 1
                    delay = self._backoff.next_delay()
                    self._link_log.warning(
                        kind.connect_failed,
                        target=self._target.describe(),
                        error=str(outcome),
                        hint=outcome.hint,
                        attempt=failures,
                        took_s=round(self._clock.now() - attempt_started, 2),
                        retry_in_s=round(delay, 2),
                    )
                    await sleep_until_set(self._closing, delay, self._clock)
                    continue
                failures = 0
                session = outcome
                cause, reason = await self._supervise(session)
                healthy_for = self._clock.now() - session.connected_at
                await self._end_session(session, cause, reason)
                if healthy_for >= self._timings.backoff.reset_after_healthy_s:
                    self._backoff.reset()
                if self._closing.is_set():
                    break
                delay = self._backoff.next_delay()
                self._link_log.info(
                    kind.reconnect_scheduled,
                    retry_in_s=round(delay, 2),
                    after=reason,
                    healthy_for_s=round(healthy_for, 2),
                )
                await sleep_until_set(self._closing, delay, self._clock)
        finally:
            current = self._session
            if current is not None:
                await self._end_session(current, LinkLostCause.CLOSED, kind.reason_closed)
            self._state = ConnectionState.DISCONNECTED
            self._finish_subscriptions()
            self._run_done.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closing.set()
        if self._run_done is not None:
            await self._run_done.wait()
        else:
            session = self._session
            if session is not None:
                await self._end_session(session, LinkLostCause.CLOSED, self._kind.reason_closed)
            self._finish_subscriptions()
        self._link_log.info(self._kind.closed)

    def _finish_subscriptions(self) -> None:
        self._closed = True
        self._events.close()

    async def _connect(self) -> S | DeviceConnectError:
        """One connect step: the session, live, or why it failed."""
        self._state = ConnectionState.CONNECTING
        try:
            return await self._open_session()
        except DeviceConnectError as error:
            self._state = ConnectionState.DISCONNECTED
            return error
        except BaseException:
            self._state = ConnectionState.DISCONNECTED
            raise

    # ------------------------------------------------------------------ supervise / end

    async def _supervise(self, session: S) -> tuple[LinkLostCause, str]:
        """Wait until the session ends; returns why (the cause, and its text)."""
        kind = self._kind
        liveness = self._timings.liveness_timeout_s
        while True:
            if self._closing.is_set():
                return LinkLostCause.CLOSED, kind.reason_closed
            if session.disconnected.is_set():
                return LinkLostCause.DROPPED, kind.reason_dropped
            if session.pump is not None and session.pump.done():
                return LinkLostCause.FAILED, REASON_PUMP_STOPPED
            silent_for = self._clock.now() - session.last_data_at
            if silent_for >= liveness:
                return LinkLostCause.NO_DATA, f"{kind.reason_no_data_prefix} {liveness:g} s"
            await wait_any(
                events=(self._closing, session.disconnected),
                futures=() if session.pump is None else (session.pump,),
                seconds=liveness - silent_for,
                clock=self._clock,
            )

    async def _end_session(self, session: S, cause: LinkLostCause, reason: str) -> None:
        """The loss logged and published, the pump reaped, the device let go; nothing if
        `session` is no longer the current one."""
        if self._session is not session:
            return
        self._session = None
        self._state = ConnectionState.DISCONNECTED
        self._session_ending(session, reason)
        now = self._clock.now()
        level = self._link_log.info if cause is LinkLostCause.CLOSED else self._link_log.warning
        level(self._kind.lost, reason=reason, cause=cause.value)
        self._events.publish(self._lost_event(cause, reason, now))
        pump = session.pump
        if pump is not None:
            pump.cancel()
            await asyncio.wait({pump})
            if not pump.cancelled() and (error := pump.exception()) is not None:
                self._link_log.error(self._kind.pump_failed, error=repr(error))
        if not session.disconnected.is_set():
            await self._let_go(session.connection)
