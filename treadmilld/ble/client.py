"""`BleTreadmillLink`: one FTMS treadmill over bleak, behind the `TreadmillLink` seam.

Flow (docs/ble-client.md has the long form):
1. find the treadmill with our own bounded scan, connect with bounded attempts;
2. read Device Information, Feature and both ranges; enable notifications one at a time
   (`connection_setup.py`);
3. a pump task decodes notifications in order (`notifications.py`; bleak callbacks only
   enqueue);
4. `device_link.py` (the loop a strap's link shares) watches for a disconnect or silence
   (liveness) and reconnects with backoff.

Commands go through `belt_commands.py` (the belt rules) and `control_channel.py` (one Control
Point procedure at a time). This module is the facade: how a connection goes live (announced,
its pump started) and what ends with it; `DeviceLink` holds which connection is current, the
link's state and its events.

The link never starts the belt by itself and never re-applies a target after a reconnect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import TYPE_CHECKING, Final

import structlog

from treadmilld.ble.api import (
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
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.connection_setup import ConnectionOpener
from treadmilld.ble.control_channel import ControlChannel
from treadmilld.ble.device_link import DeviceLink, LinkKind, gatt_or_bleak
from treadmilld.ble.gatt import GattBackend, GattConnection
from treadmilld.ble.notifications import NotificationPump
from treadmilld.ble.quirks import Quirks
from treadmilld.ble.session import LinkSession
from treadmilld.ftms import TreadmillData
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

_log = structlog.get_logger(__name__)

# `LinkLost.reason` texts (for people and logs; the engine reads `LinkLost.cause`).
REASON_CLOSED: Final = "link closed"
REASON_DROPPED: Final = "the treadmill or the Bluetooth stack dropped the connection"
REASON_NO_DATA_PREFIX: Final = "no treadmill data for"  # followed by the liveness timeout

# Events queued per subscriber before the oldest telemetry is dropped (runtime/fanout.py has
# the policy): minutes of records at any deck's rate, so only a stalled reader ever meets it.
SUBSCRIBER_QUEUE_SIZE = 1000

_NO_TELEMETRY: Final = Telemetry(data=TreadmillData(), received_at=None)

# Every event but telemetry reaches a lagging subscriber: a safety key, a console stop or a
# lost link changes what the engine must do; a record is superseded by the next one.
_KIND: Final = LinkKind(
    noun="link",
    id_key="treadmill_id",
    connect_failed="connect_failed",
    reconnect_scheduled="reconnect_scheduled",
    lost="link_lost",
    pump_failed="pump_failed",
    closed="link_closed",
    reason_closed=REASON_CLOSED,
    reason_dropped=REASON_DROPPED,
    reason_no_data_prefix=REASON_NO_DATA_PREFIX,
    queue_size=SUBSCRIBER_QUEUE_SIZE,
    droppable=TelemetryReceived,
)


class BleTreadmillLink(DeviceLink[LinkSession, LinkEvent]):
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
        super().__init__(treadmill_id, _KIND, target, settings, clock=clock, rng=rng)
        gatt_backend = gatt_or_bleak(gatt_backend, clock, scanner_backend, client_backend)
        # The last connection that went live: its capabilities and telemetry stay readable
        # after it is lost, until the next connection replaces them.
        self._latest: LinkSession | None = None
        self._capabilities: TreadmillCapabilities | None = None
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

    # ------------------------------------------------------------------ DeviceLink: connect / end
    # (run, close, events and connection_state are DeviceLink's)

    async def _open_session(self) -> LinkSession:
        """One connect step: the session, live; raises `ConnectStepError`."""
        session, capabilities = await self._opener.open()
        self._go_live(session, capabilities)
        return session

    def _go_live(self, session: LinkSession, capabilities: TreadmillCapabilities) -> None:
        """The link is up: fresh telemetry, then LinkConnected, then the pump starts so every
        TelemetryReceived of this connection follows its LinkConnected."""
        now = self._make_current(session)
        self._latest = session
        self._capabilities = capabilities
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
            self._id,
            session,
            clock=self._clock,
            channel=self._channel,
            emit=self._events.publish,
        )
        session.pump = asyncio.create_task(pump.run(), name=f"{self._id}-pump")

    def _session_ending(self, session: LinkSession, reason: str) -> None:
        session.assembler.reset()  # a partial record never completes across links (FTMS §4.18)
        self._channel.abandon(session, reason)

    def _lost_event(self, cause: LinkLostCause, reason: str, at: float) -> LinkEvent:
        return LinkLost(reason=reason, at=at, cause=cause)

    async def _let_go(self, connection: GattConnection) -> None:
        await self._opener.disconnect_quietly(connection)

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
