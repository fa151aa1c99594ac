"""`BleHeartRateStrap`: one Heart Rate Service strap over bleak, behind the `HeartRateStrap` seam.

Flow (docs/ble-client.md, "Heart-rate straps"):
1. find the strap with our own bounded scan (by its configured address or name, and the Heart
   Rate Service UUID 0x180D in its advertisement), connect with bounded attempts;
2. check it has Heart Rate Measurement (0x2A37) and subscribe to it; the callback only enqueues;
3. a pump task decodes notifications in order (`treadmilld.ftms`), a malformed one is logged
   and dropped;
4. a disconnect, or no notification for `liveness_timeout_s`, ends the connection; it is found
   and connected again after a capped, jittered backoff (`ReconnectBackoff`): the treadmill
   link's loop and supervision (`device_link.py`), in a strap's words.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import structlog

from treadmilld.ble.api import LinkLostCause
from treadmilld.ble.config import StrapLinkSettings, TargetSelector
from treadmilld.ble.device_connect import (
    NO_ADAPTER_HINT,
    ConnectHints,
    DeviceConnectError,
    DeviceConnector,
)
from treadmilld.ble.device_link import DeviceLink, LinkKind, gatt_or_bleak
from treadmilld.ble.gatt import (
    Advertisement,
    GattBackend,
    GattConnection,
    GattError,
)
from treadmilld.ble.strap_api import HeartRateReceived, StrapConnected, StrapEvent, StrapLost
from treadmilld.ftms import (
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    CodecError,
    decode_heart_rate_measurement,
)
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_for_on_clock

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

_log = structlog.get_logger(__name__)

REASON_CLOSED: Final = "strap link closed"
REASON_DROPPED: Final = "the strap or the Bluetooth stack dropped the connection"
REASON_NO_DATA_PREFIX: Final = "no heart rate for"  # followed by the liveness timeout

HINT_NOT_FOUND: Final = (
    "is the strap worn (most straps advertise only with skin contact) and in range? is another "
    "app or watch connected to it? does the target match the strap's address or name?"
)
HINT_CONNECT: Final = "is the strap in range? is another app or watch connected to it?"
HINT_NOT_A_STRAP: Final = (
    "the device has no Heart Rate Measurement (0x2A37), so it is not a heart-rate strap; "
    "check the configured address or name"
)
HINT_NO_ADAPTER: Final = NO_ADAPTER_HINT
_HINTS = ConnectHints(no_adapter=HINT_NO_ADAPTER, not_found=HINT_NOT_FOUND, connect=HINT_CONNECT)

# Events queued per subscriber before the oldest reading is dropped: over ten minutes of
# readings at 1 Hz, so only a stalled reader meets it.
SUBSCRIBER_QUEUE_SIZE = 1000

# A reading is superseded by the next one; a connect or a loss is not.
_KIND: Final = LinkKind(
    noun="strap",
    id_key="strap_id",
    connect_failed="strap_connect_failed",
    reconnect_scheduled="strap_reconnect_scheduled",
    lost="strap_lost",
    pump_failed="strap_pump_failed",
    closed="strap_link_closed",
    reason_closed=REASON_CLOSED,
    reason_dropped=REASON_DROPPED,
    reason_no_data_prefix=REASON_NO_DATA_PREFIX,
    queue_size=SUBSCRIBER_QUEUE_SIZE,
    droppable=HeartRateReceived,
)


@dataclasses.dataclass(frozen=True, slots=True)
class DiscoveredStrap:
    """One heart-rate strap heard during a scan."""

    address: str
    name: str | None
    rssi: int | None


def is_strap(adv: Advertisement) -> bool:
    """Whether `adv` lists the Heart Rate Service (the Heart Rate Profile asks sensors to)."""
    return HEART_RATE_SERVICE_UUID in adv.service_uuids


def is_strap_target(adv: Advertisement, target: TargetSelector) -> bool:
    """Whether the strap link should connect to this advertisement: an explicit address is
    taken whatever it advertises (and checked after connecting); a name must be a strap's."""
    if not target.matches(adv.address, adv.name):
        return False
    return target.address is not None or is_strap(adv)


def straps_heard(heard: Sequence[Advertisement]) -> list[DiscoveredStrap]:
    """The straps among `heard`, strongest signal first."""
    found = [
        DiscoveredStrap(address=adv.address, name=adv.name, rssi=adv.rssi)
        for adv in heard
        if is_strap(adv)
    ]
    return sorted(found, key=lambda s: (s.rssi is None, -(s.rssi or 0), s.address))


# One connect step failed; `hint` says what a person should check.
StrapConnectError = DeviceConnectError


@dataclasses.dataclass(eq=False)
class _StrapSession:
    """What lives exactly as long as one connection."""

    connection: GattConnection
    address: str
    name: str | None
    disconnected: asyncio.Event
    # Both stamped when the connection goes live (`DeviceLink._make_current`).
    connected_at: float = 0.0
    last_data_at: float = 0.0
    inbound: asyncio.Queue[bytes] = dataclasses.field(default_factory=asyncio.Queue)
    pump: asyncio.Task[None] | None = None


class BleHeartRateStrap(DeviceLink[_StrapSession, StrapEvent]):
    """One heart-rate strap over bleak; implements `treadmilld.ble.strap_api.HeartRateStrap`."""

    def __init__(
        self,
        strap_id: str,
        target: TargetSelector,
        settings: StrapLinkSettings,
        *,
        clock: Clock,
        scanner_backend: ScannerBackend | None = None,
        client_backend: ClientBackend | None = None,
        gatt_backend: GattBackend | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`scanner_backend`/`client_backend` are bleak backend classes (the simulator's);
        `gatt_backend` replaces bleak altogether (tests of our own seam)."""
        super().__init__(strap_id, _KIND, target, settings, clock=clock, rng=rng)
        self._settings = settings
        self._latest: HeartRateReceived | None = None
        self._log = _log.bind(strap_id=strap_id)
        self._background = Background(
            on_error=lambda error: self._log.debug(
                "operation_failed_after_caller_left", error=repr(error)
            )
        )
        self._connector = DeviceConnector(
            gatt_or_bleak(gatt_backend, clock, scanner_backend, client_backend),
            settings,
            clock=clock,
            hints=_HINTS,
            on_late_connection=self._release_late_connection,
        )

    # ------------------------------------------------------------------ HeartRateStrap

    @property
    def strap_id(self) -> str:
        return self._id

    @property
    def latest(self) -> HeartRateReceived | None:
        return self._latest

    # (run, close, events and connection_state are DeviceLink's)

    # ------------------------------------------------------------------ DeviceLink: connect / end

    async def _open_session(self) -> _StrapSession:
        """One connect step: the session, live; raises `StrapConnectError`."""
        session = await self._open()
        now = self._make_current(session)
        self._log.info("strap_connected", address=session.address, name=session.name)
        self._events.publish(StrapConnected(address=session.address, name=session.name, at=now))
        session.pump = asyncio.create_task(self._pump(session), name=f"{self._id}-strap-pump")
        return session

    async def _open(self) -> _StrapSession:
        device = await self._connector.connect(
            lambda adv: is_strap_target(adv, self._target),
            f"heart-rate strap with {self._target.describe()}",
        )
        connection, address, name = device.connection, device.address, device.name
        session = _StrapSession(connection, address, name, device.disconnected)
        if not connection.has_characteristic(HEART_RATE_MEASUREMENT_UUID):
            await self._let_go(connection)
            raise StrapConnectError(
                f"{name or address} has no Heart Rate Measurement characteristic",
                HINT_NOT_A_STRAP,
            )
        try:
            await wait_for_on_clock(
                connection.subscribe(HEART_RATE_MEASUREMENT_UUID, session.inbound.put_nowait),
                self._settings.connect_timeout_s,
                self._clock,
            )
        except (GattError, TimeoutError) as error:
            await self._let_go(connection)
            raise StrapConnectError(
                f"subscribing to {name or address} failed: {error or 'timed out'}", HINT_CONNECT
            ) from error
        except BaseException:
            await self._let_go(connection)
            raise
        return session

    def _release_late_connection(self, connection: GattConnection) -> None:
        """A connect that finished after we gave up on it: let the strap go again."""
        self._log.info("strap_late_connection_released")
        self._background.spawn(self._let_go(connection))

    def _lost_event(self, cause: LinkLostCause, reason: str, at: float) -> StrapEvent:
        return StrapLost(cause=cause, reason=reason, at=at)

    async def _let_go(self, connection: GattConnection) -> None:
        failure = await self._connector.let_go(connection)
        if failure is not None:
            self._log.warning("strap_disconnect_failed", error=failure)

    # ------------------------------------------------------------------ notifications

    async def _pump(self, session: _StrapSession) -> None:
        """Decode notifications in the order they came; publish each reading."""
        while True:
            data = await session.inbound.get()
            try:
                measurement = decode_heart_rate_measurement(data)
            except CodecError as error:
                # Dropped, and no sign of life: a strap sending only garbage is a silent one.
                self._log.warning("heart_rate_dropped", data=data.hex(), error=str(error))
                continue
            now = self._clock.now()
            session.last_data_at = now
            reading = HeartRateReceived(
                bpm=measurement.heart_rate_bpm,
                contact=measurement.contact,
                rr_intervals=measurement.rr_intervals_s,
                at=now,
                energy_expended_kj=measurement.energy_expended_kj,
            )
            self._latest = reading
            self._events.publish(reading)


async def scan_straps(backend: GattBackend, timeout_s: float) -> list[DiscoveredStrap]:
    """Listen `timeout_s` through `backend` and list the heart-rate straps heard."""
    return straps_heard(await backend.scan(timeout_s))
