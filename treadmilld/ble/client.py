"""`BleTreadmillLink`: one FTMS treadmill over bleak, behind the `TreadmillLink` seam.

Flow (docs/ble-client.md has the long form):
1. find the treadmill with our own bounded scan, connect with bounded attempts;
2. read Device Information, Feature and both ranges; enable notifications one at a time;
3. a pump task decodes notifications in order (bleak callbacks only enqueue);
4. a supervisor watches for a disconnect or silence (liveness) and reconnects with backoff.

The link never starts the belt by itself and never re-applies a target after a reconnect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final, TypeVar

import structlog

from treadmilld.ble.api import (
    SET_TARGET_SPEED_REQUEST,
    BeltNotMovingError,
    ConnectionState,
    ControlNotPermittedError,
    ControlRejectedError,
    ControlTimeoutError,
    DeviceInformation,
    LinkConnected,
    LinkError,
    LinkEvent,
    LinkLost,
    LinkLostCause,
    MachineStatusReceived,
    NotConnectedError,
    Telemetry,
    TelemetryReceived,
    TrainingStatusReceived,
    TreadmillCapabilities,
)
from treadmilld.ble.config import LinkSettings, ReconnectBackoff, TargetSelector
from treadmilld.ble.control import (
    INCLINATION_DECIMALS,
    clamp_to_range,
    rejection_error,
    speed_to_write,
)
from treadmilld.ble.discovery import is_target
from treadmilld.ble.gatt import (
    PROPERTY_WRITE,
    PROPERTY_WRITE_WITHOUT_RESPONSE,
    ConnectFailedError,
    GattBackend,
    GattConnection,
    GattError,
)
from treadmilld.ble.quirks import Quirks, SpeedUnit, speed_from_deck
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FIRMWARE_REVISION_UUID,
    HARDWARE_REVISION_UUID,
    INCLINATION_RANGE_UUID,
    MACHINE_STATUS_UUID,
    MANUFACTURER_NAME_UUID,
    MODEL_NUMBER_UUID,
    SERIAL_NUMBER_UUID,
    SOFTWARE_REVISION_UUID,
    SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    CodecError,
    ControlPermissionLost,
    ControlRequest,
    ControlResponse,
    FitnessMachineFeature,
    InclinationRange,
    MachineFeatures,
    RequestControl,
    Reset,
    ResetStatus,
    ResultCode,
    SetTargetInclination,
    SetTargetSpeed,
    SpeedRange,
    StartOrResume,
    StopKind,
    StopOrPause,
    StoppedBySafetyKey,
    StoppedOrPausedByUser,
    TargetSettingFeatures,
    TargetSpeedChanged,
    TreadmillData,
    TreadmillDataAssembler,
    decode_control_response,
    decode_feature,
    decode_inclination_range,
    decode_machine_status,
    decode_speed_range,
    decode_training_status,
    encode_control_request,
    merge_treadmill_data,
)
from treadmilld.ftms.vendor import incline_table_index, incline_table_value
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.fanout import FanOut
from treadmilld.runtime.waiting import sleep_until_set, until_set, wait_any, wait_for_on_clock

if TYPE_CHECKING:
    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

T = TypeVar("T")

_log = structlog.get_logger(__name__)

# `LinkLost.reason` texts (for people and logs; the engine reads `LinkLost.cause`).
REASON_CLOSED: Final = "link closed"
REASON_DROPPED: Final = "the treadmill or the Bluetooth stack dropped the connection"
REASON_NO_DATA_PREFIX: Final = "no treadmill data for"  # followed by the liveness timeout
REASON_PUMP_STOPPED: Final = "notification processing stopped unexpectedly"

HINT_NOT_FOUND: Final = (
    "is the treadmill on and in range? is another app connected (it stops advertising then)? "
    "does the target match what `treadmilld scan` shows?"
)
HINT_CONNECT: Final = (
    "is the treadmill on and in range? is another app connected? "
    "is the Bluetooth adapter out of connection slots?"
)
HINT_SETUP: Final = "the link dropped while setting up; is the treadmill in range?"
HINT_NOT_TREADMILL: Final = (
    "the device exposes no Treadmill Data (0x2ACD), so it is not an FTMS treadmill; "
    "check the configured address or name"
)
HINT_NO_ADAPTER: Final = "is Bluetooth available (adapter present and powered, BlueZ running)?"
HINT_UNLOCK_MISSING: Final = (
    "the quirk set asks for a vendor unlock write but the treadmill has no such characteristic. "
    'If it is not a KingSmith MC21, configure `quirks` without vendor_unlock (e.g. "kingsmith"); '
    "if it is, set quirks.vendor_unlock.characteristic_uuid (and payload_hex) to what its "
    "vendor app writes"
)
HINT_ILLUSTRATIVE_TABLE: Final = (
    "this incline table is an illustration picked by the advertised name; set the deck's own "
    "table (percent per index) as quirks.incline_table, or its inclines will be wrong"
)

_DEVICE_INFORMATION_FIELDS: Final = (
    ("manufacturer", MANUFACTURER_NAME_UUID),
    ("model", MODEL_NUMBER_UUID),
    ("serial_number", SERIAL_NUMBER_UUID),
    ("hardware_revision", HARDWARE_REVISION_UUID),
    ("firmware_revision", FIRMWARE_REVISION_UUID),
    ("software_revision", SOFTWARE_REVISION_UUID),
)

_NO_FEATURES: Final = FitnessMachineFeature(
    machine=MachineFeatures(0), target_settings=TargetSettingFeatures(0)
)


class _ConnectStepError(Exception):
    """One connect attempt failed; `hint` says what a person should check."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


# Events queued per subscriber before the oldest telemetry is dropped (runtime/fanout.py has
# the policy): minutes of records at any deck's rate, so only a stalled reader ever meets it.
SUBSCRIBER_QUEUE_SIZE = 1000


def _never_dropped(event: LinkEvent) -> bool:
    """Every event but telemetry must reach a lagging subscriber: a safety key, a console stop
    or a lost link changes what the engine must do; a record is superseded by the next one."""
    return not isinstance(event, TelemetryReceived)


@dataclasses.dataclass(eq=False)
class _Session:
    """Everything that lives exactly as long as one connection."""

    connection: GattConnection
    name: str | None
    quirks: Quirks
    connected_at: float
    last_data_at: float
    disconnected: asyncio.Event
    inbound: asyncio.Queue[tuple[str, bytes]] = dataclasses.field(default_factory=asyncio.Queue)
    assembler: TreadmillDataAssembler = dataclasses.field(default_factory=TreadmillDataAssembler)
    capabilities: TreadmillCapabilities | None = None
    # Ranges in the deck's own units (mph decks), used to clamp what is written.
    deck_speed_range: SpeedRange | None = None
    inclination_range: InclinationRange | None = None
    has_control_point: bool = False
    # How the Control Point is written: ATT Write Request, or Write Command (Urevo E1L).
    control_point_with_response: bool = True
    # The vendor unlock (KingSmith MC21) is still to be written before the next request.
    unlock_pending: bool = False
    control_granted: bool = False
    # Until this clock time, Reset and Control Permission Lost statuses are our own Reset's
    # echo (FTMS §4.17 sends them whoever reset the deck), not someone taking over.
    own_reset_until: float = -math.inf
    # The deck answered Request Control with Not Supported: it has no permission to give.
    control_request_not_supported: bool = False
    control_request_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    start_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    # Clock time a successful Start was sent and the belt has not been seen moving since.
    start_pending_since: float | None = None
    # Clock time the reported speed went above 0 (None while the belt stands still).
    moving_since: float | None = None
    belt_moving: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Counts stops and pauses (ours, the console's, the safety key, Reset). A command that
    # waited compares it before writing, so nothing that waited is sent after a stop.
    stops: int = 0
    # `stops` when the belt last began to move.
    stops_when_moving_began: int = 0
    # Stops and pauses the deck carried out (accepted, or reported by the deck itself), and
    # their count when the belt last began to move: more since then means it is coasting to a
    # halt. A refused Stop does not count: the belt it refused is not coasting.
    halts: int = 0
    halts_when_moving_began: int = 0
    first_record: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    pending_opcode: int | None = None
    pending_response: asyncio.Future[ControlResponse] | None = None
    pump: asyncio.Task[None] | None = None


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
        self._target = target
        self._settings = settings
        self._clock = clock
        if gatt_backend is None:
            from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - bleak lazily

            gatt_backend = BleakGattBackend(
                clock,
                scanner_backend=scanner_backend,
                client_backend=client_backend,
            )
        self._gatt = gatt_backend
        self._backoff = ReconnectBackoff(settings.backoff, rng)
        self._state = ConnectionState.DISCONNECTED
        self._capabilities: TreadmillCapabilities | None = None
        self._telemetry = Telemetry(data=TreadmillData(), received_at=None)
        self._events: FanOut[LinkEvent] = FanOut(
            f"link {treadmill_id}", maxsize=SUBSCRIBER_QUEUE_SIZE, keep=_never_dropped
        )
        self._session: _Session | None = None
        self._control_lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._closed = False
        self._run_done: asyncio.Event | None = None
        self._log = _log.bind(treadmill_id=treadmill_id)
        self._background = Background(
            on_error=lambda error: self._log.debug(
                "operation_failed_after_caller_left", error=repr(error)
            )
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
        return self._telemetry

    @property
    def quirks(self) -> Quirks | None:
        """The quirks in use on the current connection (None while disconnected)."""
        session = self._session
        return session.quirks if session is not None else None

    def events(self) -> AsyncIterator[LinkEvent]:
        return self._events.subscribe()

    def _emit(self, event: LinkEvent) -> None:
        self._events.publish(event)

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
                if isinstance(outcome, _ConnectStepError):
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

    async def _connect(self) -> _Session | _ConnectStepError:
        """One connect step: the session, or why it failed."""
        self._state = ConnectionState.CONNECTING
        try:
            return await self._establish()
        except _ConnectStepError as error:
            self._state = ConnectionState.DISCONNECTED
            return error
        except BaseException:
            self._state = ConnectionState.DISCONNECTED
            raise

    async def _establish(self) -> _Session:
        settings = self._settings
        try:
            found = await self._gatt.find(
                lambda adv: is_target(adv, self._target), settings.scan_timeout_s
            )
        except GattError as error:
            raise _ConnectStepError(str(error), HINT_NO_ADAPTER) from error
        if found is None:
            raise _ConnectStepError(
                f"no treadmill with {self._target.describe()} heard within "
                f"{settings.scan_timeout_s:g} s",
                HINT_NOT_FOUND,
            )
        address = found.advertisement.address
        name = found.advertisement.name
        disconnected = asyncio.Event()
        try:
            connection = await wait_for_on_clock(
                self._gatt.connect(
                    found, attempts=settings.connect_attempts, on_disconnect=disconnected.set
                ),
                settings.connect_timeout_s,
                self._clock,
                on_late_result=self._release_late_connection,
            )
        except TimeoutError:
            raise _ConnectStepError(
                f"connecting to {name or address} ({address}) took longer than "
                f"{settings.connect_timeout_s:g} s",
                HINT_CONNECT,
            ) from None
        except ConnectFailedError as error:
            raise _ConnectStepError(str(error), HINT_CONNECT) from error
        now = self._clock.now()
        session = _Session(
            connection=connection,
            name=name,
            quirks=settings.quirks_for(name),
            connected_at=now,
            last_data_at=now,
            disconnected=disconnected,
        )
        try:
            await wait_for_on_clock(
                self._set_up(session, address), settings.connect_timeout_s, self._clock
            )
        except (GattError, TimeoutError, _ConnectStepError) as error:
            await self._disconnect_quietly(connection)
            if isinstance(error, _ConnectStepError):
                raise
            raise _ConnectStepError(
                f"setting up {name or address} failed: {error or 'timed out'}", HINT_SETUP
            ) from error
        except BaseException:
            await self._disconnect_quietly(connection)
            raise
        return session

    async def _set_up(self, session: _Session, address: str) -> None:
        connection = session.connection
        if not connection.has_characteristic(TREADMILL_DATA_UUID):
            raise _ConnectStepError(
                f"{session.name or address} has no Treadmill Data characteristic",
                HINT_NOT_TREADMILL,
            )
        device_information = await self._read_device_information(connection)
        features = await self._read_optional(connection, FEATURE_UUID, decode_feature)
        deck_speed_range = await self._read_optional(
            connection, SPEED_RANGE_UUID, decode_speed_range
        )
        inclination_range = await self._read_optional(
            connection, INCLINATION_RANGE_UUID, decode_inclination_range
        )
        incline_table = session.quirks.incline_table
        if incline_table is not None:
            # The deck's own range (if any) is in index units or meaningless on such decks;
            # the table says what it can do.
            if inclination_range is not None:
                self._log.info(
                    "inclination_range_replaced",
                    deck_range=dataclasses.asdict(inclination_range),
                    reason="incline_table quirk",
                )
            inclination_range = incline_table_range(incline_table)
            if self._settings.quirks is None:
                self._log.warning(
                    "incline_table_illustrative",
                    quirks=session.quirks.name,
                    hint=HINT_ILLUSTRATIVE_TABLE,
                )
        session.deck_speed_range = deck_speed_range
        session.inclination_range = inclination_range
        session.has_control_point = connection.has_characteristic(CONTROL_POINT_UUID)
        if session.has_control_point:
            session.control_point_with_response = self._control_point_with_response(session)
        session.unlock_pending = session.quirks.vendor_unlock is not None
        unit = session.quirks.speed_range_unit
        speed_range_kmh = (
            None
            if deck_speed_range is None
            else SpeedRange(
                minimum_kmh=speed_from_deck(deck_speed_range.minimum_kmh, unit),
                maximum_kmh=speed_from_deck(deck_speed_range.maximum_kmh, unit),
                increment_kmh=speed_from_deck(deck_speed_range.increment_kmh, unit),
            )
        )
        session.capabilities = TreadmillCapabilities(
            address=address,
            name=session.name,
            device_information=device_information,
            features=features or _NO_FEATURES,
            speed_range=speed_range_kmh,
            inclination_range=inclination_range,
            speed_needs_running_belt=session.quirks.start_gate,
        )

        def enqueue(uuid: str) -> Callable[[bytes], None]:
            # Runs in bleak's callback: only enqueue, the pump does the work in order.
            return lambda data: session.inbound.put_nowait((uuid, data))

        # One CCCD at a time with a gap: KingSmith drops CCCD writes < ~30 ms apart
        # (walkingpad-controller docs §2.2).
        uuids = [TREADMILL_DATA_UUID]
        if connection.has_characteristic(MACHINE_STATUS_UUID):
            uuids.append(MACHINE_STATUS_UUID)
        if session.has_control_point:
            uuids.append(CONTROL_POINT_UUID)
        for index, uuid in enumerate(uuids):
            if index:
                await self._clock.sleep(self._settings.cccd_gap_s)
            await connection.subscribe(uuid, enqueue(uuid))
        if connection.has_characteristic(TRAINING_STATUS_UUID):
            # Optional (FTMS §4.10); last, so a deck whose Training Status cannot notify
            # leaves every subscription that matters in place.
            await self._clock.sleep(self._settings.cccd_gap_s)
            try:
                await connection.subscribe(TRAINING_STATUS_UUID, enqueue(TRAINING_STATUS_UUID))
            except GattError as error:
                if session.disconnected.is_set():
                    raise
                self._log.info(
                    "characteristic_not_subscribed",
                    characteristic=TRAINING_STATUS_UUID,
                    error=str(error),
                )

        # The link is up: fresh telemetry, then LinkConnected, then the pump starts so every
        # TelemetryReceived of this connection follows its LinkConnected.
        now = self._clock.now()
        session.connected_at = now
        session.last_data_at = now
        self._telemetry = Telemetry(data=TreadmillData(), received_at=None)
        self._capabilities = session.capabilities
        self._session = session
        self._state = ConnectionState.CONNECTED
        self._log.info(
            "link_connected",
            address=address,
            name=session.name,
            quirks=session.quirks.name,
            speed_range=dataclasses.asdict(speed_range_kmh) if speed_range_kmh else None,
            inclination_range=dataclasses.asdict(inclination_range) if inclination_range else None,
            controllable=session.has_control_point,
            control_point_write=(
                "with_response" if session.control_point_with_response else "without_response"
            ),
        )
        self._emit(LinkConnected(capabilities=session.capabilities, at=now))
        session.pump = asyncio.create_task(self._pump(session), name=f"{self._id}-pump")

    def _control_point_with_response(self, session: _Session) -> bool:
        """Whether the Control Point is written with response (ATT Write Request).

        FTMS asks for Write (§4.16), and a stack refuses a Write Request on a characteristic
        without it; the Urevo E1L's Control Point is written with Write Without Response by every
        app (blak3r/treadspan captures). So: what the quirk says, else Write when the
        characteristic has it, else Write Without Response when that is all it has, else
        (properties unknown) Write.
        """
        properties = session.connection.properties(CONTROL_POINT_UUID)
        if session.quirks.control_point_without_response:
            if properties and PROPERTY_WRITE_WITHOUT_RESPONSE not in properties:
                self._log.warning(
                    "control_point_write_mode_forced",
                    properties=sorted(properties),
                    hint="the quirks ask for Write Without Response, which this Control Point "
                    "does not declare; the stack may refuse it. Check control_point_without_"
                    "response in the quirks",
                )
            return False
        if PROPERTY_WRITE in properties:
            return True
        return PROPERTY_WRITE_WITHOUT_RESPONSE not in properties

    async def _read_device_information(self, connection: GattConnection) -> DeviceInformation:
        values: dict[str, str | None] = {}
        for field_name, uuid in _DEVICE_INFORMATION_FIELDS:
            values[field_name] = None
            if not connection.has_characteristic(uuid):
                continue
            try:
                raw = await self._read(connection, uuid)
            except (GattError, TimeoutError) as error:
                # Informational strings only (some decks guard them behind pairing): go on.
                self._log.info(
                    "device_information_unreadable", characteristic=uuid, error=repr(error)
                )
                continue
            text = raw.decode("utf-8", errors="replace").strip("\x00 ").strip()
            values[field_name] = text or None
        return DeviceInformation(**values)

    async def _read(self, connection: GattConnection, uuid: str) -> bytes:
        return await wait_for_on_clock(
            connection.read(uuid), self._settings.control_response_timeout_s, self._clock
        )

    async def _read_optional(
        self, connection: GattConnection, uuid: str, decode: Callable[[bytes], T]
    ) -> T | None:
        """Read and decode an optional characteristic; absent or malformed gives None."""
        if not connection.has_characteristic(uuid):
            # FTMS §4.11-4.12: a missing range means that target cannot be controlled.
            self._log.info("characteristic_missing", characteristic=uuid)
            return None
        raw = await self._read(connection, uuid)
        try:
            return decode(raw)
        except CodecError as error:
            self._log.warning(
                "characteristic_unreadable", characteristic=uuid, data=raw.hex(), error=str(error)
            )
            return None

    def _release_late_connection(self, connection: GattConnection) -> None:
        """A connect that finished after we gave up on it: let the treadmill go again."""
        self._log.info("late_connection_released")
        self._background.spawn(self._disconnect_quietly(connection))

    async def _disconnect_quietly(self, connection: GattConnection) -> None:
        try:
            await wait_for_on_clock(
                connection.disconnect(), self._settings.connect_timeout_s, self._clock
            )
        except (GattError, TimeoutError) as error:
            self._log.warning("disconnect_failed", error=str(error) or "timed out")

    # ------------------------------------------------------------------ supervise / end

    async def _supervise(self, session: _Session) -> tuple[LinkLostCause, str]:
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

    async def _end_session(self, session: _Session, reason: str, cause: LinkLostCause) -> None:
        if self._session is not session:
            return
        self._session = None
        self._state = ConnectionState.DISCONNECTED
        session.assembler.reset()  # a partial record never completes across links (FTMS §4.18)
        pending = session.pending_response
        if pending is not None and not pending.done():
            pending.set_exception(
                NotConnectedError(
                    f"{self._id}: the link went down while waiting for an answer ({reason}); "
                    "it reconnects by itself, retry after LinkConnected"
                )
            )
        now = self._clock.now()
        level = self._log.info if cause is LinkLostCause.CLOSED else self._log.warning
        level("link_lost", reason=reason, cause=cause.value)
        self._emit(LinkLost(reason=reason, at=now, cause=cause))
        if session.pump is not None:
            await self._reap(session.pump)
        if not session.disconnected.is_set():
            await self._disconnect_quietly(session.connection)

    # ------------------------------------------------------------------ notifications

    async def _pump(self, session: _Session) -> None:
        while True:
            uuid, data = await session.inbound.get()
            try:
                if uuid == TREADMILL_DATA_UUID:
                    self._on_treadmill_data(session, data)
                elif uuid == MACHINE_STATUS_UUID:
                    self._on_machine_status(session, data)
                elif uuid == CONTROL_POINT_UUID:
                    self._on_control_response(session, data)
                elif uuid == TRAINING_STATUS_UUID:
                    self._on_training_status(data)
            except CodecError as error:
                # Malformed data from a deck is logged and dropped, never a crash.
                self._log.warning(
                    "notification_dropped", characteristic=uuid, data=data.hex(), error=str(error)
                )

    def _on_treadmill_data(self, session: _Session, data: bytes) -> None:
        now = self._clock.now()
        session.last_data_at = now  # a fragment is a sign of life too
        record = session.assembler.feed(data)
        if record is None:
            return
        if session.quirks.reported_speed_unit is SpeedUnit.MPH:
            record = _record_to_kmh(record)
        telemetry = Telemetry(
            data=merge_treadmill_data(self._telemetry.data, record), received_at=now
        )
        self._telemetry = telemetry
        session.first_record.set()
        if telemetry.belt_moving:
            if session.moving_since is None:
                session.moving_since = now
                session.stops_when_moving_began = session.stops
                session.halts_when_moving_began = session.halts
                session.start_pending_since = None
                session.belt_moving.set()
        elif session.moving_since is not None:
            session.moving_since = None
            session.belt_moving.clear()
        self._emit(TelemetryReceived(record=record, telemetry=telemetry, at=now))

    def _on_machine_status(self, session: _Session, data: bytes) -> None:
        status = decode_machine_status(data)
        if (
            isinstance(status, ResetStatus | ControlPermissionLost)
            and self._clock.now() <= session.own_reset_until
        ):
            session.control_granted = False
            self._log.info("own_reset_status", status=type(status).__name__)
            return
        if isinstance(status, ControlPermissionLost):
            # FTMS §4.17: permission is gone; the next command asks again (not now: the console
            # or another app took over, and grabbing it back would fight a person).
            session.control_granted = False
        elif isinstance(status, ResetStatus):
            session.control_granted = False
            session.start_pending_since = None
            session.stops += 1
            session.halts += 1
        elif isinstance(status, StoppedOrPausedByUser | StoppedBySafetyKey):
            session.start_pending_since = None
            session.stops += 1
            session.halts += 1
        if isinstance(status, TargetSpeedChanged):
            # Same unit as the deck's Set Target Speed unless the quirks say otherwise.
            unit = session.quirks.effective_status_speed_unit
            status = TargetSpeedChanged(speed_kmh=speed_from_deck(status.speed_kmh, unit))
        self._log.info("machine_status", status=type(status).__name__)
        self._emit(MachineStatusReceived(status=status, at=self._clock.now()))

    def _on_training_status(self, data: bytes) -> None:
        # Reserved and vendor values decode (status stays an int); only bad bytes raise.
        status = decode_training_status(data)
        self._log.debug("training_status", status=status.status, text=status.text)
        self._emit(TrainingStatusReceived(status=status, at=self._clock.now()))

    def _on_control_response(self, session: _Session, data: bytes) -> None:
        response = decode_control_response(data)
        pending = session.pending_response
        if pending is None or pending.done():
            self._log.warning("control_response_unexpected", data=data.hex())
            return
        if response.request_opcode != session.pending_opcode:
            self._log.warning(
                "control_response_mismatch",
                data=data.hex(),
                expected_opcode=session.pending_opcode,
            )
            return
        pending.set_result(response)

    # ------------------------------------------------------------------ control channel

    def _require_session(self, what: str) -> _Session:
        session = self._session
        if session is None:
            raise NotConnectedError(
                f"{self._id}: cannot {what}, the treadmill is not connected; the link reconnects "
                "by itself, retry after LinkConnected"
            )
        return session

    def _require_control_point(self, session: _Session, what: str) -> None:
        if not session.has_control_point:
            raise ControlRejectedError(
                f"{self._id}: cannot send {what}, the treadmill has no Control Point (it can "
                "only be watched, not driven)",
                request=what,
                result=ResultCode.NOT_SUPPORTED,
            )

    async def _execute(self, session: _Session, request: ControlRequest, what: str) -> None:
        """One Control Point procedure: write, wait for its response, check the result."""
        payload = encode_control_request(request)
        async with self._control_lock:
            if self._session is not session:
                self._require_session(what)
                raise NotConnectedError(
                    f"{self._id}: the link reconnected before {what} was sent; retry it"
                )
            if session.unlock_pending:
                session.unlock_pending = False  # once per connection, whatever comes of it
                await self._vendor_unlock(session)
            # If the caller gives up (an emergency stop cancels the engine mid-write), the
            # deck is still busy with this procedure and refuses the next write with ATT 0xFE
            # (FTMS §4.16.3): keep the channel (this lock) until it answers or times out.
            response = await self._background.shielded(
                self._procedure(session, payload, what), wait_when_cancelled=True
            )
        if response.result is not ResultCode.SUCCESS:
            # Info, not warning: the typed error reaches the caller, which knows whether this
            # matters (a Stop refused because the belt is already stopping does not).
            self._log.info("control_rejected", request=what, result=response.result.name)
            raise rejection_error(self._id, what, response.result)
        self._log.debug("control_succeeded", request=what)

    async def _vendor_unlock(self, session: _Session) -> None:
        """The vendor write some decks need before FTMS control works (KingSmith MC21).

        A deck without the characteristic, or a write that fails, is logged and driven anyway:
        the requests that follow say whether the deck listens (they time out if not).
        """
        unlock = session.quirks.vendor_unlock
        if unlock is None:
            return
        connection = session.connection
        uuid = unlock.characteristic_uuid
        if not connection.has_characteristic(uuid):
            self._log.warning(
                "vendor_unlock_missing",
                characteristic=uuid,
                quirks=session.quirks.name,
                hint=HINT_UNLOCK_MISSING,
            )
            return
        properties = connection.properties(uuid)
        with_response = PROPERTY_WRITE in properties or (
            PROPERTY_WRITE_WITHOUT_RESPONSE not in properties
        )
        write = connection.write if with_response else connection.write_without_response
        try:
            await wait_for_on_clock(
                write(uuid, unlock.payload), self._settings.control_response_timeout_s, self._clock
            )
        except (GattError, TimeoutError) as error:
            self._log.warning(
                "vendor_unlock_failed",
                characteristic=uuid,
                error=str(error) or "timed out",
                hint="control requests may go unanswered; the unlock is tried again after a "
                "reconnect",
            )
            return
        self._log.info("vendor_unlock_sent", characteristic=uuid, data=unlock.payload_hex)

    async def _procedure(self, session: _Session, payload: bytes, what: str) -> ControlResponse:
        # The future exists before the write, so an answer can never arrive unobserved.
        response_future: asyncio.Future[ControlResponse] = (
            asyncio.get_running_loop().create_future()
        )
        session.pending_opcode = payload[0]
        session.pending_response = response_future
        try:
            return await wait_for_on_clock(
                self._write_and_wait(session, payload, response_future, what),
                self._settings.control_response_timeout_s,
                self._clock,
            )
        except TimeoutError:
            self._log.warning("control_timeout", request=what, data=payload.hex())
            raise ControlTimeoutError(
                f"{self._id}: no answer to {what} within "
                f"{self._settings.control_response_timeout_s:g} s. The treadmill may not "
                "support remote control or be busy; check its console and retry"
            ) from None
        finally:
            session.pending_opcode = None
            session.pending_response = None

    async def _write_and_wait(
        self,
        session: _Session,
        payload: bytes,
        response_future: asyncio.Future[ControlResponse],
        what: str,
    ) -> ControlResponse:
        connection = session.connection
        write = (
            connection.write
            if session.control_point_with_response
            else connection.write_without_response
        )
        try:
            await write(CONTROL_POINT_UUID, payload)
        except GattError as error:
            raise LinkError(
                f"{self._id}: writing {what} failed ({error}); if the link is dropping it "
                "reconnects by itself, retry after LinkConnected"
            ) from error
        return await response_future

    async def _ensure_control(self, session: _Session) -> None:
        async with session.control_request_lock:
            if session.control_granted or session.control_request_not_supported:
                return
            try:
                await self._execute(session, RequestControl(), "Request Control")
            except ControlRejectedError as error:
                if error.result is not ResultCode.NOT_SUPPORTED:
                    raise
                # The deck has no control permission to hand out (FTMS lets a server answer
                # an opcode it does not support with Not Supported, §4.16.2); commands go to
                # it directly, as on decks that never need it (Urevo E1L: Kinomap sends Set
                # Target Inclination first and gets Success, blak3r/treadspan captures).
                session.control_request_not_supported = True
                self._log.info("control_request_not_supported")
                return
            session.control_granted = True
            self._log.info("control_granted")

    async def _command(
        self,
        session: _Session,
        request: ControlRequest,
        what: str,
        *,
        ask_control_first: bool = True,
    ) -> None:
        """A command that needs control permission (everything but Request Control).

        With `ask_control_first` False (Stop and Pause) no Request Control goes before it: a
        stop must not wait behind a request a deck may never answer (a KingSmith MC21 without
        its unlock, a deck that ignores Request Control). It is asked for only if the deck
        answers the command itself with Control Not Permitted.
        """
        self._require_control_point(session, what)
        if ask_control_first and session.quirks.request_control_first:
            await self._ensure_control(session)
        try:
            await self._execute(session, request, what)
        except ControlNotPermittedError:
            if session.control_request_not_supported:
                raise  # the deck refuses control and cannot be asked for it
            # Permission was lost without a status, or never asked for (FS-/SF-T decks, a
            # Stop): ask once, then retry the command once.
            session.control_granted = False
            self._log.info("control_rerequested", request=what)
            await self._ensure_control(session)
            await self._execute(session, request, what)

    # ------------------------------------------------------------------ TreadmillLink: commands

    async def start_belt(self) -> None:
        session = self._require_session("start the belt")
        self._require_control_point(session, "Start")
        stops_before = session.stops
        async with session.start_lock:
            # Whether the belt moves is only known from data: wait for the first record.
            if not await sleep_until_set(
                session.first_record, self._settings.liveness_timeout_s, self._clock
            ):
                raise LinkError(
                    f"{self._id}: no treadmill data yet, so whether the belt is moving is "
                    "unknown; not sending Start. Retry in a moment"
                )
            if session.stops != stops_before:
                raise LinkError(
                    f"{self._id}: the belt was stopped while Start waited; not starting it"
                )
            if self._telemetry.belt_moving and session.stops == session.stops_when_moving_began:
                # Running: a second Start is at best refused, at worst a stop (TM11GY). A belt
                # still coasting after a stop or pause does get its Start (resume).
                self._log.info("start_skipped", reason="belt already moving")
                return
            pending_since = session.start_pending_since
            if pending_since is not None and (
                session.quirks.start_toggles_belt
                or self._clock.now() - pending_since < self._settings.start_gate_timeout_s
            ):
                # A second Start while the belt spins up stops it on some decks (TM11GY).
                self._log.info("start_skipped", reason="start already sent, belt spinning up")
                return
            await self._command(session, StartOrResume(), "Start")
            session.start_pending_since = self._clock.now()

    async def set_target_speed(self, speed_kmh: float) -> float:
        what = SET_TARGET_SPEED_REQUEST
        session = self._require_session("set the speed")
        self._require_control_point(session, what)
        deck_range = session.deck_speed_range
        if deck_range is None:
            raise ControlRejectedError(
                f"{self._id}: the treadmill exposes no Supported Speed Range, so its speed "
                "cannot be controlled",
                request=what,
                result=ResultCode.NOT_SUPPORTED,
            )
        quirks = session.quirks
        deck_value, written_kmh = speed_to_write(
            speed_kmh,
            deck_range,
            range_unit=quirks.speed_range_unit,
            target_unit=quirks.target_speed_unit,
        )
        lowest_kmh = speed_from_deck(deck_range.minimum_kmh, quirks.speed_range_unit)
        highest_kmh = speed_from_deck(deck_range.maximum_kmh, quirks.speed_range_unit)
        if not lowest_kmh <= speed_kmh <= highest_kmh:
            self._log.info("target_clamped", target="speed", asked=speed_kmh, written=written_kmh)
        if session.quirks.start_gate:
            await self._wait_for_belt(session, stops_before=session.stops)
        # On mph decks the value encoded is mph, in the same 0.01 resolution (TM11GY, JFTM).
        await self._command(session, SetTargetSpeed(speed_kmh=deck_value), what)
        return written_kmh

    async def _wait_for_belt(self, session: _Session, *, stops_before: int) -> None:
        """Start gate (KingSmith): the belt moves, and has been moving for the settle time.

        A stop or pause while waiting cancels the speed change: it is never sent afterwards.
        """
        settings = self._settings
        if not await sleep_until_set(
            session.belt_moving, settings.start_gate_timeout_s, self._clock
        ):
            raise BeltNotMovingError(
                f"{self._id}: the belt did not start moving within "
                f"{settings.start_gate_timeout_s:g} s, and this treadmill must not get a speed "
                "while standing still; start the belt first (start_belt or the console)"
            )
        moving_since = session.moving_since
        if moving_since is not None:
            settle_left = moving_since + settings.start_gate_settle_s - self._clock.now()
            if settle_left > 0:
                await self._clock.sleep(settle_left)
        if session.stops != stops_before:
            raise BeltNotMovingError(
                f"{self._id}: the belt was stopped or paused while this speed change waited "
                "for it; the speed was not sent. Start the belt again first"
            )
        if not session.belt_moving.is_set():
            raise BeltNotMovingError(
                f"{self._id}: the belt stopped while settling after Start; start it again first"
            )

    async def set_target_inclination(self, inclination_pct: float) -> float:
        what = "Set Target Inclination"
        session = self._require_session("set the incline")
        self._require_control_point(session, what)
        table = session.quirks.incline_table
        if table is not None:
            return await self._set_incline_by_table(session, table, inclination_pct, what)
        incline_range = session.inclination_range
        if incline_range is None:
            raise ControlRejectedError(
                f"{self._id}: the treadmill exposes no Supported Inclination Range, so its "
                "incline cannot be controlled",
                request=what,
                result=ResultCode.NOT_SUPPORTED,
            )
        value = clamp_to_range(
            inclination_pct,
            incline_range.minimum_pct,
            incline_range.maximum_pct,
            incline_range.increment_pct,
            decimals=INCLINATION_DECIMALS,
            what="target inclination",
        )
        if not incline_range.minimum_pct <= inclination_pct <= incline_range.maximum_pct:
            self._log.info("target_clamped", target="incline", asked=inclination_pct, written=value)
        await self._command(session, SetTargetInclination(inclination_pct=value), what)
        return value

    async def _set_incline_by_table(
        self, session: _Session, table: tuple[float, ...], inclination_pct: float, what: str
    ) -> float:
        """Incline-table decks (Kettler, iConcept: qdomyos-zwift device classes) take the index
        of a table entry as the Set Target Inclination parameter (raw sint16 = index).

        The highest entry at or below the asked percent is written, so the belt never inclines
        more than asked (within the table); the percent of that entry is returned.
        """
        if not math.isfinite(inclination_pct):
            raise LinkError(
                f"target inclination {inclination_pct!r} is not a finite number; send a number "
                "in range"
            )
        clamped = min(max(inclination_pct, table[0]), table[-1])
        index = incline_table_index(table, clamped)
        value = incline_table_value(table, index)
        if clamped != inclination_pct:
            self._log.info("target_clamped", target="incline", asked=inclination_pct, written=value)
        # The encoder scales percent by 10 (0.1 % resolution): index / 10 puts the index itself
        # on the wire.
        await self._command(session, SetTargetInclination(inclination_pct=index / 10), what)
        return value

    async def reset_targets(self) -> None:
        what = "Reset"
        session = self._require_session("reset the targets")
        self._require_control_point(session, what)
        # The deck may notify its Reset status before or after it answers, so the window opens
        # before the write and stays open one answer time after it.
        session.own_reset_until = math.inf
        try:
            await self._command(session, Reset(), what)
        finally:
            session.own_reset_until = self._clock.now() + self._settings.control_response_timeout_s
        session.control_granted = False
        session.start_pending_since = None
        self._log.info("targets_reset")

    async def pause_belt(self) -> None:
        await self._stop_or_pause(StopKind.PAUSE, "Pause")

    async def stop_belt(self) -> None:
        await self._stop_or_pause(StopKind.STOP, "Stop")

    async def _stop_or_pause(self, kind: StopKind, what: str) -> None:
        session = self._require_session(what.lower())
        # A stop or pause carried out since the belt began moving means it is coasting to a
        # halt already.
        coasting = session.halts != session.halts_when_moving_began
        session.stops += 1  # before the write: a speed change waiting at the gate gives up
        try:
            await self._command(session, StopOrPause(kind=kind), what, ask_control_first=False)
            session.halts += 1
        except ControlRejectedError as error:
            # FTMS answers Stop on a stopped belt with Operation Failed (FTMS §4.16.2.22): a belt
            # standing still, or coasting after an accepted stop, is where the caller wants it.
            if error.result is not ResultCode.OPERATION_FAILED or (
                self._telemetry.belt_moving and not coasting
            ):
                raise
            self._log.info("stop_not_needed", request=what, reason="belt already stopped")
        session.start_pending_since = None


def _record_to_kmh(record: TreadmillData) -> TreadmillData:
    """A record from an mph deck with its speeds in km/h."""
    return dataclasses.replace(
        record,
        instantaneous_speed_kmh=(
            None
            if record.instantaneous_speed_kmh is None
            else speed_from_deck(record.instantaneous_speed_kmh, SpeedUnit.MPH)
        ),
        average_speed_kmh=(
            None
            if record.average_speed_kmh is None
            else speed_from_deck(record.average_speed_kmh, SpeedUnit.MPH)
        ),
    )


def incline_table_range(table: tuple[float, ...]) -> InclinationRange:
    """The inclination range an incline table stands for, for the engine to plan with.

    Minimum and maximum are the first and last entries. The increment is the largest step
    that has every entry on the grid `minimum + k * increment` (the greatest common divisor of
    the entries' distances from the first, to 0.01 %): on an evenly spaced table that is its
    spacing, so every value the engine plans is one the deck can take. On an uneven table the
    grid is finer than some of its gaps, and the link writes the entry at or below.
    """
    ticks = [round((entry - table[0]) * 100) for entry in table]
    step = 0
    for tick in ticks:
        step = math.gcd(step, tick)
    return InclinationRange(
        minimum_pct=table[0],
        maximum_pct=table[-1],
        # One entry only: no step at all; the wire resolution (0.1 %) stands in for it.
        increment_pct=step / 100 if step else 0.1,
    )
