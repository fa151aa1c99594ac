"""The trace format: what a recording of a treadmill link's GATT traffic holds, and reading it.

A trace is JSON Lines (one JSON object per line, docs/capture.md has the full format): a header
line, then one event per line with `t`, seconds on the link's clock since the trace began.
Bytes are hex strings. `trace_recorder.py` writes traces; `load_trace` reads one back (the
simulator's replay, `treadmilld_sim.replay`, uses it); a malformed file raises
`TraceFormatError` naming the file, the line and the fix.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)

from treadmilld.ftms import DEVICE_INFORMATION_SERVICE_UUID, FTMS_SERVICE_UUID, uuid16
from treadmilld.ftms.vendor import KINGSMITH_UNLOCK_CHARACTERISTIC_UUID

FORMAT_NAME: Final = "treadmilld-trace"
FORMAT_VERSION: Final = 1

# The seam cannot list a deck's whole GATT table, only answer for a UUID; on connect the tracer
# asks for every characteristic treadmilld knows of (Bluetooth Assigned Numbers): the FTMS range
# 0x2ACC..0x2ADA, Device Information 0x2A23..0x2A2A and 0x2A50, and the KingSmith unlock.
_FTMS_RANGE: Final = range(0x2ACC, 0x2ADB)
_DIS_RANGE: Final = (*range(0x2A23, 0x2A2B), 0x2A50)
KNOWN_CHARACTERISTICS: Final = (
    *(uuid16(short) for short in _FTMS_RANGE),
    *(uuid16(short) for short in _DIS_RANGE),
    KINGSMITH_UNLOCK_CHARACTERISTIC_UUID,
)
# Characteristics outside FTMS and Device Information are put in this service when a table is
# rebuilt from a trace (a Urevo E1L has a vendor service of that number: real-decks.md §1).
VENDOR_SERVICE_UUID: Final = uuid16(0xFFF0)


def service_of(uuid: str) -> str:
    """The service a characteristic is filed under when the trace does not say."""
    if uuid.startswith("0000") and uuid.endswith("-0000-1000-8000-00805f9b34fb"):
        short = int(uuid[4:8], 16)
        if short in _FTMS_RANGE:
            return FTMS_SERVICE_UUID
        if short in _DIS_RANGE:
            return DEVICE_INFORMATION_SERVICE_UUID
    return VENDOR_SERVICE_UUID


def _parse_hex(value: object) -> object:
    """Hex text ("80 03 01", "800301", "80:03:01") to bytes; anything else is left to pydantic."""
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.replace(":", " "))
        except ValueError:
            raise ValueError(
                f"{value!r} is not hex bytes; write bytes as hex pairs such as '80 03 01'"
            ) from None
    return value


def to_hex(data: bytes) -> str:
    """Bytes as the trace writes them: lowercase hex pairs separated by spaces."""
    return data.hex(" ")


Hex = Annotated[bytes, BeforeValidator(_parse_hex), PlainSerializer(to_hex, return_type=str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceLimits(_Model):
    """Caps on one trace file; whichever is reached first ends the recording."""

    max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=4096,
        description="the file never grows past this many bytes (the last line included)",
    )
    max_events: int = Field(
        default=200_000, ge=10, description="at most this many event lines after the header"
    )


class DeckIdentity(_Model):
    name: str | None = None
    address: str | None = None


class TraceHeader(_Model):
    """The first line of every trace."""

    type: Literal["header"] = "header"
    format: Literal["treadmilld-trace"] = FORMAT_NAME
    version: int = Field(ge=1)
    treadmilld: str = Field(description="the treadmilld version that wrote the trace")
    deck: DeckIdentity = DeckIdentity()
    started_at: str = Field(description="wall-clock time the trace began, ISO 8601 with zone")
    limits: TraceLimits = TraceLimits()
    note: str | None = None


class AdvertisementEvent(_Model):
    """The advertisement the link matched (and connected to next)."""

    type: Literal["advertisement"] = "advertisement"
    t: float
    address: str
    name: str | None = None
    rssi: int | None = None
    service_uuids: list[str] = []
    service_data: dict[str, Hex] = {}


class ConnectEvent(_Model):
    type: Literal["connect"] = "connect"
    t: float
    address: str
    name: str | None = None


class ConnectFailedEvent(_Model):
    type: Literal["connect_failed"] = "connect_failed"
    t: float
    address: str
    error: str


class CharacteristicEntry(_Model):
    uuid: str
    properties: list[str] = Field(
        default=[],
        description="bleak's names: read, write, write-without-response, notify, indicate, ...",
    )


class ServiceEntry(_Model):
    uuid: str
    characteristics: list[CharacteristicEntry] = []


class GattTableEvent(_Model):
    """The deck's GATT table, written right after `connect`.

    `complete` is false when it holds only the characteristics the tracer asked for
    (`KNOWN_CHARACTERISTICS`, filed by `service_of`): the seam cannot list a whole table."""

    type: Literal["gatt_table"] = "gatt_table"
    t: float
    complete: bool = False
    services: list[ServiceEntry]


class PresenceEvent(_Model):
    """The link asked whether the deck has a characteristic (once per UUID and connection)."""

    type: Literal["characteristic"] = "characteristic"
    t: float
    uuid: str
    present: bool
    properties: list[str] | None = None


class ReadEvent(_Model):
    type: Literal["read"] = "read"
    t: float
    uuid: str
    value: Hex | None = None
    error: str | None = None


class WriteEvent(_Model):
    """A write, recorded when it is issued (so a deck's answer, which may come before the
    write returns, follows it in the file)."""

    type: Literal["write"] = "write"
    t: float
    uuid: str
    data: Hex
    response: bool = Field(description="true: Write Request; false: Write Without Response")


class WriteFailedEvent(_Model):
    """The write recorded last on `uuid` failed (an ATT error, the link gone)."""

    type: Literal["write_failed"] = "write_failed"
    t: float
    uuid: str
    error: str


class SubscribeEvent(_Model):
    type: Literal["subscribe"] = "subscribe"
    t: float
    uuid: str
    error: str | None = None


class NotificationEvent(_Model):
    """A notification or an indication (the seam does not tell them apart; the
    characteristic's properties in the table do)."""

    type: Literal["notification"] = "notification"
    t: float
    uuid: str
    data: Hex


class DisconnectEvent(_Model):
    type: Literal["disconnect"] = "disconnect"
    t: float
    by: Literal["central", "peripheral"] = Field(
        description="central: we disconnected; peripheral: the deck or the stack dropped the link"
    )
    error: str | None = None


class TruncatedEvent(_Model):
    """The last line of a trace that hit a cap: nothing after it was recorded."""

    type: Literal["truncated"] = "truncated"
    t: float
    reason: str
    events: int
    bytes: int


class EndEvent(_Model):
    """The last line of a trace closed normally."""

    type: Literal["end"] = "end"
    t: float
    events: int


TraceEvent = Annotated[
    AdvertisementEvent
    | ConnectEvent
    | ConnectFailedEvent
    | GattTableEvent
    | PresenceEvent
    | ReadEvent
    | WriteEvent
    | WriteFailedEvent
    | SubscribeEvent
    | NotificationEvent
    | DisconnectEvent
    | TruncatedEvent
    | EndEvent,
    Field(discriminator="type"),
]
_EVENT: Final[TypeAdapter[TraceEvent]] = TypeAdapter(TraceEvent)
EVENT_TYPES: Final = (
    "advertisement",
    "connect",
    "connect_failed",
    "gatt_table",
    "characteristic",
    "read",
    "write",
    "write_failed",
    "subscribe",
    "notification",
    "disconnect",
    "truncated",
    "end",
)


@dataclasses.dataclass(frozen=True, slots=True)
class TraceSession:
    """One connection of a trace: from the advertisement matched before it (if recorded) to
    its disconnect (or the end of the trace)."""

    advertisement: AdvertisementEvent | None
    connect: ConnectEvent
    events: tuple[TraceEvent, ...]  # after `connect`, up to and including its disconnect

    @property
    def gatt_table(self) -> GattTableEvent | None:
        return next((e for e in self.events if isinstance(e, GattTableEvent)), None)


@dataclasses.dataclass(frozen=True, slots=True)
class Trace:
    header: TraceHeader
    events: tuple[TraceEvent, ...]
    source: str = "<events>"

    @property
    def truncated(self) -> bool:
        return any(isinstance(e, TruncatedEvent) for e in self.events)

    def sessions(self) -> list[TraceSession]:
        """Every connection in the trace, in order."""
        sessions: list[TraceSession] = []
        advertisement: AdvertisementEvent | None = None
        current: tuple[ConnectEvent, AdvertisementEvent | None, list[TraceEvent]] | None = None
        for event in self.events:
            if current is not None:
                connect, seen, body = current
                if isinstance(event, ConnectEvent | AdvertisementEvent):
                    sessions.append(TraceSession(seen, connect, tuple(body)))
                    current = None
                else:
                    body.append(event)
                    if isinstance(event, DisconnectEvent):
                        sessions.append(TraceSession(seen, connect, tuple(body)))
                        current = None
                    continue
            if isinstance(event, AdvertisementEvent):
                advertisement = event
            elif isinstance(event, ConnectEvent):
                current = (event, advertisement, [])
                advertisement = None
        if current is not None:
            connect, seen, body = current
            sessions.append(TraceSession(seen, connect, tuple(body)))
        return sessions


class TraceFormatError(ValueError):
    """A trace file that cannot be read; the message names the file, the line and the fix."""


def load_trace(source: Path | str | Iterable[Mapping[str, Any] | str]) -> Trace:
    """Read a trace from a file (a `Path` or a path string) or from its lines (JSON strings or
    already-parsed mappings, header first). Raises `TraceFormatError`."""
    if isinstance(source, Path | str):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise TraceFormatError(
                f"{path}: cannot read the trace ({error}); give the path of a .jsonl file "
                "written by `treadmilld diagnose` or `treadmilld run --trace`"
            ) from None
        return _parse_lines(str(path), text.splitlines())
    return _parse_lines("<events>", list(source))


def _parse_lines(name: str, lines: Sequence[Mapping[str, Any] | str]) -> Trace:
    header: TraceHeader | None = None
    events: list[TraceEvent] = []
    for number, raw in enumerate(lines, start=1):
        where = f"{name}, line {number}"
        if isinstance(raw, str):
            if not raw.strip():
                continue
            try:
                item: Any = json.loads(raw)
            except json.JSONDecodeError as error:
                last = all(not str(rest).strip() for rest in lines[number:])
                fix = (
                    "a trace cut off mid-line (power lost, disk full) is repaired by deleting "
                    "that last line"
                    if last
                    else "restore the line from the original file, or delete it if it was "
                    "added by hand"
                )
                raise TraceFormatError(
                    f"{where}: not JSON ({error.msg} at column {error.colno}). Every line must "
                    f"be one JSON object; {fix}"
                ) from None
        else:
            item = raw
        if not isinstance(item, Mapping):
            raise TraceFormatError(
                f"{where}: a {type(item).__name__}, not a JSON object; every line must be one "
                'object such as {"t": 0.5, "type": "notification", ...}'
            )
        if header is None:
            header = _parse_header(where, item)
            continue
        try:
            events.append(_EVENT.validate_python(item))
        except ValidationError as error:
            raise TraceFormatError(
                f"{where}: {_describe(error)}. Known event types: {', '.join(EVENT_TYPES)}; "
                "docs/capture.md lists the fields of each"
            ) from None
    if header is None:
        raise TraceFormatError(
            f"{name}: empty; a trace starts with its header line "
            f'{{"type": "header", "format": "{FORMAT_NAME}", "version": {FORMAT_VERSION}, ...}}'
        )
    return Trace(header=header, events=tuple(events), source=name)


def _parse_header(where: str, item: Mapping[str, Any]) -> TraceHeader:
    if item.get("type") != "header" or item.get("format") != FORMAT_NAME:
        raise TraceFormatError(
            f"{where}: not a treadmilld trace header; the first line must be "
            f'{{"type": "header", "format": "{FORMAT_NAME}", "version": {FORMAT_VERSION}, '
            '"treadmilld": "...", "started_at": "..."}'
        )
    version = item.get("version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise TraceFormatError(
            f"{where}: trace format version {version} is newer than this treadmilld reads "
            f"({FORMAT_VERSION}); upgrade treadmilld"
        )
    try:
        return TraceHeader.model_validate(item)
    except ValidationError as error:
        raise TraceFormatError(
            f"{where}: bad header: {_describe(error)}; docs/capture.md shows a valid one"
        ) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors(include_url=False):
        location = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)
