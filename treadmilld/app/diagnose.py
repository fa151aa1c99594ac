"""`treadmilld diagnose --treadmill ID | --address ADDR | --name TEXT`: what one deck does.

Connects to one treadmill, reads every characteristic treadmilld knows of that the deck can
read, subscribes to every one that notifies or indicates, records the GATT traffic of N seconds
to a trace (docs/capture.md) and prints a summary a person can read and paste into a report.

It never starts the belt: the only Control Point write it can make is Request Control (`00`),
and only with `--control`, to see whether and how the deck answers (result code, notification or
indication). Nothing else is ever written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import structlog

from treadmilld import __version__
from treadmilld.app.settings import ConfigError, Settings
from treadmilld.ble.config import TargetSelector
from treadmilld.ble.discovery import is_target
from treadmilld.ble.gatt import (
    PROPERTY_INDICATE,
    PROPERTY_NOTIFY,
    PROPERTY_WRITE,
    PROPERTY_WRITE_WITHOUT_RESPONSE,
    ConnectFailedError,
    GattBackend,
    GattConnection,
    GattError,
)
from treadmilld.ble.trace import KNOWN_CHARACTERISTICS, TraceLimits
from treadmilld.ble.trace_recorder import TraceWriter, TracingGattBackend
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
    RequestControl,
    decode_control_response,
    decode_feature,
    decode_inclination_range,
    decode_machine_status,
    decode_speed_range,
    decode_training_status,
    decode_treadmill_data,
    encode_control_request,
)
from treadmilld.runtime.clock import Clock
from treadmilld.runtime.waiting import wait_for_on_clock

_log = structlog.get_logger(__name__)

# The one Control Point write diagnose may ever make (FTMS §4.16.1, opcode 0x00).
REQUEST_CONTROL: Final = encode_control_request(RequestControl())
CONTROL_ANSWER_WAIT_S: Final = 2.0  # as the link's control_response_timeout_s default
CONNECT_ATTEMPTS: Final = 3
CONNECT_TIMEOUT_S: Final = 15.0
CCCD_GAP_S: Final = 0.1  # KingSmith drops CCCD writes < ~30 ms apart (docs/ble-client.md)

_NAMES: Final = {
    FEATURE_UUID: "Fitness Machine Feature",
    TREADMILL_DATA_UUID: "Treadmill Data",
    TRAINING_STATUS_UUID: "Training Status",
    SPEED_RANGE_UUID: "Supported Speed Range",
    INCLINATION_RANGE_UUID: "Supported Inclination Range",
    CONTROL_POINT_UUID: "Control Point",
    MACHINE_STATUS_UUID: "Machine Status",
    MANUFACTURER_NAME_UUID: "Manufacturer Name",
    MODEL_NUMBER_UUID: "Model Number",
    SERIAL_NUMBER_UUID: "Serial Number",
    HARDWARE_REVISION_UUID: "Hardware Revision",
    FIRMWARE_REVISION_UUID: "Firmware Revision",
    SOFTWARE_REVISION_UUID: "Software Revision",
}
_DIS: Final = (
    MANUFACTURER_NAME_UUID,
    MODEL_NUMBER_UUID,
    SERIAL_NUMBER_UUID,
    HARDWARE_REVISION_UUID,
    FIRMWARE_REVISION_UUID,
    SOFTWARE_REVISION_UUID,
)


class DiagnoseError(Exception):
    """The deck could not be diagnosed; the message says what to check."""


def characteristic_name(uuid: str) -> str:
    name = _NAMES.get(uuid)
    if name is not None:
        return f"{name} ({uuid[4:8]})" if uuid.endswith("-0000-1000-8000-00805f9b34fb") else name
    return uuid


@dataclasses.dataclass
class Heard:
    """What one characteristic notified or indicated."""

    count: int = 0
    first: bytes = b""
    last: bytes = b""


@dataclasses.dataclass
class DeckReport:
    name: str | None
    address: str
    service_uuids: tuple[str, ...]
    service_data: dict[str, bytes]
    properties: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    reads: dict[str, bytes | str] = dataclasses.field(default_factory=dict)  # str: the error
    subscribe_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    heard: dict[str, Heard] = dataclasses.field(default_factory=dict)
    control: str | None = None  # what Request Control got, with --control
    dropped_after_s: float | None = None
    seconds: float = 0.0


async def probe_deck(
    backend: GattBackend,
    target: TargetSelector,
    *,
    clock: Clock,
    seconds: float,
    request_control: bool = False,
    scan_timeout_s: float = 10.0,
) -> DeckReport:
    """Connect to `target`, read and subscribe to everything, listen `seconds`, disconnect.

    Pass a `TracingGattBackend` to record it all. Raises `DiagnoseError`."""
    found = await backend.find(lambda adv: is_target(adv, target), scan_timeout_s)
    if found is None:
        raise DiagnoseError(
            f"no treadmill with {target.describe()} heard within {scan_timeout_s:g} s; is it on "
            "and in range, and is no other app connected? `treadmilld scan` lists what is nearby"
        )
    adv = found.advertisement
    report = DeckReport(
        name=adv.name,
        address=adv.address,
        service_uuids=adv.service_uuids,
        service_data=dict(adv.service_data),
        seconds=seconds,
    )
    gone = asyncio.Event()
    try:
        connection = await wait_for_on_clock(
            backend.connect(found, attempts=CONNECT_ATTEMPTS, on_disconnect=gone.set),
            CONNECT_TIMEOUT_S,
            clock,
        )
    except (ConnectFailedError, TimeoutError) as error:
        raise DiagnoseError(
            f"connecting to {adv.name or adv.address} failed: {error or 'timed out'}; is another "
            "app connected, or the adapter out of connection slots?"
        ) from error
    started = clock.now()
    try:
        answered = await _read_and_subscribe(connection, report, clock)
        if request_control:
            report.control = await _request_control(connection, report, answered, clock)
        remaining = seconds - (clock.now() - started)
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await wait_for_on_clock(gone.wait(), remaining, clock)
        if gone.is_set():
            report.dropped_after_s = round(clock.now() - started, 2)
    finally:
        if not gone.is_set():
            with contextlib.suppress(GattError):
                await connection.disconnect()
    return report


async def _read_and_subscribe(
    connection: GattConnection, report: DeckReport, clock: Clock
) -> asyncio.Event:
    """Read every readable known characteristic, subscribe to every one that notifies or
    indicates; the event is set when the Control Point says something."""
    for uuid in KNOWN_CHARACTERISTICS:
        properties = connection.properties(uuid)
        if properties:
            report.properties[uuid] = properties
    for uuid, properties in report.properties.items():
        if "read" in properties:
            try:
                report.reads[uuid] = await connection.read(uuid)
            except GattError as error:
                report.reads[uuid] = str(error)
    answered = asyncio.Event()
    for uuid, properties in report.properties.items():
        if not properties & {PROPERTY_NOTIFY, PROPERTY_INDICATE}:
            continue
        heard = report.heard.setdefault(uuid, Heard())

        def on_value(data: bytes, heard: Heard = heard, uuid: str = uuid) -> None:
            heard.count += 1
            heard.first = heard.first or data
            heard.last = data
            if uuid == CONTROL_POINT_UUID:
                answered.set()

        try:
            await connection.subscribe(uuid, on_value)
        except GattError as error:
            report.subscribe_errors[uuid] = str(error)
        await clock.sleep(CCCD_GAP_S)
    return answered


async def _request_control(
    conn: GattConnection, report: DeckReport, answered: asyncio.Event, clock: Clock
) -> str:
    """Write Request Control (and nothing else) the way the deck's properties allow."""
    properties = report.properties.get(CONTROL_POINT_UUID, frozenset())
    if not properties:
        return "not sent: the deck has no Control Point"
    try:
        if PROPERTY_WRITE in properties:
            await conn.write(CONTROL_POINT_UUID, REQUEST_CONTROL)
            how = "written with response"
        elif PROPERTY_WRITE_WITHOUT_RESPONSE in properties:
            await conn.write_without_response(CONTROL_POINT_UUID, REQUEST_CONTROL)
            how = "written without response"
        else:
            return "not sent: the Control Point offers neither Write nor Write Without Response"
    except GattError as error:
        return f"refused: {error}"
    with contextlib.suppress(TimeoutError):
        await wait_for_on_clock(answered.wait(), CONTROL_ANSWER_WAIT_S, clock)
    heard = report.heard.get(CONTROL_POINT_UUID)
    if heard is None or not heard.count:
        return f"{how}; no answer within {CONTROL_ANSWER_WAIT_S:g} s"
    try:
        response = decode_control_response(heard.last)
    except CodecError as error:
        return f"{how}; answered {heard.last.hex(' ')} ({error})"
    return f"{how}; answered {heard.last.hex(' ')}: {response.result.name.lower()}"


def _decoded(uuid: str, data: bytes) -> str:
    decoders = {
        FEATURE_UUID: decode_feature,
        SPEED_RANGE_UUID: decode_speed_range,
        INCLINATION_RANGE_UUID: decode_inclination_range,
        TREADMILL_DATA_UUID: decode_treadmill_data,
        MACHINE_STATUS_UUID: decode_machine_status,
        TRAINING_STATUS_UUID: decode_training_status,
        CONTROL_POINT_UUID: decode_control_response,
    }
    decoder = decoders.get(uuid)
    if decoder is None:
        return ""
    try:
        value: object = decoder(data)
    except CodecError as error:
        return f"  (does not decode: {error})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
        return f"  {type(value).__name__} {fields}"
    return f"  {value}"


def format_report(report: DeckReport, trace: Path | None) -> str:
    lines = ["Treadmill", f"  name                 {report.name or '-'}"]
    lines.append(f"  address              {report.address}")
    lines.append(f"  advertised services  {', '.join(report.service_uuids) or '-'}")
    for uuid, data in report.service_data.items():
        lines.append(f"  service data         {uuid[4:8]}: {data.hex(' ')}")
    lines += ["", "Device Information"]
    for uuid in _DIS:
        value = report.reads.get(uuid)
        if isinstance(value, bytes):
            shown = value.decode("utf-8", errors="replace")
            lines.append(f"  {_NAMES[uuid]:<20} {shown!r}  ({value.hex(' ')})")
    if not any(uuid in report.reads for uuid in _DIS):
        lines.append("  none")
    lines += ["", "Characteristics (properties; value read)"]
    for uuid, properties in report.properties.items():
        lines.append(f"  {characteristic_name(uuid)}: {', '.join(sorted(properties))}")
        value = report.reads.get(uuid)
        if isinstance(value, bytes):
            lines.append(f"    read {value.hex(' ') or '(empty)'}{_decoded(uuid, value)}")
        elif isinstance(value, str):
            lines.append(f"    read failed: {value}")
    lines += _control_and_heard(report)
    if trace is not None:
        lines += ["", f"Trace written to {trace} (docs/capture.md; it holds the deck's address)"]
    return "\n".join(lines) + "\n"


def _control_and_heard(report: DeckReport) -> list[str]:
    control = report.properties.get(CONTROL_POINT_UUID)
    lines = ["", "Control Point"]
    if control is None:
        lines.append("  absent: this deck can be watched but not driven")
    else:
        lines.append(f"  properties           {', '.join(sorted(control))}")
        lines.append(f"  Request Control      {report.control or 'not sent (add --control)'}")
    lines += ["", f"Heard in {report.seconds:g} s"]
    for uuid, heard in report.heard.items():
        error = report.subscribe_errors.get(uuid)
        if error is not None:
            lines.append(f"  {characteristic_name(uuid)}: subscribing failed: {error}")
            continue
        lines.append(f"  {characteristic_name(uuid)}: {heard.count} notification(s)")
        if heard.count:
            lines.append(f"    last {heard.last.hex(' ')}{_decoded(uuid, heard.last)}")
    if report.dropped_after_s is not None:
        lines.append(f"  the deck dropped the link after {report.dropped_after_s:g} s")
    return lines


@dataclasses.dataclass(frozen=True)
class DeckChoice:
    """Which deck `diagnose` talks to, from the command line."""

    treadmill: str | None = None
    address: str | None = None
    name: str | None = None


@contextlib.asynccontextmanager
async def _backend_for(
    choice: DeckChoice, settings: Settings | None, clock: Clock
) -> AsyncIterator[tuple[GattBackend, TargetSelector]]:
    from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - bleak lazily

    if choice.address is not None:
        yield BleakGattBackend(clock), TargetSelector(address=choice.address)
        return
    if choice.name is not None:
        yield BleakGattBackend(clock), TargetSelector(name_contains=choice.name)
        return
    assert settings is not None  # diagnose_deck_command loads it for --treadmill
    configured = {t.id: (i, t) for i, t in enumerate(settings.treadmills)}
    if choice.treadmill not in configured:
        known = ", ".join(configured) or "none"
        raise ConfigError(
            f"no treadmill {choice.treadmill!r} in the configuration (configured: {known}); "
            "give one of those ids, or --address / --name"
        )
    index, treadmill = configured[choice.treadmill]
    if treadmill.simulated is None:
        yield BleakGattBackend(clock), treadmill.target()
        return
    from treadmilld.app.simulation import (  # noqa: PLC0415
        import_simulator,
        simulated_deck,
        start_simulated_decks,
    )

    spec = simulated_deck(index, treadmill)
    simulator = import_simulator()
    async with (
        simulator.SimulatedFleet(clock) as fleet,
        contextlib.AsyncExitStack() as stack,
    ):
        deck = (await start_simulated_decks(stack, fleet, {treadmill.id: spec}))[treadmill.id]
        yield (
            BleakGattBackend(
                clock,
                scanner_backend=fleet.scanner_backend,
                client_backend=fleet.client_backend,
            ),
            TargetSelector(address=deck.address),
        )


async def diagnose_deck(
    choice: DeckChoice,
    settings: Settings | None,
    *,
    clock: Clock,
    seconds: float,
    trace: Path,
    request_control: bool,
    limits: TraceLimits | None = None,
) -> str:
    """Probe the chosen deck with a trace; the printed summary."""
    async with _backend_for(choice, settings, clock) as (backend, target):
        writer = TraceWriter(
            trace, clock=clock, version=__version__, limits=limits, note="treadmilld diagnose"
        )
        try:
            report = await probe_deck(
                TracingGattBackend(backend, writer),
                target,
                clock=clock,
                seconds=seconds,
                request_control=request_control,
            )
        finally:
            writer.close()
    return format_report(report, trace)
