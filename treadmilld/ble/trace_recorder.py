"""Recording the GATT traffic of a treadmill link to a trace file (the format: `trace.py`).

The recorder sits on our own GATT seam (`treadmilld.ble.gatt`): a `TracingGattBackend` wraps
any `GattBackend` and hands out `TracingGattConnection`s, so the link, `treadmilld diagnose`
and the tests record the same way whatever the stack below is (BlueZ through bleak, or the
simulator).

The file is flushed after every line and capped (`TraceLimits`): when a cap is reached a last
`truncated` line is written and recording stops, so a trace forgotten on a Raspberry Pi cannot
fill its SD card. Recording never breaks the link: a write error (a full disk) is logged once
and recording stops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final, Literal

import structlog
from pydantic import BaseModel

from treadmilld.ble.gatt import (
    Advertisement,
    FoundDevice,
    GattBackend,
    GattConnection,
    GattError,
    NotificationCallback,
)
from treadmilld.ble.trace import (
    FORMAT_VERSION,
    KNOWN_CHARACTERISTICS,
    AdvertisementEvent,
    CharacteristicEntry,
    ConnectEvent,
    ConnectFailedEvent,
    DeckIdentity,
    DisconnectEvent,
    EndEvent,
    GattTableEvent,
    NotificationEvent,
    PresenceEvent,
    ReadEvent,
    ServiceEntry,
    SubscribeEvent,
    TraceHeader,
    TraceLimits,
    TruncatedEvent,
    WriteEvent,
    WriteFailedEvent,
    service_of,
)
from treadmilld.runtime.clock import Clock

_log = structlog.get_logger(__name__)

# Room kept under max_bytes for the final `truncated` line, so the cap is never exceeded.
_TRUNCATION_RESERVE_BYTES: Final = 256


class TraceWriter:
    """Appends events to one trace file, flushed per line, within `TraceLimits`.

    Times come from `clock` (the link's), relative to the writer's creation. The header is
    written with the first event (by then the deck is usually identified) or on `close()`.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock,
        version: str,
        limits: TraceLimits | None = None,
        deck: DeckIdentity | None = None,
        note: str | None = None,
    ) -> None:
        self.path = path
        self._clock = clock
        self._started = clock.now()
        self._limits = limits or TraceLimits()
        self._header = TraceHeader(
            version=FORMAT_VERSION,
            treadmilld=version,
            deck=deck or DeckIdentity(),
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            limits=self._limits,
            note=note,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = path.open("w", encoding="utf-8")
        self._header_written = False
        self._stopped = False
        self._truncated = False
        self._events = 0
        self._bytes = 0

    @property
    def events_written(self) -> int:
        return self._events

    @property
    def truncated(self) -> bool:
        """Whether a cap was reached (recording stopped with a `truncated` line)."""
        return self._truncated

    def elapsed(self) -> float:
        return round(self._clock.now() - self._started, 6)

    def identify(self, name: str | None, address: str) -> None:
        """Name the deck in the header, if the header is not written yet."""
        if not self._header_written and self._header.deck.address is None:
            self._header = self._header.model_copy(
                update={"deck": DeckIdentity(name=name, address=address)}
            )

    def record(self, event: BaseModel) -> None:
        """Append one event (built with `t=self.elapsed()`); ignored once stopped."""
        if self._stopped or self._file is None:
            return
        self._ensure_header()
        line = event.model_dump_json() + "\n"
        size = len(line.encode("utf-8"))
        if self._events + 1 > self._limits.max_events:
            self._truncate(f"max_events {self._limits.max_events} reached")
            return
        if self._bytes + size > self._limits.max_bytes - _TRUNCATION_RESERVE_BYTES:
            self._truncate(f"max_bytes {self._limits.max_bytes} reached")
            return
        if self._write(line):
            self._events += 1

    def close(self) -> None:
        """Write the `end` line (unless truncated) and close the file; idempotent."""
        if self._file is None:
            return
        if not self._stopped:
            self._ensure_header()
            self._write(EndEvent(t=self.elapsed(), events=self._events).model_dump_json() + "\n")
        self._file.close()
        self._file = None
        self._stopped = True

    def _ensure_header(self) -> None:
        if not self._header_written:
            self._header_written = True
            self._write(self._header.model_dump_json(exclude_none=True) + "\n")

    def _truncate(self, reason: str) -> None:
        self._write(
            TruncatedEvent(
                t=self.elapsed(), reason=reason, events=self._events, bytes=self._bytes
            ).model_dump_json()
            + "\n"
        )
        self._stopped = True
        self._truncated = True
        _log.warning("trace_truncated", path=str(self.path), reason=reason)

    def _write(self, line: str) -> bool:
        assert self._file is not None  # checked by every caller
        try:
            self._file.write(line)
            self._file.flush()
        except (OSError, ValueError) as error:  # ValueError: the file was closed under us
            # A full SD card must not take the link down: stop recording, say so once.
            self._stopped = True
            _log.error("trace_write_failed", path=str(self.path), error=str(error))
            return False
        self._bytes += len(line.encode("utf-8"))
        return True


class TracingGattConnection:
    """A `GattConnection` that records every operation to a `TraceWriter`, then delegates."""

    def __init__(self, inner: GattConnection, writer: TraceWriter) -> None:
        self._inner = inner
        self._writer = writer
        self._asked: set[str] = set()
        self.disconnect_requested = False

    @property
    def address(self) -> str:
        return self._inner.address

    def has_characteristic(self, uuid: str) -> bool:
        present = self._inner.has_characteristic(uuid)
        self._note(uuid, present)
        return present

    def properties(self, uuid: str) -> frozenset[str]:
        found = self._inner.properties(uuid)
        self._note(uuid, bool(found))
        return found

    def _note(self, uuid: str, present: bool) -> None:
        # Once per UUID and connection: the link asks the same questions before every command.
        if uuid not in self._asked:
            self._asked.add(uuid)
            properties = sorted(self._inner.properties(uuid)) if present else None
            self._writer.record(
                PresenceEvent(
                    t=self._writer.elapsed(), uuid=uuid, present=present, properties=properties
                )
            )

    def record_table(self) -> None:
        """Record the properties of every characteristic in `KNOWN_CHARACTERISTICS` the deck
        has, as a (partial) `gatt_table` event."""
        services: dict[str, list[CharacteristicEntry]] = {}
        for uuid in KNOWN_CHARACTERISTICS:
            found = self._inner.properties(uuid)
            if found:
                services.setdefault(service_of(uuid), []).append(
                    CharacteristicEntry(uuid=uuid, properties=sorted(found))
                )
        self._writer.record(
            GattTableEvent(
                t=self._writer.elapsed(),
                complete=False,
                services=[ServiceEntry(uuid=u, characteristics=c) for u, c in services.items()],
            )
        )

    async def read(self, uuid: str) -> bytes:
        try:
            value = await self._inner.read(uuid)
        except GattError as error:
            self._writer.record(ReadEvent(t=self._writer.elapsed(), uuid=uuid, error=str(error)))
            raise
        self._writer.record(ReadEvent(t=self._writer.elapsed(), uuid=uuid, value=value))
        return value

    async def write(self, uuid: str, data: bytes) -> None:
        self._writer.record(
            WriteEvent(t=self._writer.elapsed(), uuid=uuid, data=data, response=True)
        )
        try:
            await self._inner.write(uuid, data)
        except GattError as error:
            self._record_failure(uuid, error)
            raise

    async def write_without_response(self, uuid: str, data: bytes) -> None:
        self._writer.record(
            WriteEvent(t=self._writer.elapsed(), uuid=uuid, data=data, response=False)
        )
        try:
            await self._inner.write_without_response(uuid, data)
        except GattError as error:
            self._record_failure(uuid, error)
            raise

    def _record_failure(self, uuid: str, error: GattError) -> None:
        self._writer.record(WriteFailedEvent(t=self._writer.elapsed(), uuid=uuid, error=str(error)))

    async def subscribe(self, uuid: str, callback: NotificationCallback) -> None:
        writer = self._writer

        def recorded(data: bytes) -> None:
            writer.record(NotificationEvent(t=writer.elapsed(), uuid=uuid, data=data))
            callback(data)

        try:
            await self._inner.subscribe(uuid, recorded)
        except GattError as error:
            writer.record(SubscribeEvent(t=writer.elapsed(), uuid=uuid, error=str(error)))
            raise
        writer.record(SubscribeEvent(t=writer.elapsed(), uuid=uuid))

    async def disconnect(self) -> None:
        self.disconnect_requested = True
        await self._inner.disconnect()


class TracingGattBackend:
    """A `GattBackend` recording the matched advertisement, connects, disconnects and (through
    `TracingGattConnection`) all traffic of every connection it opens."""

    def __init__(self, inner: GattBackend, writer: TraceWriter) -> None:
        self._inner = inner
        self.writer = writer

    async def find(
        self, matches: Callable[[Advertisement], bool], timeout_s: float
    ) -> FoundDevice | None:
        found = await self._inner.find(matches, timeout_s)
        if found is not None:
            adv = found.advertisement
            self.writer.identify(adv.name, adv.address)
            self.writer.record(
                AdvertisementEvent(
                    t=self.writer.elapsed(),
                    address=adv.address,
                    name=adv.name,
                    rssi=adv.rssi,
                    service_uuids=list(adv.service_uuids),
                    service_data=dict(adv.service_data),
                )
            )
        return found

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        return await self._inner.scan(timeout_s)

    async def connect(
        self, device: FoundDevice, *, attempts: int, on_disconnect: Callable[[], None]
    ) -> GattConnection:
        writer = self.writer
        traced: list[TracingGattConnection] = []

        def disconnected() -> None:
            by: Literal["central", "peripheral"] = (
                "central" if traced and traced[0].disconnect_requested else "peripheral"
            )
            writer.record(DisconnectEvent(t=writer.elapsed(), by=by))
            on_disconnect()

        address = device.advertisement.address
        try:
            connection = await self._inner.connect(
                device, attempts=attempts, on_disconnect=disconnected
            )
        except GattError as error:
            writer.record(ConnectFailedEvent(t=writer.elapsed(), address=address, error=str(error)))
            raise
        writer.record(
            ConnectEvent(t=writer.elapsed(), address=address, name=device.advertisement.name)
        )
        wrapper = TracingGattConnection(connection, writer)
        traced.append(wrapper)
        wrapper.record_table()
        return wrapper
