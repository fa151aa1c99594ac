"""Replaying a recorded deck session (sim/treadmilld_sim/replay.py): a trace becomes a deck."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig, parse_advertising_data
from treadmilld_sim.replay import advertising_payloads, replay_trace

from tests.ble.harness import LinkUnderTest
from tests.sim.session import run_in_virtual_time
from treadmilld import __version__
from treadmilld.ble.api import ControlTimeoutError, LinkConnected, TelemetryReceived
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.trace import (
    AdvertisementEvent,
    NotificationEvent,
    TraceFormatError,
    load_trace,
)
from treadmilld.ble.trace_recorder import TraceWriter, TracingGattBackend
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    MANUFACTURER_NAME_UUID,
    SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    TreadmillData,
    decode_treadmill_data,
)

WAIT_S = 120.0


async def drive_link(
    fleet: SimulatedFleet, address: str, writer: TraceWriter | None
) -> tuple[LinkConnected, list[TreadmillData]]:
    """Our link, traced when `writer` is given: connect, 2.0 km/h, start, run, stop, close."""
    inner = BleakGattBackend(
        fleet.clock, scanner_backend=fleet.scanner_backend, client_backend=fleet.client_backend
    )
    backend: Any = inner if writer is None else TracingGattBackend(inner, writer)
    link = BleTreadmillLink(
        "tm1",
        TargetSelector(address=address),
        LinkSettings(),
        clock=fleet.clock,
        gatt_backend=backend,
    )
    under_test = LinkUnderTest(link=link, events=link.events())
    runner = asyncio.create_task(link.run())
    try:
        connected = await under_test.connected()
        await link.set_target_speed(2.0)
        await link.start_belt()
        await under_test.belt_at(2.0)
        await link.stop_belt()
        await under_test.belt_at(0.0)
    finally:
        async with asyncio.timeout(WAIT_S):
            await link.close()
            await runner
    records = [e.record for e in under_test.seen if isinstance(e, TelemetryReceived)]
    return connected, records


def test_a_traced_session_of_our_link_replays_to_the_same_link(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"

    async def record() -> tuple[LinkConnected, list[TreadmillData]]:
        async with SimulatedFleet() as fleet:
            deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-REC", data_rate_hz=4.0))
            writer = TraceWriter(path, clock=fleet.clock, version=__version__)
            try:
                return await drive_link(fleet, deck.address, writer)
            finally:
                writer.close()

    async def replay() -> tuple[LinkConnected, list[TreadmillData], Any]:
        async with SimulatedFleet() as fleet, replay_trace(path, fleet=fleet) as deck:
            connected, records = await drive_link(fleet, deck.address, None)
            return connected, records, deck

    recorded_connect, recorded_records = run_in_virtual_time(record)
    replayed_connect, replayed_records, deck = run_in_virtual_time(replay)

    assert replayed_connect.capabilities == recorded_connect.capabilities
    assert deck.mismatches == []
    assert deck.matched_writes == 4  # Request Control, speed, Start, Stop: as recorded
    assert deck.unsent_writes == []
    # The same telemetry, record for record (the replay may end a record early or late).
    traced = [
        decode_treadmill_data(e.data)
        for e in load_trace(path).sessions()[0].events
        if isinstance(e, NotificationEvent) and e.uuid == TREADMILL_DATA_UUID
    ]
    assert [r.instantaneous_speed_kmh for r in recorded_records] == [
        r.instantaneous_speed_kmh for r in traced[: len(recorded_records)]
    ]
    assert len(replayed_records) >= len(recorded_records) - 1
    assert replayed_records == recorded_records[: len(replayed_records)]


def test_a_link_writing_something_else_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"

    async def record() -> None:
        async with SimulatedFleet() as fleet:
            deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-REC", data_rate_hz=4.0))
            writer = TraceWriter(path, clock=fleet.clock, version=__version__)
            try:
                await drive_link(fleet, deck.address, writer)
            finally:
                writer.close()

    async def replay_with_another_speed() -> Any:
        async with SimulatedFleet() as fleet, replay_trace(path, fleet=fleet) as deck:
            link = BleTreadmillLink(
                "tm1",
                TargetSelector(address=deck.address),
                LinkSettings(),
                clock=fleet.clock,
                scanner_backend=fleet.scanner_backend,
                client_backend=fleet.client_backend,
            )
            under_test = LinkUnderTest(link=link, events=link.events())
            runner = asyncio.create_task(link.run())
            try:
                await under_test.connected()
                with pytest.raises(ControlTimeoutError):  # a mismatched write gets no answer
                    await link.set_target_speed(3.0)
            finally:
                await link.close()
                await runner
            return deck

    run_in_virtual_time(record)
    deck = run_in_virtual_time(replay_with_another_speed)
    assert deck.matched_writes == 1  # Request Control
    assert [m.describe() for m in deck.mismatches] == [
        f"expected 02 c8 00 to {CONTROL_POINT_UUID}, got 02 2c 01 to {CONTROL_POINT_UUID}"
    ]
    assert "mismatch: expected 02 c8 00" in deck.report()


# -- a trace built by hand from a real capture ------------------------------------------------


# Source: real-decks.md §1, the Urevo E1L (URTM041, firmware 1.4.7) connect sequence driven by
# Kinomap, from nRF Sniffer captures in blak3r/treadspan `protocol-analysis/urevo-E1L`. Times
# are the excerpt's, in seconds; CCCD writes become `subscribe` lines. The name is the model
# number (the excerpt does not show the advertised name); the Control Point's properties are
# inferred: written with Write Without Response, its CCCD enabled with 02 00, answered by
# notifications.
def _uuid(short: int) -> str:
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


UREVO_E1L_KINOMAP: list[dict[str, Any]] = [
    {
        "type": "header",
        "format": "treadmilld-trace",
        "version": 1,
        "treadmilld": "hand-built",
        "deck": {"name": "URTM041", "address": "F0:E1:E1:00:00:01"},
        "started_at": "2024-01-01T00:00:00+00:00",
        "note": "real-decks.md §1: Urevo E1L connect excerpt (Kinomap)",
    },
    {
        "type": "advertisement",
        "t": 0.0,
        "address": "F0:E1:E1:00:00:01",
        "name": "URTM041",
        "service_uuids": [FTMS_SERVICE_UUID],
        "service_data": {FTMS_SERVICE_UUID: "01 01 00"},
    },
    {"type": "connect", "t": 0.0, "address": "F0:E1:E1:00:00:01", "name": "URTM041"},
    {
        "type": "gatt_table",
        "t": 0.0,
        "complete": False,
        "services": [
            {
                "uuid": FTMS_SERVICE_UUID,
                "characteristics": [
                    {"uuid": FEATURE_UUID, "properties": ["read"]},
                    {"uuid": TREADMILL_DATA_UUID, "properties": ["notify"]},
                    {"uuid": TRAINING_STATUS_UUID, "properties": ["notify", "read"]},
                    {"uuid": SPEED_RANGE_UUID, "properties": ["read"]},
                    {"uuid": _uuid(0x2AD5), "properties": ["read"]},
                    {
                        "uuid": CONTROL_POINT_UUID,
                        "properties": ["indicate", "notify", "write-without-response"],
                    },
                    {"uuid": MACHINE_STATUS_UUID, "properties": ["notify"]},
                ],
            },
            {
                "uuid": _uuid(0x180A),
                "characteristics": [{"uuid": MANUFACTURER_NAME_UUID, "properties": ["read"]}],
            },
        ],
    },
    {"type": "read", "t": 0.05, "uuid": MANUFACTURER_NAME_UUID, "value": "30 78 30 31"},
    {"type": "read", "t": 0.06, "uuid": FEATURE_UUID, "value": "45 56 00 00 05 00 00 00"},
    {"type": "read", "t": 0.07, "uuid": SPEED_RANGE_UUID, "value": "60 00 83 02 20 00"},
    {"type": "read", "t": 0.08, "uuid": _uuid(0x2AD5), "value": "00 00 00 00 00 00"},
    {
        "type": "notification",
        "t": 0.233,
        "uuid": TREADMILL_DATA_UUID,
        "data": "84 25 e1 00 00 00 00 01 00 00 00 00 00 21 00 02 00 00",
    },
    {"type": "notification", "t": 0.324, "uuid": TRAINING_STATUS_UUID, "data": "00 10"},
    {"type": "subscribe", "t": 0.443, "uuid": TREADMILL_DATA_UUID},
    {"type": "notification", "t": 0.443, "uuid": MACHINE_STATUS_UUID, "data": "05 d1 00"},
    {"type": "subscribe", "t": 0.594, "uuid": CONTROL_POINT_UUID},
    {"type": "subscribe", "t": 0.653, "uuid": MACHINE_STATUS_UUID},
    {"type": "notification", "t": 0.848, "uuid": MACHINE_STATUS_UUID, "data": "05 c1 00"},
    {"type": "notification", "t": 1.118, "uuid": MACHINE_STATUS_UUID, "data": "05 b1 00"},
    {
        "type": "write",
        "t": 1.238,
        "uuid": CONTROL_POINT_UUID,
        "data": "03 3c 00",
        "response": False,
    },
    {"type": "notification", "t": 1.283, "uuid": CONTROL_POINT_UUID, "data": "80 03 01"},
    {"type": "write", "t": 2.048, "uuid": CONTROL_POINT_UUID, "data": "00", "response": False},
    {"type": "notification", "t": 2.093, "uuid": CONTROL_POINT_UUID, "data": "80 00 01"},
]


def test_the_urevo_e1l_excerpt_replays_to_a_client_writing_the_same_bytes() -> None:
    async def main() -> None:
        async with SimulatedFleet() as fleet, replay_trace(UREVO_E1L_KINOMAP, fleet=fleet) as deck:
            found = await BleakScanner.find_device_by_address(
                deck.address, timeout=5.0, backend=fleet.scanner_backend
            )
            assert found is not None
            heard: dict[str, list[tuple[float, bytes]]] = {}
            answers: asyncio.Queue[bytes] = asyncio.Queue()

            def on(uuid: str) -> Any:
                def callback(_c: BleakGATTCharacteristic, data: bytearray) -> None:
                    heard.setdefault(uuid, []).append((fleet.clock.now(), bytes(data)))
                    if uuid == CONTROL_POINT_UUID:
                        answers.put_nowait(bytes(data))

                return callback

            async with BleakClient(found, backend=fleet.client_backend) as client:
                assert bytes(await client.read_gatt_char(FEATURE_UUID)) == bytes.fromhex(
                    "4556000005000000"
                )
                assert bytes(await client.read_gatt_char(MANUFACTURER_NAME_UUID)) == b"0x01"
                control_point = client.services.get_characteristic(CONTROL_POINT_UUID)
                assert control_point is not None
                assert sorted(control_point.properties) == [
                    "indicate",
                    "notify",
                    "write-without-response",
                ]
                for uuid in (TREADMILL_DATA_UUID, CONTROL_POINT_UUID, MACHINE_STATUS_UUID):
                    await client.start_notify(uuid, on(uuid))
                async with asyncio.timeout(WAIT_S):
                    while len(heard.get(MACHINE_STATUS_UUID, [])) < 3:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                await client.write_gatt_char(CONTROL_POINT_UUID, b"\x03\x3c\x00", response=False)
                sent_at = fleet.clock.now()
                async with asyncio.timeout(WAIT_S):
                    assert await answers.get() == bytes.fromhex("800301")
                # Answered with the recorded delay (45 ms), give or take the link's own time.
                assert 0.04 <= heard[CONTROL_POINT_UUID][-1][0] - sent_at < 0.1
                await client.write_gatt_char(CONTROL_POINT_UUID, b"\x00", response=False)
                async with asyncio.timeout(WAIT_S):
                    assert await answers.get() == bytes.fromhex("800001")
                # Training Status was never subscribed: its recorded notification is dropped.
                assert TRAINING_STATUS_UUID not in heard
            assert [d for _t, d in heard[MACHINE_STATUS_UUID]] == [
                bytes.fromhex(h) for h in ("05d100", "05c100", "05b100")
            ]
            assert [d for _t, d in heard[TREADMILL_DATA_UUID]] == [
                bytes.fromhex("8425e100000000010000000000210002000" + "0")
            ]
            assert deck.mismatches == []
            assert deck.matched_writes == 2

    run_in_virtual_time(main)


def test_the_replayed_advertisement_is_what_the_trace_heard() -> None:
    advertisement = AdvertisementEvent(
        t=0.0,
        address="F0:E1:E1:00:00:01",
        name="A-RATHER-LONG-TREADMILL-NAME",
        service_uuids=[FTMS_SERVICE_UUID],
        service_data={FTMS_SERVICE_UUID: bytes.fromhex("010100")},
    )
    advertising, scan_response = advertising_payloads(advertisement, advertisement.name or "")
    assert len(advertising) <= 31
    assert len(scan_response) <= 31
    heard = parse_advertising_data(advertising + scan_response, -50)
    assert heard.local_name == "A-RATHER-LONG-TREADMILL-NAME"
    assert heard.service_uuids == [FTMS_SERVICE_UUID]
    assert heard.service_data == {FTMS_SERVICE_UUID: bytes.fromhex("010100")}


def test_a_malformed_trace_given_to_the_replay_names_file_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    path.write_text(
        '{"type": "header", "format": "treadmilld-trace", "version": 1, '
        '"treadmilld": "0.1.0", "started_at": "2026-01-01T00:00:00+00:00"}\n'
        '{"t": 0.5, "type": "write", "uuid": "x", "data": "0g", "response": true}\n'
    )

    async def main() -> None:
        async with replay_trace(path):
            pass

    with pytest.raises(TraceFormatError) as raised:
        run_in_virtual_time(main)
    assert f"{path}, line 2: write.data: '0g' is not hex bytes" in str(raised.value)
    assert "hex pairs such as '80 03 01'" in str(raised.value)


def test_a_trace_without_a_connection_cannot_be_replayed() -> None:
    async def main() -> None:
        async with replay_trace(UREVO_E1L_KINOMAP[:2]):
            pass

    with pytest.raises(TraceFormatError, match="no connection recorded"):
        run_in_virtual_time(main)
