"""`BleTreadmillLink`: one FTMS treadmill over bleak, behind the `TreadmillLink` seam.

Flow (docs/ble-client.md has the long form):
1. find the treadmill with our own bounded scan, connect with bounded attempts;
2. read Device Information, Feature and both ranges; enable notifications one at a time
   (`connection_setup.py`);
3. a pump task decodes notifications in order (`notifications.py`; bleak callbacks only
   enqueue);
4. a supervisor here watches for a disconnect or silence (liveness) and reconnects with backoff.

Commands go through `belt_commands.py` (the belt rules) and `control_channel.py` (one Control
Point procedure at a time). This module is the facade and the reconnect loop: it owns which
connection is current, the link's state and its events.

The link never starts the belt by itself and never re-applies a target after a reconnect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import structlog

from treadmilld.ble.api import (
    ConnectionState,
    LinkConnected,
    LinkEvent,
    LinkLost,
    LinkLostCause,
    NotConnectedError,
    Telemetry,
    TelemetryReceived,
    TreadmillCapabilities,
)
from treadmilld.ble.belt_commands import BeltCommands
from treadmilld.ble.config import LinkSettings, ReconnectBackoff, TargetSelector
from treadmilld.ble.connection_setup import ConnectionOpener, ConnectStepError
from treadmilld.ble.control_channel import ControlChannel
from treadmilld.ble.gatt import GattBackend
from treadmilld.ble.notifications import NotificationPump
from treadmilld.ble.quirks import Quirks
from treadmilld.ble.session import LinkSession
from treadmilld.ftms import TreadmillData
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.fanout import FanOut
from treadmilld.runtime.waiting import sleep_until_set, until_set, wait_any

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

_log = structlog.get_logger(__name__)

# `LinkLost.reason` texts (for people and logs; the engine reads `LinkLost.cause`).
REASON_CLOSED: Final = "link closed"
REASON_DROPPED: Final = "the treadmill or the Bluetooth stack dropped the connection"
REASON_NO_DATA_PREFIX: Final = "no treadmill data for"  # followed by the liveness timeout
REASON_PUMP_STOPPED: Final = "notification processing stopped unexpectedly"

# Events queued per subscriber before the oldest telemetry is dropped (runtime/fanout.py has
# the policy): minutes of records at any deck's rate, so only a stalled reader ever meets it.
SUBSCRIBER_QUEUE_SIZE = 1000

_NO_TELEMETRY: Final = Telemetry(data=TreadmillData(), received_at=None)


def _never_dropped(event: LinkEvent) -> bool:
    """Every event but telemetry must reach a lagging subscriber: a safety key, a console stop
    or a lost link changes what the engine must do; a record is superseded by the next one."""
    return not isinstance(event, TelemetryReceived)


class BleTreadmillLink:
    """One treadmill over bleak; implements `treadmilld.ble.api.TreadmillLink`."""

    def __init__(
        self,
        treadmill_id: str,
        target: TargetSelector,
        settings: LinkSettings,
        *,
        clock: Clock,
        scanner_backend: ScannerBackend | None = None,
        client_backend: ClientBackend | None = None,
        gatt_backend: GattBackend | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`scanner_backend`/`client_backend` are bleak backend classes (the simulator's);
        `gatt_backend` replaces bleak altogether (unit tests of our own seam)."""
        self._id = treadmill_id
        self._settings = settings
        self._clock = clock
        if gatt_backend is None:
            from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - bleak lazily

            gatt_backend = BleakGattBackend(
                clock,
                scanner_backend=scanner_backend,
                client_backend=client_backend,
            )
        self._target = target
        self._backoff = ReconnectBackoff(settings.backoff, rng)
        self._state = ConnectionState.DISCONNECTED
        self._events: FanOut[LinkEvent] = FanOut(
            f"link {treadmill_id}", maxsize=SUBSCRIBER_QUEUE_SIZE, keep=_never_dropped
        )
        # The current connection, and the last one that went live: its capabilities and
        # telemetry stay readable after it is lost, until the next connection replaces them.
        self._session: LinkSession | None = None
        self._latest: LinkSession | None = None
        self._capabilities: TreadmillCapabilities | None = None
        self._closing = asyncio.Event()
        self._closed = False
        self._run_done: asyncio.Event | None = None
        self._log = _log.bind(treadmill_id=treadmill_id)
        background = Background(
            on_error=lambda error: self._log.debug(
                "operation_failed_after_caller_left", error=repr(error)
            )
        )
        self._opener = ConnectionOpener(
            treadmill_id, target, settings, gatt=gatt_backend, clock=clock, background=background
        )
        self._channel = ControlChannel(
            treadmill_id,
            settings,
            clock=clock,
            background=background,
            require_current=self._require_current,
        )
        self._commands = BeltCommands(
            treadmill_id,
            settings,
            clock=clock,
            channel=self._channel,
            require_session=self._require_session,
            telemetry=lambda: self.telemetry,
        )

    # ------------------------------------------------------------------ TreadmillLink: state

    @property
    def treadmill_id(self) -> str:
        return self._id

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def capabilities(self) -> TreadmillCapabilities | None:
        return self._capabilities

    @property
    def telemetry(self) -> Telemetry:
        latest = self._latest
        return latest.telemetry if latest is not None else _NO_TELEMETRY

    @property
    def quirks(self) -> Quirks | None:
        """The quirks in use on the current connection (None while disconnected)."""
        session = self._session
        return session.quirks if session is not None else None

    def events(self) -> AsyncIterator[LinkEvent]:
        return self._events.subscribe()

    # ------------------------------------------------------------------ TreadmillLink: commands

    async def start_belt(self) -> None:
        await self._commands.start_belt()

    async def set_target_speed(self, speed_kmh: float) -> float:
        return await self._commands.set_target_speed(speed_kmh)

    async def set_target_inclination(self, inclination_pct: float) -> float:
        return await self._commands.set_target_inclination(inclination_pct)

    async def reset_targets(self) -> None:
        await self._commands.reset_targets()

    async def pause_belt(self) -> None:
        await self._commands.pause_belt()

    async def stop_belt(self) -> None:
        await self._commands.stop_belt()

    # ------------------------------------------------------------------ run / close

    async def run(self) -> None:
        if self._run_done is not None:
            raise RuntimeError(f"{self._id}: run() is already running; call it once per link")
        self._run_done = asyncio.Event()
        failures = 0  # consecutive failed connect steps, for the logs
        try:
            while not self._closing.is_set():
                attempt_started = self._clock.now()
                outcome = await until_set(self._connect(), self._closing)
                if outcome is None:
                    break  # closed while connecting
                if isinstance(outcome, ConnectStepError):
                    failures += 1
                    delay = self._backoff.next_delay()
                    self._log.warning(
                        "connect_failed",
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
                await self._end_session(session, reason, cause)
                if healthy_for >= self._settings.backoff.reset_after_healthy_s:
                    self._backoff.reset()
                if self._closing.is_set():
                    break
                delay = self._backoff.next_delay()
                self._log.info(
                    "reconnect_scheduled",
                    retry_in_s=round(delay, 2),
                    after=reason,
                    healthy_for_s=round(healthy_for, 2),
                )
                await sleep_until_set(self._closing, delay, self._clock)
        finally:
            current = self._session
            if current is not None:
                await self._end_session(current, REASON_CLOSED, LinkLostCause.CLOSED)
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
                await self._end_session(session, REASON_CLOSED, LinkLostCause.CLOSED)
            self._finish_subscriptions()
        self._log.info("link_closed")

    def _finish_subscriptions(self) -> None:
        self._closed = True
        self._events.close()

    async def _reap(self, task: asyncio.Task[None]) -> None:
        """Cancel a helper task and wait for it; an unexpected failure is logged, not raised."""
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error("pump_failed", error=repr(error))

    # ------------------------------------------------------------------ connect

    async def _connect(self) -> LinkSession | ConnectStepError:
        """One connect step: the session, live, or why it failed."""
        self._state = ConnectionState.CONNECTING
        try:
            session, capabilities = await self._opener.open()
        except ConnectStepError as error:
            self._state = ConnectionState.DISCONNECTED
            return error
        except BaseException:
            self._state = ConnectionState.DISCONNECTED
            raise
        self._go_live(session, capabilities)
        return session

    def _go_live(self, session: LinkSession, capabilities: TreadmillCapabilities) -> None:
        """The link is up: fresh telemetry, then LinkConnected, then the pump starts so every
        TelemetryReceived of this connection follows its LinkConnected."""
        now = self._clock.now()
        session.connected_at = now
        session.last_data_at = now
        self._latest = session
        self._capabilities = capabilities
        self._session = session
        self._state = ConnectionState.CONNECTED
        speed_range = capabilities.speed_range
        inclination_range = capabilities.inclination_range
        self._log.info(
            "link_connected",
            address=capabilities.address,
            name=session.name,
            quirks=session.quirks.name,
            speed_range=dataclasses.asdict(speed_range) if speed_range else None,
            inclination_range=dataclasses.asdict(inclination_range) if inclination_range else None,
            controllable=session.control.has_control_point,
            control_point_write=(
                "with_response" if session.control.with_response else "without_response"
            ),
        )
        self._events.publish(LinkConnected(capabilities=capabilities, at=now))
        pump = NotificationPump(
            self._id, session, clock=self._clock, channel=self._channel, emit=self._events.publish
        )
        session.pump = asyncio.create_task(pump.run(), name=f"{self._id}-pump")

    # ------------------------------------------------------------------ supervise / end

    async def _supervise(self, session: LinkSession) -> tuple[LinkLostCause, str]:
        """Wait until the session ends; returns why (the cause, and its text)."""
        liveness = self._settings.liveness_timeout_s
        while True:
            if self._closing.is_set():
                return LinkLostCause.CLOSED, REASON_CLOSED
            if session.disconnected.is_set():
                return LinkLostCause.DROPPED, REASON_DROPPED
            if session.pump is not None and session.pump.done():
                return LinkLostCause.FAILED, REASON_PUMP_STOPPED
            silent_for = self._clock.now() - session.last_data_at
            if silent_for >= liveness:
                return LinkLostCause.NO_DATA, f"{REASON_NO_DATA_PREFIX} {liveness:g} s"
            await wait_any(
                events=(self._closing, session.disconnected),
                futures=() if session.pump is None else (session.pump,),
                seconds=liveness - silent_for,
                clock=self._clock,
            )

    async def _end_session(self, session: LinkSession, reason: str, cause: LinkLostCause) -> None:
        if self._session is not session:
            return
        self._session = None
        self._state = ConnectionState.DISCONNECTED
        session.assembler.reset()  # a partial record never completes across links (FTMS §4.18)
        self._channel.abandon(session, reason)
        now = self._clock.now()
        level = self._log.info if cause is LinkLostCause.CLOSED else self._log.warning
        level("link_lost", reason=reason, cause=cause.value)
        self._events.publish(LinkLost(reason=reason, at=now, cause=cause))
        if session.pump is not None:
            await self._reap(session.pump)
        if not session.disconnected.is_set():
            await self._opener.disconnect_quietly(session.connection)

    # ------------------------------------------------------------------ current connection

    def _require_session(self, what: str) -> LinkSession:
        session = self._session
        if session is None:
            raise NotConnectedError(
                f"{self._id}: cannot {what}, the treadmill is not connected; the link reconnects "
                "by itself, retry after LinkConnected"
            )
        return session

    def _require_current(self, session: LinkSession, what: str) -> None:
        """Raises unless `session` is still the link's connection (a command that waited for
        the Control Point may find the link reconnected)."""
        if self._session is not session:
            self._require_session(what)
            raise NotConnectedError(
                f"{self._id}: the link reconnected before {what} was sent; retry it"
            )
