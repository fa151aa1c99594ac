"""`BleHeartRateStrap`: one Heart Rate Service strap over bleak, behind the `HeartRateStrap` seam.

Flow (docs/ble-client.md, "Heart-rate straps"):
1. find the strap with our own bounded scan (by its configured address or name, and the Heart
   Rate Service UUID 0x180D in its advertisement), connect with bounded attempts;
2. check it has Heart Rate Measurement (0x2A37) and subscribe to it; the callback only enqueues;
3. a pump task decodes notifications in order (`treadmilld.ftms`), a malformed one is logged
   and dropped;
4. a disconnect, or no notification for `liveness_timeout_s`, ends the connection; it is found
   and connected again after a capped, jittered backoff (`ReconnectBackoff`), as a treadmill is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Final

import structlog

from treadmilld.ble.api import ConnectionState, LinkLostCause
from treadmilld.ble.config import ReconnectBackoff, StrapLinkSettings, TargetSelector
from treadmilld.ble.device_connect import (
    NO_ADAPTER_HINT,
    ConnectHints,
    DeviceConnectError,
    find_and_connect,
)
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
from treadmilld.runtime.fanout import FanOut
from treadmilld.runtime.waiting import sleep_until_set, until_set, wait_any, wait_for_on_clock

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

_log = structlog.get_logger(__name__)

REASON_CLOSED: Final = "strap link closed"
REASON_DROPPED: Final = "the strap or the Bluetooth stack dropped the connection"
REASON_NO_DATA_PREFIX: Final = "no heart rate for"  # followed by the liveness timeout
REASON_PUMP_STOPPED: Final = "notification processing stopped unexpectedly"

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


def _never_dropped(event: StrapEvent) -> bool:
    """A reading is superseded by the next one; a connect or a loss is not."""
    return not isinstance(event, HeartRateReceived)


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


class StrapConnectError(Exception):
    """One connect step failed; `hint` says what a person should check."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclasses.dataclass(eq=False)
class _StrapSession:
    """What lives exactly as long as one connection."""

    connection: GattConnection
    address: str
    name: str | None
    connected_at: float
    last_data_at: float
    disconnected: asyncio.Event
    inbound: asyncio.Queue[bytes] = dataclasses.field(default_factory=asyncio.Queue)
    pump: asyncio.Task[None] | None = None


class BleHeartRateStrap:
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
        if gatt_backend is None:
            from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - bleak lazily

            gatt_backend = BleakGattBackend(
                clock, scanner_backend=scanner_backend, client_backend=client_backend
            )
        self._id = strap_id
        self._target = target
        self._settings = settings
        self._clock = clock
        self._gatt = gatt_backend
        self._backoff = ReconnectBackoff(settings.backoff, rng)
        self._state = ConnectionState.DISCONNECTED
        self._events: FanOut[StrapEvent] = FanOut(
            f"strap {strap_id}", maxsize=SUBSCRIBER_QUEUE_SIZE, keep=_never_dropped
        )
        self._session: _StrapSession | None = None
        self._latest: HeartRateReceived | None = None
        self._closing = asyncio.Event()
        self._closed = False
        self._run_done: asyncio.Event | None = None
        self._log = _log.bind(strap_id=strap_id)
        self._background = Background(
            on_error=lambda error: self._log.debug(
                "operation_failed_after_caller_left", error=repr(error)
            )
        )

    # ------------------------------------------------------------------ HeartRateStrap

    @property
    def strap_id(self) -> str:
        return self._id

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def latest(self) -> HeartRateReceived | None:
        return self._latest

    def events(self) -> AsyncIterator[StrapEvent]:
        return self._events.subscribe()

    async def run(self) -> None:
        if self._run_done is not None:
            raise RuntimeError(f"{self._id}: run() is already running; call it once per strap")
        self._run_done = asyncio.Event()
        failures = 0
        try:
            while not self._closing.is_set():
                outcome = await until_set(self._connect(), self._closing)
                if outcome is None:
                    break
                if isinstance(outcome, StrapConnectError):
                    failures += 1
                    delay = self._backoff.next_delay()
                    self._log.warning(
                        "strap_connect_failed",
                        target=self._target.describe(),
                        error=str(outcome),
                        hint=outcome.hint,
                        attempt=failures,
                        retry_in_s=round(delay, 2),
                    )
                    await sleep_until_set(self._closing, delay, self._clock)
                    continue
                failures = 0
                session = outcome
                cause, reason = await self._supervise(session)
                healthy_for = self._clock.now() - session.connected_at
                await self._end_session(session, cause, reason)
                if healthy_for >= self._settings.backoff.reset_after_healthy_s:
                    self._backoff.reset()
                if self._closing.is_set():
                    break
                delay = self._backoff.next_delay()
                self._log.info(
                    "strap_reconnect_scheduled", retry_in_s=round(delay, 2), after=reason
                )
                await sleep_until_set(self._closing, delay, self._clock)
        finally:
            current = self._session
            if current is not None:
                await self._end_session(current, LinkLostCause.CLOSED, REASON_CLOSED)
            self._state = ConnectionState.DISCONNECTED
            self._closed = True
            self._events.close()
            self._run_done.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closing.set()
        if self._run_done is not None:
            await self._run_done.wait()
        else:
            self._closed = True
            self._events.close()
        self._log.info("strap_link_closed")

    # ------------------------------------------------------------------ connect

    async def _connect(self) -> _StrapSession | StrapConnectError:
        self._state = ConnectionState.CONNECTING
        try:
            session = await self._open()
        except StrapConnectError as error:
            self._state = ConnectionState.DISCONNECTED
            return error
        except BaseException:
            self._state = ConnectionState.DISCONNECTED
            raise
        now = self._clock.now()
        session.connected_at = now
        session.last_data_at = now
        self._session = session
        self._state = ConnectionState.CONNECTED
        self._log.info("strap_connected", address=session.address, name=session.name)
        self._events.publish(StrapConnected(address=session.address, name=session.name, at=now))
        session.pump = asyncio.create_task(self._pump(session), name=f"{self._id}-strap-pump")
        return session

    async def _open(self) -> _StrapSession:
        settings = self._settings
        try:
            device = await find_and_connect(
                self._gatt,
                lambda adv: is_strap_target(adv, self._target),
                looking_for=f"heart-rate strap with {self._target.describe()}",
                scan_timeout_s=settings.scan_timeout_s,
                connect_timeout_s=settings.connect_timeout_s,
                connect_attempts=settings.connect_attempts,
                clock=self._clock,
                hints=_HINTS,
                on_late_connection=self._release_late_connection,
            )
        except DeviceConnectError as error:
            raise StrapConnectError(str(error), error.hint) from error.__cause__
        connection, address, name = device.connection, device.address, device.name
        disconnected = device.disconnected
        now = self._clock.now()
        session = _StrapSession(
            connection=connection,
            address=address,
            name=name,
            connected_at=now,
            last_data_at=now,
            disconnected=disconnected,
        )
        if not connection.has_characteristic(HEART_RATE_MEASUREMENT_UUID):
            await self._disconnect(connection)
            raise StrapConnectError(
                f"{name or address} has no Heart Rate Measurement characteristic",
                HINT_NOT_A_STRAP,
            )
        try:
            await wait_for_on_clock(
                connection.subscribe(HEART_RATE_MEASUREMENT_UUID, session.inbound.put_nowait),
                settings.connect_timeout_s,
                self._clock,
            )
        except (GattError, TimeoutError) as error:
            await self._disconnect(connection)
            raise StrapConnectError(
                f"subscribing to {name or address} failed: {error or 'timed out'}", HINT_CONNECT
            ) from error
        except BaseException:
            await self._disconnect(connection)
            raise
        return session

    def _release_late_connection(self, connection: GattConnection) -> None:
        """A connect that finished after we gave up on it: let the strap go again."""
        self._log.info("strap_late_connection_released")
        self._background.spawn(self._disconnect(connection))

    async def _disconnect(self, connection: GattConnection) -> None:
        try:
            await wait_for_on_clock(
                connection.disconnect(), self._settings.connect_timeout_s, self._clock
            )
        except (GattError, TimeoutError) as error:
            self._log.warning("strap_disconnect_failed", error=str(error) or "timed out")

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

    # ------------------------------------------------------------------ supervise / end

    async def _supervise(self, session: _StrapSession) -> tuple[LinkLostCause, str]:
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

    async def _end_session(self, session: _StrapSession, cause: LinkLostCause, reason: str) -> None:
        if self._session is not session:
            return
        self._session = None
        self._state = ConnectionState.DISCONNECTED
        level = self._log.info if cause is LinkLostCause.CLOSED else self._log.warning
        level("strap_lost", reason=reason, cause=cause.value)
        self._events.publish(StrapLost(cause=cause, reason=reason, at=self._clock.now()))
        if session.pump is not None:
            session.pump.cancel()
            await asyncio.wait({session.pump})
            if not session.pump.cancelled() and (error := session.pump.exception()) is not None:
                self._log.error("strap_pump_failed", error=repr(error))
        if not session.disconnected.is_set():
            await self._disconnect(session.connection)


async def scan_straps(backend: GattBackend, timeout_s: float) -> list[DiscoveredStrap]:
    """Listen `timeout_s` through `backend` and list the heart-rate straps heard."""
    return straps_heard(await backend.scan(timeout_s))
