"""Opening one connection: find the treadmill, connect, and set it up.

Set-up reads Device Information, Feature and both ranges, decides how the Control Point is
written, and enables notifications one at a time. The result is a `LinkSession` that is
connected and subscribed but not yet the link's, with the `TreadmillCapabilities` learned:
`client.BleTreadmillLink` makes it current,
announces it and starts its pump. Every failure is a `ConnectStepError` whose `hint` says what
a person should check; the connection is let go first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Final, TypeVar

import structlog

from treadmilld.ble.api import DeviceInformation, TreadmillCapabilities
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.device_connect import (
    NO_ADAPTER_HINT,
    ConnectHints,
    DeviceConnectError,
    DeviceConnector,
)
from treadmilld.ble.discovery import is_target
from treadmilld.ble.gatt import (
    PROPERTY_WRITE,
    PROPERTY_WRITE_WITHOUT_RESPONSE,
    GattBackend,
    GattConnection,
    GattError,
)
from treadmilld.ble.quirks import Quirks, speed_from_deck
from treadmilld.ble.session import LinkSession
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
    FitnessMachineFeature,
    InclinationRange,
    MachineFeatures,
    SpeedRange,
    TargetSettingFeatures,
    decode_feature,
    decode_inclination_range,
    decode_speed_range,
)
from treadmilld.runtime.background import Background
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_for_on_clock

T = TypeVar("T")

_log = structlog.get_logger(__name__)

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
HINT_NO_ADAPTER: Final = NO_ADAPTER_HINT
_HINTS = ConnectHints(no_adapter=HINT_NO_ADAPTER, not_found=HINT_NOT_FOUND, connect=HINT_CONNECT)
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


# One connect attempt failed, set-up included; `hint` says what a person should check.
ConnectStepError = DeviceConnectError


class ConnectionOpener:
    """Finds, connects and sets up one treadmill per call of `open`."""

    def __init__(
        self,
        treadmill_id: str,
        target: TargetSelector,
        settings: LinkSettings,
        *,
        gatt: GattBackend,
        clock: Clock,
        background: Background,
    ) -> None:
        self._target = target
        self._settings = settings
        self._clock = clock
        self._background = background
        self._connector = DeviceConnector(
            gatt,
            settings,
            clock=clock,
            hints=_HINTS,
            on_late_connection=self._release_late_connection,
        )
        self._log = _log.bind(treadmill_id=treadmill_id)

    async def open(self) -> tuple[LinkSession, TreadmillCapabilities]:
        """A connected, set-up session and what it learned of the treadmill; raises
        `ConnectStepError` if any step fails."""
        settings = self._settings
        device = await self._connector.connect(
            lambda adv: is_target(adv, self._target), f"treadmill with {self._target.describe()}"
        )
        connection, address, name = device.connection, device.address, device.name
        session = LinkSession(
            connection=connection,
            name=name,
            quirks=settings.quirks_for(name),
            disconnected=device.disconnected,
        )
        try:
            capabilities = await wait_for_on_clock(
                self._set_up(session, address), settings.connect_timeout_s, self._clock
            )
        except (GattError, TimeoutError, ConnectStepError) as error:
            await self.disconnect_quietly(connection)
            if isinstance(error, ConnectStepError):
                raise
            raise ConnectStepError(
                f"setting up {name or address} failed: {error or 'timed out'}", HINT_SETUP
            ) from error
        except BaseException:
            await self.disconnect_quietly(connection)
            raise
        return session, capabilities

    async def disconnect_quietly(self, connection: GattConnection) -> None:
        failure = await self._connector.let_go(connection)
        if failure is not None:
            self._log.warning("disconnect_failed", error=failure)

    async def _set_up(self, session: LinkSession, address: str) -> TreadmillCapabilities:
        connection = session.connection
        if not connection.has_characteristic(TREADMILL_DATA_UUID):
            raise ConnectStepError(
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
        control = session.control
        control.has_control_point = connection.has_characteristic(CONTROL_POINT_UUID)
        if control.has_control_point:
            control.with_response = self._control_point_with_response(connection, session.quirks)
        control.unlock_pending = session.quirks.vendor_unlock is not None
        unit = session.quirks.speed_range_unit
        capabilities = TreadmillCapabilities(
            address=address,
            name=session.name,
            device_information=device_information,
            features=features or _NO_FEATURES,
            speed_range=(
                None
                if deck_speed_range is None
                else SpeedRange(
                    minimum_kmh=speed_from_deck(deck_speed_range.minimum_kmh, unit),
                    maximum_kmh=speed_from_deck(deck_speed_range.maximum_kmh, unit),
                    increment_kmh=speed_from_deck(deck_speed_range.increment_kmh, unit),
                )
            ),
            inclination_range=inclination_range,
            speed_needs_running_belt=session.quirks.start_gate,
        )
        await self._subscribe(session)
        return capabilities

    async def _subscribe(self, session: LinkSession) -> None:
        connection = session.connection

        def enqueue(uuid: str) -> Callable[[bytes], None]:
            # Runs in bleak's callback: only enqueue, the pump does the work in order.
            return lambda data: session.inbound.put_nowait((uuid, data))

        # One CCCD at a time with a gap: KingSmith drops CCCD writes < ~30 ms apart
        # (walkingpad-controller docs §2.2).
        uuids = [TREADMILL_DATA_UUID]
        if connection.has_characteristic(MACHINE_STATUS_UUID):
            uuids.append(MACHINE_STATUS_UUID)
        if session.control.has_control_point:
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

    def _control_point_with_response(self, connection: GattConnection, quirks: Quirks) -> bool:
        """Whether the Control Point is written with response (ATT Write Request).

        FTMS asks for Write (§4.16), and a stack refuses a Write Request on a characteristic
        without it; the Urevo E1L's Control Point is written with Write Without Response by every
        app (blak3r/treadspan captures). So: what the quirk says, else Write when the
        characteristic has it, else Write Without Response when that is all it has, else
        (properties unknown) Write.
        """
        properties = connection.properties(CONTROL_POINT_UUID)
        if quirks.control_point_without_response:
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
        self._background.spawn(self.disconnect_quietly(connection))


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
