"""The bleak wrapper on its own: bleak's errors come out as our GattError, never as bleak's."""

from __future__ import annotations

import asyncio

import pytest
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.gatt import Advertisement, ConnectFailedError, FoundDevice, GattError
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FTMS_SERVICE_UUID,
    SPEED_RANGE_UUID,
    TREADMILL_DATA_UUID,
    decode_speed_range,
    uuid16,
)


async def test_real_bleak_reads_writes_and_turns_its_errors_into_gatt_errors(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-IO", max_speed_kmh=9.0))
    backend = BleakGattBackend(
        fleet.clock, scanner_backend=fleet.scanner_backend, client_backend=fleet.client_backend
    )
    found = await backend.find(lambda adv: adv.address == treadmill.address, 5.0)
    assert found is not None
    # Full 128-bit UUIDs, whatever the backend reported.
    assert FTMS_SERVICE_UUID in found.advertisement.service_data
    dropped = asyncio.Event()
    connection = await backend.connect(found, attempts=1, on_disconnect=dropped.set)
    try:
        assert decode_speed_range(await connection.read(SPEED_RANGE_UUID)).maximum_kmh == 9.0
        assert connection.has_characteristic(TREADMILL_DATA_UUID)
        assert not connection.has_characteristic(uuid16(0x2AFF))
        # Properties as the deck declares them: the write mode of the Control Point follows them.
        assert connection.properties(CONTROL_POINT_UUID) == {"write", "indicate"}
        assert connection.properties(uuid16(0x2AFF)) == frozenset()
        with pytest.raises(GattError, match="reading"):
            await connection.read(uuid16(0x2AFF))
        with pytest.raises(GattError, match="writing 00"):
            # Indications are not enabled yet: the Control Point refuses the write (ATT 0xFD).
            await connection.write(CONTROL_POINT_UUID, b"\x00")
        with pytest.raises(GattError, match="neither notifications nor indications"):
            await connection.subscribe(FEATURE_UUID, lambda _data: None)  # read-only
    finally:
        await connection.disconnect()
    async with asyncio.timeout(10):
        await dropped.wait()  # our own disconnect is reported too, exactly like BlueZ does


async def test_a_device_not_found_by_a_bleak_scan_cannot_be_connected(
    fleet: SimulatedFleet,
) -> None:
    backend = BleakGattBackend(
        fleet.clock, scanner_backend=fleet.scanner_backend, client_backend=fleet.client_backend
    )
    found = await backend.find(lambda _adv: True, 0.5)
    assert found is None  # nothing on the air
    stranger = FoundDevice(
        advertisement=Advertisement(address="C0:00:00:00:00:42", name=None, rssi=None),
        handle="not a BLEDevice",
    )
    with pytest.raises(ConnectFailedError, match="scan again"):
        await backend.connect(stranger, attempts=1, on_disconnect=lambda: None)
