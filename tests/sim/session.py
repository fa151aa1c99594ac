"""A test-side FTMS client: the real BleakScanner/BleakClient on the fleet's backends.

Deliberately thin (no retry, no quirk handling): the tests look at what the simulated
treadmill puts on the air, through bleak's public API only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from treadmilld_sim import SimulatedFleet, SimulatedTreadmill

from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlRequest,
    ControlResponse,
    MachineStatus,
    TrainingStatus,
    decode_control_response,
    decode_machine_status,
    decode_training_status,
    encode_control_request,
)
from treadmilld.runtime.clock import VirtualTimeEventLoop

# Generous bound for one test's waits: a hang (e.g. Bumble's connect-cancel) fails the test
# here with a clear traceback instead of at pytest-timeout's process level.
TEST_TIMEOUT_S = 20.0

T = TypeVar("T")


def run_in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on a VirtualTimeEventLoop: timers fire as soon as nothing else can run."""
    with asyncio.Runner(loop_factory=VirtualTimeEventLoop) as runner:
        return runner.run(main())


async def find_device(fleet: SimulatedFleet, treadmill: SimulatedTreadmill) -> BLEDevice:
    device = await BleakScanner.find_device_by_address(
        treadmill.address, timeout=5.0, backend=fleet.scanner_backend
    )
    assert device is not None, f"{treadmill.name} was not found by a scan"
    return device


@dataclass
class FtmsSession:
    """A connected client with queues for what the treadmill sends."""

    client: BleakClient
    responses: asyncio.Queue[ControlResponse] = field(default_factory=asyncio.Queue)
    statuses: asyncio.Queue[MachineStatus] = field(default_factory=asyncio.Queue)
    training: asyncio.Queue[TrainingStatus] = field(default_factory=asyncio.Queue)
    data: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def subscribe_all(self) -> None:
        await self.client.start_notify(CONTROL_POINT_UUID, self._on_response)
        await self.client.start_notify(MACHINE_STATUS_UUID, self._on_status)
        await self.client.start_notify(TRAINING_STATUS_UUID, self._on_training)
        await self.client.start_notify(TREADMILL_DATA_UUID, self._on_data)

    def _on_response(self, _: BleakGATTCharacteristic, value: bytearray) -> None:
        self.responses.put_nowait(decode_control_response(bytes(value)))

    def _on_status(self, _: BleakGATTCharacteristic, value: bytearray) -> None:
        self.statuses.put_nowait(decode_machine_status(bytes(value)))

    def _on_training(self, _: BleakGATTCharacteristic, value: bytearray) -> None:
        self.training.put_nowait(decode_training_status(bytes(value)))

    def _on_data(self, _: BleakGATTCharacteristic, value: bytearray) -> None:
        self.data.put_nowait(bytes(value))

    async def send(self, request: ControlRequest) -> ControlResponse:
        """Write one request and wait for its indication."""
        await self.write_raw(encode_control_request(request))
        return await self.responses.get()

    async def write_raw(self, value: bytes) -> None:
        await self.client.write_gatt_char(CONTROL_POINT_UUID, value, response=True)

    async def take_control(self) -> None:
        from treadmilld.ftms import RequestControl, ResultCode

        response = await self.send(RequestControl())
        assert response.result is ResultCode.SUCCESS


@contextlib.asynccontextmanager
async def connected(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill, *, subscribe: bool = True
) -> AsyncIterator[FtmsSession]:
    device = await find_device(fleet, treadmill)
    session_box: list[FtmsSession] = []

    def on_disconnect(_: BleakClient) -> None:
        if session_box:
            session_box[0].disconnected.set()

    client = BleakClient(device, disconnected_callback=on_disconnect, backend=fleet.client_backend)
    session = FtmsSession(client)
    session_box.append(session)
    await client.connect()
    try:
        if subscribe:
            await session.subscribe_all()
        yield session
    finally:
        await client.disconnect()
        await asyncio.sleep(0)
