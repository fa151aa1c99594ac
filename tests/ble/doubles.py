"""Test doubles of our own GATT seam (`treadmilld.ble.gatt`), named by behaviour.

For narrow unit tests only; the real coverage runs the real BleakClient against the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from treadmilld.ble.gatt import (
    Advertisement,
    FoundDevice,
    GattConnection,
    GattError,
    NotificationCallback,
)
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FTMS_SERVICE_UUID,
    INCLINATION_RANGE_UUID,
    MACHINE_STATUS_UUID,
    MANUFACTURER_NAME_UUID,
    SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlOpcode,
    ControlResponse,
    FitnessMachineFeature,
    FtmsServiceData,
    InclinationRange,
    MachineFeatures,
    MachineType,
    ResultCode,
    SpeedRange,
    TargetSettingFeatures,
    encode_control_response,
    encode_feature,
    encode_ftms_service_data,
    encode_inclination_range,
    encode_speed_range,
)
from treadmilld.runtime.clock import Clock

STANDARD_VALUES: dict[str, bytes] = {
    FEATURE_UUID: encode_feature(
        FitnessMachineFeature(
            machine=MachineFeatures.INCLINATION,
            target_settings=TargetSettingFeatures.SPEED | TargetSettingFeatures.INCLINATION,
        )
    ),
    SPEED_RANGE_UUID: encode_speed_range(SpeedRange(0.5, 12.0, 0.1)),
    INCLINATION_RANGE_UUID: encode_inclination_range(InclinationRange(0.0, 10.0, 0.5)),
}


class ObedientDeck:
    """A treadmill that answers every Control Point request with Success, and sends Treadmill
    Data only when a test calls `push`. Serves as both `GattBackend` and `GattConnection`."""

    notifiable: tuple[str, ...] = (TREADMILL_DATA_UUID, MACHINE_STATUS_UUID, CONTROL_POINT_UUID)
    # As FTMS lays the Control Point out (§4.16: Write, Indicate).
    control_point_properties: frozenset[str] = frozenset({"write", "indicate"})

    def __init__(
        self,
        clock: Clock,
        *,
        name: str = "UNIT-TM",
        address: str = "C0:00:00:00:00:01",
        values: dict[str, bytes] | None = None,
    ) -> None:
        self.clock = clock
        self.name = name
        self._address = address
        self.values = dict(STANDARD_VALUES if values is None else values)
        self.callbacks: dict[str, NotificationCallback] = {}
        self.subscribed_at: list[tuple[str, float]] = []
        self.written: list[bytes] = []
        # (characteristic, bytes, with response) of every write, in order.
        self.writes: list[tuple[str, bytes, bool]] = []
        self.connected = False
        self._on_disconnect: Callable[[], None] | None = None

    # -- GattBackend
    def advertisement(self) -> Advertisement:
        service_data = encode_ftms_service_data(
            FtmsServiceData(available=True, machine_types=MachineType.TREADMILL)
        )
        return Advertisement(
            address=self._address,
            name=self.name,
            rssi=-40,
            service_uuids=(FTMS_SERVICE_UUID,),
            service_data={FTMS_SERVICE_UUID: service_data},
        )

    async def find(
        self, matches: Callable[[Advertisement], bool], timeout_s: float
    ) -> FoundDevice | None:
        advertisement = self.advertisement()
        if matches(advertisement):
            return FoundDevice(advertisement=advertisement, handle=self)
        await self.clock.sleep(timeout_s)
        return None

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        await self.clock.sleep(timeout_s)
        return [self.advertisement()]

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        del device, attempts
        self.connected = True
        self._on_disconnect = on_disconnect
        return self

    # -- GattConnection
    @property
    def address(self) -> str:
        return self._address

    def has_characteristic(self, uuid: str) -> bool:
        return uuid in self.values or uuid in self.notifiable

    async def read(self, uuid: str) -> bytes:
        if uuid not in self.values:
            raise GattError(f"{uuid} is not readable")
        return self.values[uuid]

    def properties(self, uuid: str) -> frozenset[str]:
        if not self.has_characteristic(uuid):
            return frozenset()
        if uuid == CONTROL_POINT_UUID:
            return self.control_point_properties
        found = {"read"} if uuid in self.values else set()
        if uuid in self.notifiable:
            found.add("notify")
        return frozenset(found)

    async def write(self, uuid: str, data: bytes) -> None:
        self.written.append(data)
        self.writes.append((uuid, data, True))
        self.answer(uuid, data)

    async def write_without_response(self, uuid: str, data: bytes) -> None:
        self.written.append(data)
        self.writes.append((uuid, data, False))
        self.answer(uuid, data)

    def answer(self, uuid: str, data: bytes) -> None:
        if uuid == CONTROL_POINT_UUID:
            answer = encode_control_response(ControlResponse(data[0], self.result_for(data)))
            asyncio.get_running_loop().call_soon(self.push, CONTROL_POINT_UUID, answer)

    def result_for(self, request: bytes) -> ResultCode:
        del request
        return ResultCode.SUCCESS

    async def subscribe(self, uuid: str, callback: NotificationCallback) -> None:
        self.callbacks[uuid] = callback
        self.subscribed_at.append((uuid, self.clock.now()))

    async def disconnect(self) -> None:
        self.connected = False
        if self._on_disconnect is not None:
            self._on_disconnect()

    # -- test side
    def push(self, uuid: str, data: bytes) -> None:
        self.callbacks[uuid](data)


class DropsDuringWrite(ObedientDeck):
    """A deck whose connection drops while a Set Target Speed is being written: the stack
    reports the drop first, then fails the write."""

    async def write(self, uuid: str, data: bytes) -> None:
        if uuid == CONTROL_POINT_UUID and data[0] == ControlOpcode.SET_TARGET_SPEED:
            await self.disconnect()
            await asyncio.sleep(0.01)  # the link notices the drop while the write is failing
            raise GattError("the device disconnected during the write")
        await super().write(uuid, data)


class NotATreadmill(ObedientDeck):
    """A device that matches the target but has no Treadmill Data characteristic."""

    notifiable = (MACHINE_STATUS_UUID,)


class WithoutRanges(ObedientDeck):
    """A deck that exposes neither Supported Speed Range nor Supported Inclination Range."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock, values={FEATURE_UUID: STANDARD_VALUES[FEATURE_UUID]})


class AnswersWithAnotherOpcode(ObedientDeck):
    """A deck whose Control Point answers name the wrong request opcode."""

    def answer(self, uuid: str, data: bytes) -> None:
        del uuid
        wrong = encode_control_response(ControlResponse((data[0] + 1) % 0x80, ResultCode.SUCCESS))
        asyncio.get_running_loop().call_soon(self.push, CONTROL_POINT_UUID, wrong)


class WatchOnly(ObedientDeck):
    """A deck with Treadmill Data and Machine Status but no Control Point."""

    notifiable = (TREADMILL_DATA_UUID, MACHINE_STATUS_UUID)


class GuardsDeviceInformation(ObedientDeck):
    """A deck whose Device Information strings exist but refuse to be read (need pairing)."""

    def has_characteristic(self, uuid: str) -> bool:
        return uuid == MANUFACTURER_NAME_UUID or super().has_characteristic(uuid)

    async def read(self, uuid: str) -> bytes:
        if uuid == MANUFACTURER_NAME_UUID:
            raise GattError("ATT error 0x05: insufficient authentication")
        return await super().read(uuid)


class WithTrainingStatus(ObedientDeck):
    """A deck that also notifies Training Status (optional in FTMS §4.10; Urevo E1L has it)."""

    notifiable = (*ObedientDeck.notifiable, TRAINING_STATUS_UUID)


class TrainingStatusCannotNotify(ObedientDeck):
    """A deck whose Training Status exists but cannot be subscribed to (read-only, or a stack
    that refuses the CCCD write)."""

    def has_characteristic(self, uuid: str) -> bool:
        return uuid == TRAINING_STATUS_UUID or super().has_characteristic(uuid)

    async def subscribe(self, uuid: str, callback: NotificationCallback) -> None:
        if uuid == TRAINING_STATUS_UUID:
            raise GattError(f"{uuid} offers neither notifications nor indications")
        await super().subscribe(uuid, callback)


class WriteCommandsOnly(ObedientDeck):
    """A Control Point with Write Without Response and Notify only, answering by notification
    (Urevo E1L: blak3r/treadspan captures). A Write Request is refused, as BlueZ refuses it on
    a characteristic without Write."""

    control_point_properties = frozenset({"write-without-response", "notify"})

    async def write(self, uuid: str, data: bytes) -> None:
        if uuid == CONTROL_POINT_UUID:
            raise GattError("ATT error 0x03: write not permitted")
        await super().write(uuid, data)


class RequestControlNotSupported(ObedientDeck):
    """A deck with no control permission to give: Request Control is answered Not Supported,
    every command Success."""

    def result_for(self, request: bytes) -> ResultCode:
        if request[0] == ControlOpcode.REQUEST_CONTROL:
            return ResultCode.NOT_SUPPORTED
        return ResultCode.SUCCESS


class RefusesControl(ObedientDeck):
    """Request Control answered Not Supported, and every command Control Not Permitted."""

    def result_for(self, request: bytes) -> ResultCode:
        if request[0] == ControlOpcode.REQUEST_CONTROL:
            return ResultCode.NOT_SUPPORTED
        return ResultCode.CONTROL_NOT_PERMITTED


class IgnoresRequestControl(ObedientDeck):
    """A deck that never answers Request Control but answers every command."""

    def answer(self, uuid: str, data: bytes) -> None:
        if uuid == CONTROL_POINT_UUID and data[0] == ControlOpcode.REQUEST_CONTROL:
            return
        super().answer(uuid, data)


class InsistsOnControl(ObedientDeck):
    """A deck that answers Control Not Permitted to every command until control is requested
    (FTMS §4.16.2)."""

    def __init__(self, clock: Clock, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.granted = False

    def result_for(self, request: bytes) -> ResultCode:
        if request[0] == ControlOpcode.REQUEST_CONTROL:
            self.granted = True
            return ResultCode.SUCCESS
        return ResultCode.SUCCESS if self.granted else ResultCode.CONTROL_NOT_PERMITTED

    async def disconnect(self) -> None:
        self.granted = False
        await super().disconnect()


class LockedUntilUnlocked(ObedientDeck):
    """KingSmith MC21: a write-only vendor characteristic that must be written before the
    Control Point answers at all (mcdax/walkingpad-controller)."""

    def __init__(self, clock: Clock, *, unlock_uuid: str, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.unlock_uuid = unlock_uuid
        self.unlocked = False

    def has_characteristic(self, uuid: str) -> bool:
        return uuid == self.unlock_uuid or super().has_characteristic(uuid)

    def properties(self, uuid: str) -> frozenset[str]:
        if uuid == self.unlock_uuid:
            return frozenset({"write"})
        return super().properties(uuid)

    def answer(self, uuid: str, data: bytes) -> None:
        if uuid == self.unlock_uuid:
            self.unlocked = True
        elif self.unlocked:
            super().answer(uuid, data)

    async def disconnect(self) -> None:
        self.unlocked = False  # the unlock lasts one connection
        await super().disconnect()
