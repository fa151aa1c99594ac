"""Finding real decks: service data only in the scan response, FitShow's swapped bytes.

`FirstMatch` is what `BleakGattBackend.find` does with each advertisement bleak reports; it is
tested here on our own `Advertisement` type in virtual time, as BlueZ would deliver a deck's
advertisement and, in a later callback, its scan response.
"""

from __future__ import annotations

import asyncio

from treadmilld.ble.config import TargetSelector
from treadmilld.ble.discovery import classify, is_target
from treadmilld.ble.gatt import Advertisement, FirstMatch, merge_advertisements
from treadmilld.ble.quirks import quirks_for_name
from treadmilld.ftms import FTMS_SERVICE_UUID, MachineType, uuid16
from treadmilld.runtime.clock import LoopClock

E1L = "C0:00:00:00:0E:11"
# The E1L's FTMS service data, sent only in its scan response (AD `06 16 26 18 01 01 00`,
# blak3r/treadspan protocol-analysis/urevo-E1L).
E1L_SERVICE_DATA = {FTMS_SERVICE_UUID: bytes.fromhex("01 01 00")}


def packet(
    name: str | None = None,
    service_data: dict[str, bytes] | None = None,
    uuids: tuple[str, ...] = (),
    address: str = E1L,
) -> Advertisement:
    return Advertisement(
        address=address,
        name=name,
        rssi=-60,
        service_uuids=uuids,
        service_data=service_data or {},
    )


async def deliver(sifter: FirstMatch, *packets: tuple[float, Advertisement]) -> None:
    """Each packet at its clock time after now, as a scanner callback would."""
    clock = LoopClock()
    start = clock.now()
    for at, advertisement in packets:
        await clock.sleep(start + at - clock.now())
        sifter.heard(advertisement, handle=advertisement.address)


async def find(
    target: TargetSelector, *packets: tuple[float, Advertisement], wait_s: float = 1.0
) -> tuple[Advertisement | None, float]:
    """What `find` returns for these packets, and after how long."""
    clock = LoopClock()
    sifter = FirstMatch(lambda adv: is_target(adv, target), clock, wait_s)
    started = clock.now()
    feeder = asyncio.ensure_future(deliver(sifter, *packets))
    found = await sifter.result(10.0)
    feeder.cancel()
    return (found.advertisement if found else None), clock.now() - started


async def test_a_deck_whose_service_data_comes_in_the_scan_response_is_found_with_it() -> None:
    found, took = await find(
        TargetSelector(name_contains="URTM"),
        (0.0, packet(name="URTM041")),
        (0.05, packet(service_data=E1L_SERVICE_DATA)),
    )
    assert found is not None
    assert found.name == "URTM041"
    treadmill = classify(found)
    assert treadmill is not None
    assert treadmill.has_service_data
    assert treadmill.available
    assert took < 0.1  # taken as soon as the scan response completed it


async def test_a_busy_deck_saying_so_in_its_scan_response_is_not_taken_by_name() -> None:
    # FTMP §5.1.4: "not available" means another client has it.
    found, _ = await find(
        TargetSelector(name_contains="URTM"),
        (0.0, packet(name="URTM041")),
        (0.05, packet(service_data={FTMS_SERVICE_UUID: bytes.fromhex("00 01 00")})),
    )
    assert found is None


async def test_a_deck_without_any_service_data_is_taken_after_the_scan_response_wait() -> None:
    # Toorx TRL200 advertises none (hassio-ftms#59): found by name, a moment later.
    found, took = await find(
        TargetSelector(name_contains="TOORX"),
        (0.0, packet(name="TOORX-TRL200", address="C0:00:00:00:00:77")),
        wait_s=0.5,
    )
    assert found is not None
    assert found.name == "TOORX-TRL200"
    assert 0.5 <= took < 0.6


async def test_an_address_target_waits_for_the_name_that_picks_its_quirks() -> None:
    # The name may come in the scan response too; without it the E1L would get no quirks.
    found, _ = await find(
        TargetSelector(address=E1L),
        (0.0, packet(service_data=E1L_SERVICE_DATA)),
        (0.05, packet(name="URTM041")),
    )
    assert found is not None
    assert quirks_for_name(found.name).name == "urevo-e1l"


async def test_an_ftms_bike_revealed_by_its_scan_response_is_not_taken() -> None:
    found, _ = await find(
        TargetSelector(name_contains="SIM"),
        (0.0, packet(name="SIM-BIKE", uuids=(FTMS_SERVICE_UUID,))),
        (0.05, packet(service_data={FTMS_SERVICE_UUID: bytes.fromhex("01 20 00")})),
    )
    assert found is None


def test_what_one_address_says_is_merged_newest_first_nothing_forgotten() -> None:
    heart_rate = uuid16(0x180D)
    first = packet(name="URTM041", uuids=(heart_rate,))
    second = packet(uuids=(FTMS_SERVICE_UUID, heart_rate), service_data=E1L_SERVICE_DATA)
    merged = merge_advertisements(first, second)
    assert merged.name == "URTM041"
    assert merged.service_uuids == (heart_rate, FTMS_SERVICE_UUID)
    assert merged.service_data == E1L_SERVICE_DATA
    other = packet(name="OTHER", address="C0:00:00:00:00:99")
    assert merge_advertisements(first, other) == other


def test_fitshow_swapped_service_data_is_an_available_treadmill() -> None:
    # `01 00 01` (a FitShow FS-BC11B7 probe report): the treadmill bit sits in the high type
    # byte. The codec ORs both type bytes, so either order is read as a treadmill.
    found = classify(
        packet(name="FS-BC11B7", service_data={FTMS_SERVICE_UUID: bytes.fromhex("01 00 01")})
    )
    assert found is not None
    assert found.machine_types == MachineType.TREADMILL
    assert found.available


def test_swapped_bike_service_data_is_still_a_bike() -> None:
    for data in ("01 20 00", "01 00 20"):
        bike = packet(name="FS-BIKE", service_data={FTMS_SERVICE_UUID: bytes.fromhex(data)})
        assert classify(bike) is None
