"""Discovery through the real BleakScanner: what a simulated treadmill advertises."""

from __future__ import annotations

import asyncio

from bleak import BleakScanner
from treadmilld_sim import (
    SimulatedFleet,
    SimulatedTreadmill,
    SimulatedTreadmillConfig,
    build_advertising_data,
    parse_advertising_data,
)

from treadmilld.ftms import FTMS_SERVICE_UUID, MachineType, decode_ftms_service_data

from .session import TEST_TIMEOUT_S


async def test_scan_filtered_by_full_ftms_uuid_finds_the_treadmill_and_its_service_data(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        found = await BleakScanner.discover(
            timeout=0.2,
            return_adv=True,
            service_uuids=[FTMS_SERVICE_UUID],
            backend=fleet.scanner_backend,
        )
    device, advertisement = found[treadmill.address]
    assert device.name == "SIM-TM01"
    assert advertisement.local_name == "SIM-TM01"
    assert FTMS_SERVICE_UUID in advertisement.service_uuids
    service_data = decode_ftms_service_data(advertisement.service_data[FTMS_SERVICE_UUID])
    assert service_data.available
    assert MachineType.TREADMILL in service_data.machine_types


async def test_short_uuid_filter_matches_nothing_like_bluez(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    # bleak only lower-cases filters (bleak 3.1.0 `BaseBleakScanner.is_allowed_uuid`): the
    # daemon must pass full 128-bit UUIDs, and the simulator must not hide a mistake by
    # normalizing.
    async with asyncio.timeout(TEST_TIMEOUT_S):
        found = await BleakScanner.discover(
            timeout=0.1, return_adv=True, service_uuids=["1826"], backend=fleet.scanner_backend
        )
    assert treadmill.address not in found


async def test_find_device_by_filter_sees_periodic_advertising(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    # find_device_by_filter registers its callback after start(): only a treadmill that keeps
    # advertising, like a radio, is found (bleak 3.1.0 `BleakScanner.find_device_by_filter`).
    async with asyncio.timeout(TEST_TIMEOUT_S):
        device = await BleakScanner.find_device_by_filter(
            lambda _, adv: FTMS_SERVICE_UUID in adv.service_data,
            timeout=2.0,
            backend=fleet.scanner_backend,
        )
    assert device is not None
    assert device.address == treadmill.address


async def test_quirk_no_service_data_in_the_advertisement(fleet: SimulatedFleet) -> None:
    toorx = await fleet.add(
        SimulatedTreadmillConfig(name="TRL200-SIM", advertise_service_data=False)
    )
    async with asyncio.timeout(TEST_TIMEOUT_S):
        found = await BleakScanner.discover(
            timeout=0.2, return_adv=True, backend=fleet.scanner_backend
        )
    _, advertisement = found[toorx.address]
    assert advertisement.service_data == {}
    assert advertisement.service_uuids == [FTMS_SERVICE_UUID]
    assert advertisement.local_name == "TRL200-SIM"


async def test_stop_advertising_hides_the_treadmill_until_it_starts_again(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        await treadmill.stop_advertising()
        silent = await BleakScanner.discover(timeout=0.2, backend=fleet.scanner_backend)
        await treadmill.start_advertising()
        heard = await BleakScanner.discover(timeout=0.2, backend=fleet.scanner_backend)
    assert treadmill.address not in [d.address for d in silent]
    assert treadmill.address in [d.address for d in heard]


async def test_scanning_leaves_no_controller_on_the_link(
    fleet: SimulatedFleet, treadmill: SimulatedTreadmill
) -> None:
    before = fleet.radio.controller_count
    async with asyncio.timeout(TEST_TIMEOUT_S):
        for _ in range(5):
            await BleakScanner.discover(timeout=0.05, backend=fleet.scanner_backend)
    assert fleet.radio.controller_count == before


def test_long_names_are_shortened_to_fit_a_legacy_advertisement() -> None:
    raw = build_advertising_data("A-VERY-LONG-TREADMILL-NAME-29", with_service_data=True)
    assert len(raw) <= 31
    parsed = parse_advertising_data(raw, rssi=-50)
    assert parsed.local_name is not None
    assert "A-VERY-LONG-TREADMILL-NAME-29".startswith(parsed.local_name)


def test_malformed_advertising_data_keeps_what_parsed() -> None:
    good = build_advertising_data("SIM", with_service_data=False)
    parsed = parse_advertising_data(good + b"\x09\xff\x01", rssi=-60)  # truncated structure
    assert parsed.local_name == "SIM"
    assert parsed.rssi == -60
