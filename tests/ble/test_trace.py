"""Tracing the GATT traffic of a link session (treadmilld/ble/trace.py, trace_recorder.py,
docs/capture.md)."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.harness import LinkUnderTest
from treadmilld import __version__
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ble.gatt import GattConnection
from treadmilld.ble.trace import (
    AdvertisementEvent,
    ConnectEvent,
    DisconnectEvent,
    GattTableEvent,
    NotificationEvent,
    ReadEvent,
    SubscribeEvent,
    TraceFormatError,
    TraceLimits,
    TruncatedEvent,
    WriteEvent,
    load_trace,
)
from treadmilld.ble.trace_recorder import TraceWriter, TracingGattBackend, TracingGattConnection
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    FEATURE_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    SPEED_RANGE_UUID,
    TREADMILL_DATA_UUID,
)
from treadmilld.runtime.clock import LoopClock


def traced_link(
    fleet: SimulatedFleet, address: str, path: Path, limits: TraceLimits | None = None
) -> tuple[BleTreadmillLink, TraceWriter]:
    writer = TraceWriter(path, clock=fleet.clock, version=__version__, limits=limits)
    backend = TracingGattBackend(
        BleakGattBackend(
            fleet.clock,
            scanner_backend=fleet.scanner_backend,
            client_backend=fleet.client_backend,
        ),
        writer,
    )
    link = BleTreadmillLink(
        "tm1",
        TargetSelector(address=address),
        LinkSettings(),
        clock=fleet.clock,
        gatt_backend=backend,
    )
    return link, writer


async def drive(link: BleTreadmillLink) -> LinkUnderTest:
    """Connect, set a speed, start, see the belt at speed, stop (the harness's
    `running_link` takes no `gatt_backend`, so these tests build their own link)."""
    under_test = LinkUnderTest(link=link, events=link.events())
    runner = asyncio.create_task(link.run())
    try:
        await under_test.connected()
        await link.set_target_speed(2.0)
        await link.start_belt()
        await under_test.belt_at(2.0)
        await link.stop_belt()
        await under_test.belt_at(0.0)
    finally:
        await link.close()
        await runner
    return under_test


async def test_a_link_session_is_recorded_line_by_line(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-TRACE", data_rate_hz=4.0))
    path = tmp_path / "session.jsonl"
    link, writer = traced_link(fleet, deck.address, path)
    await drive(link)
    writer.close()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    header = lines[0]
    assert header["type"] == "header"
    assert header["format"] == "treadmilld-trace"
    assert header["version"] == 1
    assert header["treadmilld"] == __version__
    assert header["deck"] == {"name": "SIM-TRACE", "address": deck.address}
    assert header["started_at"].endswith("+00:00")
    assert lines[-1]["type"] == "end"
    assert lines[-1]["events"] == len(lines) - 2
    times = [line["t"] for line in lines[1:]]
    assert times == sorted(times)

    trace = load_trace(path)
    (session,) = trace.sessions()
    assert session.advertisement is not None
    assert session.advertisement.name == "SIM-TRACE"
    assert FTMS_SERVICE_UUID in session.advertisement.service_uuids
    assert session.advertisement.service_data[FTMS_SERVICE_UUID] == bytes([0x01, 0x01, 0x00])
    assert isinstance(session.events[0], GattTableEvent)
    table = {c.uuid: c.properties for s in session.events[0].services for c in s.characteristics}
    assert table[CONTROL_POINT_UUID] == ["indicate", "write"]
    assert table[TREADMILL_DATA_UUID] == ["notify"]

    reads = {e.uuid: e.value for e in session.events if isinstance(e, ReadEvent)}
    assert reads[FEATURE_UUID] is not None
    assert reads[SPEED_RANGE_UUID] is not None
    subscribed = [e.uuid for e in session.events if isinstance(e, SubscribeEvent)]
    assert subscribed[:3] == [TREADMILL_DATA_UUID, MACHINE_STATUS_UUID, CONTROL_POINT_UUID]
    writes = [(e.data.hex(), e.response) for e in session.events if isinstance(e, WriteEvent)]
    # Request Control, 2.0 km/h (200 = c8 00), Start, Stop.
    assert writes == [("00", True), ("02c800", True), ("07", True), ("0801", True)]
    answers = [
        e.data.hex()
        for e in session.events
        if isinstance(e, NotificationEvent) and e.uuid == CONTROL_POINT_UUID
    ]
    assert answers == ["800001", "800201", "800701", "800801"]
    assert any(
        isinstance(e, NotificationEvent) and e.uuid == TREADMILL_DATA_UUID for e in session.events
    )
    last = session.events[-1]
    assert isinstance(last, DisconnectEvent)
    assert last.by == "central"


async def test_a_dropped_link_is_recorded_as_the_peripherals_doing(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-DROP", data_rate_hz=4.0))
    path = tmp_path / "drop.jsonl"
    link, writer = traced_link(fleet, deck.address, path)
    under_test = LinkUnderTest(link=link, events=link.events())
    runner = asyncio.create_task(link.run())
    try:
        await under_test.connected()
        await deck.drop_link()
        await under_test.lost()
        await under_test.connected()  # the link reconnects: a second session
    finally:
        await link.close()
        await runner
    writer.close()
    sessions = load_trace(path).sessions()
    assert len(sessions) == 2
    first = sessions[0].events[-1]
    assert isinstance(first, DisconnectEvent)
    assert first.by == "peripheral"
    assert all(isinstance(s.connect, ConnectEvent) for s in sessions)
    assert isinstance(sessions[1].advertisement, AdvertisementEvent)


async def test_the_event_cap_ends_the_trace_with_a_truncated_line(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-CAP", data_rate_hz=4.0))
    path = tmp_path / "capped.jsonl"
    link, writer = traced_link(fleet, deck.address, path, TraceLimits(max_events=12))
    await drive(link)
    assert writer.truncated
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1 + 12 + 1  # header, 12 events, the truncated line
    assert lines[-1]["type"] == "truncated"
    assert lines[-1]["reason"] == "max_events 12 reached"
    assert lines[-1]["events"] == 12
    trace = load_trace(path)
    assert trace.truncated
    assert isinstance(trace.events[-1], TruncatedEvent)


async def test_the_size_cap_is_never_exceeded(fleet: SimulatedFleet, tmp_path: Path) -> None:
    deck = await fleet.add(SimulatedTreadmillConfig(name="SIM-SIZE", data_rate_hz=20.0))
    path = tmp_path / "small.jsonl"
    link, writer = traced_link(fleet, deck.address, path, TraceLimits(max_bytes=4096))
    await drive(link)
    writer.close()
    text = path.read_text()
    assert len(text.encode()) <= 4096
    assert json.loads(text.splitlines()[-1])["reason"] == "max_bytes 4096 reached"


def test_the_tracer_wraps_every_method_of_the_seam() -> None:
    """A method added to `GattConnection` must be recorded too: this fails until it is."""
    wanted = {
        name
        for name, _ in inspect.getmembers(GattConnection)
        if not name.startswith("_") and name in GattConnection.__dict__
    }
    assert wanted <= set(TracingGattConnection.__dict__)


# -- reading a trace back -------------------------------------------------------------------

HEADER = (
    '{"type": "header", "format": "treadmilld-trace", "version": 1, '
    '"treadmilld": "0.1.0", "started_at": "2026-01-01T00:00:00+00:00"}'
)


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("lines", "line", "fix"),
    [
        (
            [HEADER, '{"t": 0.1, "type": "notification", "uuid": "x", "data": "80 0'],
            2,
            "deleting that last line",
        ),
        (
            [HEADER, '{"t": 0.1, "type": "notifica', '{"t": 0.2, "type": "disconnect"}'],
            2,
            "restore the line from the original file",
        ),
        ([HEADER, '{"t": 0.1, "type": "beep"}'], 2, "Known event types"),
        (
            [HEADER, '{"t": 0.1, "type": "notification", "uuid": "x", "data": "zz"}'],
            2,
            "hex pairs such as '80 03 01'",
        ),
        (['{"t": 0.1, "type": "read", "uuid": "x"}'], 1, "the first line must be"),
        ([HEADER.replace('"version": 1', '"version": 9')], 1, "upgrade treadmilld"),
        ([HEADER, "[1, 2]"], 2, "not a JSON object"),
    ],
)
def test_a_malformed_trace_names_the_file_the_line_and_the_fix(
    tmp_path: Path, lines: list[str], line: int, fix: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", *lines)
    with pytest.raises(TraceFormatError) as raised:
        load_trace(path)
    message = str(raised.value)
    assert f"{path}, line {line}" in message
    assert fix in message


def test_a_missing_or_empty_file_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match=r"missing\.jsonl: cannot read the trace"):
        load_trace(tmp_path / "missing.jsonl")
    with pytest.raises(TraceFormatError, match=r"empty\.jsonl: empty; a trace starts with"):
        load_trace(write_lines(tmp_path / "empty.jsonl", ""))


async def test_a_writer_that_cannot_write_stops_recording_and_keeps_quiet(
    tmp_path: Path,
) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", clock=LoopClock(), version="x")
    writer._file.close()  # type: ignore[union-attr]  # a disk that went away under it
    record: Any = ReadEvent(t=0.0, uuid="u", value=b"\x01")
    writer.record(record)  # logged once, never raised
    writer.record(record)
    assert writer.events_written == 0
