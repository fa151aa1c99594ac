"""Replaying a recorded deck session (a treadmilld trace, docs/capture.md) on a Bumble device.

A `ReplayedDeck` is a GATT server built from one session of a trace:
- its table has the trace's characteristics (same UUIDs and properties; from the recorded
  `gatt_table`, else inferred from what the link asked, read, wrote and subscribed to);
- reads answer the recorded values, in order (the last one repeats);
- it advertises what the trace's matched advertisement carried (name, service UUIDs, service
  data), from the trace's address unless told otherwise;
- after a central connects, the notifications recorded before the first write are sent at their
  recorded offsets from the connection;
- a write that matches the next recorded write (same UUID and bytes) is answered with the
  notifications that followed it in the trace, at their recorded offsets from that write; a
  recorded disconnect by the deck is replayed the same way;
- a write that does not match is logged (`replay_write_mismatch`, what was expected and what came)
  and kept in `mismatches`, and gets no answer. A write matching one of the next few recorded
  writes skips to it (the skipped ones count as mismatches).

Every connection replays the session from its start. What cannot be replayed: ATT errors the
deck gave (the trace keeps only their text), and whether a write came with or without response
(Bumble's server hands both to the same callback), so matching is by UUID and bytes.

Tests: `async with replay_trace(path, fleet=fleet) as deck: ...`; a person:
`python -m treadmilld_sim.replay FILE` (connects treadmilld's own link to the replay and prints
what it sees).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import structlog
from bumble import att
from bumble.core import UUID, BaseBumbleError
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import HCI_Error, HCI_ErrorCode

from treadmilld.ble.trace import (
    AdvertisementEvent,
    CharacteristicEntry,
    DisconnectEvent,
    NotificationEvent,
    PresenceEvent,
    ReadEvent,
    ServiceEntry,
    SubscribeEvent,
    Trace,
    TraceFormatError,
    TraceSession,
    WriteEvent,
    load_trace,
    service_of,
    to_hex,
)
from treadmilld.ftms import CONTROL_POINT_UUID
from treadmilld.runtime.clock import Clock, LoopClock
from treadmilld.runtime.waiting import sleep_until_set
from treadmilld_sim.fleet import SimulatedFleet
from treadmilld_sim.link import SimulatedRadio
from treadmilld_sim.server import lose_link

_log = structlog.get_logger(__name__)

_SIG_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"

# How long a recorded notification waits for the central to subscribe to its characteristic
# before it is dropped (treadmill clock). A real deck's notification to an unsubscribed
# central is lost at once; the wait absorbs the central subscribing later than the app did.
SUBSCRIBE_WAIT_S: Final = 5.0
# A write matching one of this many next recorded writes skips to it.
LOOKAHEAD_WRITES: Final = 8

# Bleak's property names (what the trace stores) as Bumble's flags.
_PROPERTY_FLAGS: Final[Mapping[str, Characteristic.Properties]] = {
    "broadcast": Characteristic.Properties.BROADCAST,
    "read": Characteristic.Properties.READ,
    "write-without-response": Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    "write": Characteristic.Properties.WRITE,
    "notify": Characteristic.Properties.NOTIFY,
    "indicate": Characteristic.Properties.INDICATE,
    "authenticated-signed-writes": Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES,
}
_CCCD_NOTIFY: Final = 0x01
_CCCD_INDICATE: Final = 0x02

# Advertising data types (Bluetooth Assigned Numbers, "Common Data Types") and the legacy
# 31-byte payload limit (Core Vol 6, Part B, 2.3.1.1).
_AD_FLAGS: Final = 0x01
_AD_COMPLETE_UUID16: Final = 0x03
_AD_COMPLETE_UUID128: Final = 0x07
_AD_COMPLETE_NAME: Final = 0x09
_AD_SERVICE_DATA_UUID16: Final = 0x16
_AD_SERVICE_DATA_UUID128: Final = 0x21
_LEGACY_ADVERTISING_MAX: Final = 31
_FLAGS_LE_GENERAL_DISCOVERABLE: Final = 0x06


def _short(uuid: str) -> int | None:
    """The 16-bit number of a SIG-base UUID, else None."""
    if uuid.startswith("0000") and uuid.endswith(_SIG_BASE_SUFFIX):
        return int(uuid[4:8], 16)
    return None


def _bumble_uuid(uuid: str) -> Any:
    short = _short(uuid)
    return UUID.from_16_bits(short) if short is not None else UUID(uuid)


def _uuid128_le(uuid: str) -> bytes:
    return bytes.fromhex(uuid.replace("-", ""))[::-1]


def _ad(ad_type: int, value: bytes) -> bytes:
    return bytes((len(value) + 1, ad_type)) + value


def advertising_payloads(
    advertisement: AdvertisementEvent | None, name: str
) -> tuple[bytes, bytes]:
    """Advertising data and scan response carrying what the trace's advertisement did.

    Flags and service UUIDs go in the advertisement; service data and the name follow while
    they fit in 31 bytes, the rest in the scan response (an active scan, as bleak's default,
    merges both, as it did when the deck was recorded).
    """
    items = [_ad(_AD_FLAGS, bytes((_FLAGS_LE_GENERAL_DISCOVERABLE,)))]
    uuids = list(advertisement.service_uuids) if advertisement is not None else []
    short_uuids = [s for s in (_short(u) for u in uuids) if s is not None]
    long_uuids = [u for u in uuids if _short(u) is None]
    if short_uuids:
        items.append(
            _ad(_AD_COMPLETE_UUID16, b"".join(s.to_bytes(2, "little") for s in short_uuids))
        )
    if long_uuids:
        items.append(_ad(_AD_COMPLETE_UUID128, b"".join(_uuid128_le(u) for u in long_uuids)))
    tail: list[bytes] = []
    for uuid, data in (advertisement.service_data if advertisement is not None else {}).items():
        short = _short(uuid)
        if short is not None:
            tail.append(_ad(_AD_SERVICE_DATA_UUID16, short.to_bytes(2, "little") + data))
        else:
            tail.append(_ad(_AD_SERVICE_DATA_UUID128, _uuid128_le(uuid) + data))
    if name:
        tail.append(_ad(_AD_COMPLETE_NAME, name.encode("utf-8")[:29]))
    advertising = b"".join(items)
    scan_response = b""
    for item in tail:
        if not scan_response and len(advertising) + len(item) <= _LEGACY_ADVERTISING_MAX:
            advertising += item
        elif len(scan_response) + len(item) <= _LEGACY_ADVERTISING_MAX:
            scan_response += item
        else:
            _log.warning("replay_advertising_item_dropped", item=item.hex(" "))
    return advertising, scan_response


def _inferred_properties(session: TraceSession) -> dict[str, set[str]]:
    """Properties implied by what the link did (for characteristics the table lacks)."""
    properties: dict[str, set[str]] = {}
    for event in session.events:
        names: set[str] = set()
        if isinstance(event, PresenceEvent) and event.present:
            names = set(event.properties or ())
        elif isinstance(event, ReadEvent) and event.value is not None:
            names = {"read"}
        elif isinstance(event, WriteEvent):
            names = {"write" if event.response else "write-without-response"}
        elif isinstance(event, SubscribeEvent | NotificationEvent):
            # The Control Point indicates (FTMS §4.16); anything else is taken to notify.
            names = {"indicate" if event.uuid == CONTROL_POINT_UUID else "notify"}
        else:
            continue
        properties.setdefault(event.uuid, set()).update(names)
    # A Control Point written without response may answer by notification (Urevo E1L,
    # real-decks.md §1): offer both then.
    if "write-without-response" in properties.get(CONTROL_POINT_UUID, set()):
        properties[CONTROL_POINT_UUID].add("notify")
    return properties


def replay_table(session: TraceSession) -> list[ServiceEntry]:
    """The session's GATT table: the recorded one, plus every characteristic the traffic used
    that it lacks (filed by `service_of`, properties inferred from the traffic)."""
    services: dict[str, list[CharacteristicEntry]] = {}
    listed: set[str] = set()
    table = session.gatt_table
    for service in table.services if table is not None else ():
        services.setdefault(service.uuid, []).extend(service.characteristics)
        listed.update(c.uuid for c in service.characteristics)
    for uuid, names in _inferred_properties(session).items():
        if uuid not in listed:
            services.setdefault(service_of(uuid), []).append(
                CharacteristicEntry(uuid=uuid, properties=sorted(names))
            )
    return [ServiceEntry(uuid=u, characteristics=c) for u, c in services.items()]


@dataclasses.dataclass(frozen=True, slots=True)
class WriteMismatch:
    """A write the replay did not expect (or a recorded write skipped over)."""

    at: float  # replay clock time
    expected: WriteEvent | None  # None: the trace has no more writes
    got_uuid: str | None  # None: the recorded write was skipped, never sent
    got_data: bytes | None

    def describe(self) -> str:
        expected = (
            "no more writes"
            if self.expected is None
            else f"{to_hex(self.expected.data)} to {self.expected.uuid}"
        )
        if self.got_uuid is None or self.got_data is None:
            return f"expected {expected}, which was never written (a later recorded write came)"
        return f"expected {expected}, got {to_hex(self.got_data)} to {self.got_uuid}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    """One thing to send: a notification (`uuid`, `data`), or a drop of the link."""

    offset_s: float
    uuid: str | None
    data: bytes


def deck_name(trace: Trace, session: TraceSession) -> str:
    """The name a replay of `session` advertises: the one the deck was heard with."""
    advertisement = session.advertisement
    return (
        (advertisement.name if advertisement is not None else None)
        or session.connect.name
        or trace.header.deck.name
        or "REPLAY"
    )


def _script(session: TraceSession) -> tuple[list[_Step], list[tuple[WriteEvent, list[_Step]]]]:
    """Steps before the first write (offsets from the connection), and each recorded write
    with the steps that followed it (offsets from that write)."""
    before: list[_Step] = []
    after: list[tuple[WriteEvent, list[_Step]]] = []
    anchor = session.connect.t
    steps = before
    # In time order (a hand-built trace may list lines out of order); stable for equal times.
    for event in sorted(session.events, key=lambda e: e.t):
        if isinstance(event, WriteEvent):
            anchor = event.t
            steps = []
            after.append((event, steps))
        elif isinstance(event, NotificationEvent):
            steps.append(_Step(max(0.0, event.t - anchor), event.uuid, event.data))
        elif isinstance(event, DisconnectEvent) and event.by == "peripheral":
            steps.append(_Step(max(0.0, event.t - anchor), None, b""))
    return before, after


class ReplayedDeck:
    """One session of a trace served by a Bumble device (any HCI transport)."""

    def __init__(
        self,
        device: Any,
        trace: Trace,
        clock: Clock,
        *,
        address: str,
        session: int = 0,
        advertising_interval_ms: float = 20.0,
    ) -> None:
        """Serve session `session` of `trace` on `device`, a powered-off Bumble `Device`
        created with `address` (`replay_trace` makes one on the in-process radio)."""
        sessions = trace.sessions()
        if not sessions:
            raise TraceFormatError(
                f"{trace.source}: no connection recorded (no 'connect' line); record a trace "
                "that connects to the deck"
            )
        if not 0 <= session < len(sessions):
            raise ValueError(
                f"{trace.source} has {len(sessions)} session(s); pick 0..{len(sessions) - 1}"
            )
        self.trace = trace
        self.session = sessions[session]
        self.address = address
        self.name = deck_name(trace, self.session)
        self.mismatches: list[WriteMismatch] = []
        self.matched_writes = 0
        self.received_writes: list[tuple[str, bytes]] = []
        self._device = device
        self._clock = clock
        self._interval_ms = advertising_interval_ms
        self._before, self._after = _script(self.session)
        self._reads: dict[str, list[bytes]] = {}
        for event in self.session.events:
            if isinstance(event, ReadEvent) and event.value is not None:
                self._reads.setdefault(event.uuid, []).append(event.value)
        self._characteristics: dict[str, Any] = {}
        self._connection: Any = None
        self._next_write = 0
        self._read_cursor: dict[str, int] = {}
        self._outbox: asyncio.Queue[tuple[float, _Step]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._subscribed: dict[str, asyncio.Event] = {}
        # Characteristics the recorded central subscribed to: their notifications wait for the
        # replay's central to subscribe; any other is sent only if it already has.
        self._recorded_subscriptions = {
            e.uuid for e in self.session.events if isinstance(e, SubscribeEvent) and not e.error
        }
        self._build_table(replay_table(self.session))
        device.on(device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)

    # -- what a test asks ------------------------------------------------------------------

    @property
    def expected_writes(self) -> list[WriteEvent]:
        return [write for write, _steps in self._after]

    @property
    def unsent_writes(self) -> list[WriteEvent]:
        """Recorded writes not (yet) received on the current or last connection."""
        return self.expected_writes[self._next_write :]

    @property
    def is_connected(self) -> bool:
        return bool(self._device.connections)

    def report(self) -> str:
        lines = [
            f"replayed {self.name} ({self.address}) from {self.trace.source}",
            f"  writes matched {self.matched_writes} of {len(self.expected_writes)} recorded; "
            f"mismatches {len(self.mismatches)}",
        ]
        lines.extend(f"  mismatch: {m.describe()}" for m in self.mismatches)
        lines.extend(f"  not written: {to_hex(w.data)} to {w.uuid}" for w in self.unsent_writes)
        return "\n".join(lines)

    # -- lifecycle -------------------------------------------------------------------------

    async def power_on(self) -> None:
        await self._device.power_on()
        advertising, scan_response = advertising_payloads(self.session.advertisement, self.name)
        await self._device.start_advertising(
            advertising_data=advertising,
            scan_response_data=scan_response or None,
            auto_restart=True,
            advertising_interval_min=self._interval_ms,
            advertising_interval_max=self._interval_ms,
        )
        _log.info("replay_started", deck=self.name, address=self.address, source=self.trace.source)

    async def close(self) -> None:
        for connection in list(self._device.connections.values()):
            with contextlib.suppress(HCI_Error, BaseBumbleError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await connection.disconnect(
                        reason=HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
                    )
        await asyncio.sleep(0)
        await self._stop_sender()
        with contextlib.suppress(HCI_Error, BaseBumbleError):
            await self._device.stop_advertising()
        await self._device.power_off()
        _log.info(
            "replay_finished",
            deck=self.name,
            matched_writes=self.matched_writes,
            mismatches=len(self.mismatches),
        )

    # -- GATT table ------------------------------------------------------------------------

    def _build_table(self, services: Sequence[ServiceEntry]) -> None:
        for service in services:
            characteristics = []
            for entry in service.characteristics:
                characteristic = self._characteristic(entry)
                self._characteristics[entry.uuid] = characteristic
                characteristics.append(characteristic)
            self._device.add_service(Service(_bumble_uuid(service.uuid), characteristics))

    def _characteristic(self, entry: CharacteristicEntry) -> Any:
        properties = Characteristic.Properties(0)
        for name in entry.properties:
            properties |= _PROPERTY_FLAGS.get(name, Characteristic.Properties(0))
        permissions = Characteristic.Permissions(0)
        if properties & Characteristic.Properties.READ:
            permissions |= Characteristic.READABLE
        if properties & (
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE
        ):
            permissions |= Characteristic.WRITEABLE
        uuid = entry.uuid

        def read(_connection: Any) -> bytes:
            if not properties & Characteristic.Properties.READ:
                raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR)
            values = self._reads.get(uuid, [])
            if not values:
                return b""
            index = self._read_cursor.get(uuid, 0)
            self._read_cursor[uuid] = index + 1
            return values[min(index, len(values) - 1)]

        async def write(_connection: Any, value: bytes) -> None:
            self._on_write(uuid, bytes(value))

        value: CharacteristicValue[bytes] = CharacteristicValue(read=read, write=write)
        return Characteristic(_bumble_uuid(uuid), properties, permissions, value)

    # -- connection ------------------------------------------------------------------------

    def _on_connection(self, connection: Any) -> None:
        _log.info("replay_connected", deck=self.name, peer=str(connection.peer_address))
        self._connection = connection
        self._next_write = 0
        self._read_cursor.clear()
        self._subscribed = {uuid: asyncio.Event() for uuid in self._characteristics}
        self._outbox = asyncio.Queue()
        now = self._clock.now()
        for step in self._before:
            self._outbox.put_nowait((now + step.offset_s, step))
        if self._sender is not None:
            self._sender.cancel()
        self._sender = asyncio.get_running_loop().create_task(
            self._send(connection, self._outbox), name="replay-send"
        )
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_disconnection(self, reason: int) -> None:
        _log.info("replay_disconnected", deck=self.name, reason=reason)
        self._connection = None
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    async def _stop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _on_subscription(
        self, connection: Any, characteristic: Any, notify: bool, indicate: bool
    ) -> None:
        if connection is not self._connection:
            return
        for uuid, known in self._characteristics.items():
            if known is characteristic and (notify or indicate):
                self._subscribed[uuid].set()

    def _on_write(self, uuid: str, data: bytes) -> None:
        self.received_writes.append((uuid, data))
        now = self._clock.now()
        expected = self.expected_writes
        window = expected[self._next_write : self._next_write + LOOKAHEAD_WRITES]
        hit = next((i for i, w in enumerate(window) if w.uuid == uuid and w.data == data), None)
        if hit is None:
            mismatch = WriteMismatch(
                now, window[0] if window else None, got_uuid=uuid, got_data=data
            )
            self.mismatches.append(mismatch)
            _log.warning("replay_write_mismatch", deck=self.name, problem=mismatch.describe())
            return
        for skipped in window[:hit]:
            mismatch = WriteMismatch(now, skipped, got_uuid=None, got_data=None)
            self.mismatches.append(mismatch)
            _log.warning("replay_write_mismatch", deck=self.name, problem=mismatch.describe())
        index = self._next_write + hit
        self._next_write = index + 1
        self.matched_writes += 1
        _log.debug("replay_write_matched", deck=self.name, uuid=uuid, data=to_hex(data))
        for step in self._after[index][1]:
            self._outbox.put_nowait((now + step.offset_s, step))

    async def _send(self, connection: Any, outbox: asyncio.Queue[tuple[float, _Step]]) -> None:
        """Send queued steps in order, each at its time, each once its characteristic is
        subscribed (a recorded notification reached a subscribed central)."""
        device = self._device
        while True:
            due, step = await outbox.get()
            delay = due - self._clock.now()
            if delay > 0:
                await self._clock.sleep(delay)
            if step.uuid is None:
                _log.info("replay_link_dropped", deck=self.name)
                await lose_link(connection)
                return
            characteristic = self._characteristics.get(step.uuid)
            if characteristic is None:
                continue  # a notification on a characteristic the table lacks
            subscribed = self._subscribed[step.uuid]
            if (
                not subscribed.is_set()
                and step.uuid in self._recorded_subscriptions
                and not await sleep_until_set(subscribed, SUBSCRIBE_WAIT_S, self._clock)
            ):
                _log.info("replay_notification_unsubscribed", uuid=step.uuid)
                continue
            cccd = device.gatt_server.subscribers.get(connection, {}).get(characteristic.handle)
            bits = cccd[0] if cccd else 0
            try:
                if bits & _CCCD_NOTIFY:
                    await device.notify_subscriber(connection, characteristic, step.data)
                elif bits & _CCCD_INDICATE:
                    await device.indicate_subscriber(connection, characteristic, step.data)
            except (TimeoutError, att.ATT_Error, BaseBumbleError) as error:
                _log.warning("replay_notification_lost", uuid=step.uuid, error=str(error))


TraceSource = Path | str | Trace | Iterable[Mapping[str, Any] | str]


def as_trace(source: TraceSource) -> Trace:
    return source if isinstance(source, Trace) else load_trace(source)


def _usable_address(candidate: str | None, radio: SimulatedRadio, taken: set[str]) -> str:
    parts = candidate.split(":") if candidate else []
    if (
        candidate is not None
        and len(parts) == 6
        and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts)
        and candidate.upper() not in taken
    ):
        return candidate.upper()
    address = radio.next_peripheral_address()
    while address in taken:
        address = radio.next_peripheral_address()
    return address


@contextlib.asynccontextmanager
async def replay_trace(
    source: TraceSource,
    *,
    fleet: SimulatedFleet | None = None,
    radio: SimulatedRadio | None = None,
    clock: Clock | None = None,
    address: str | None = None,
    session: int = 0,
) -> AsyncIterator[ReplayedDeck]:
    """Serve one session of a trace on an in-process radio while the block runs.

    With `fleet`, on its radio and clock (reach it with `fleet.scanner_backend` /
    `fleet.client_backend`); else on `radio` (a new one when None) and `clock` (a `LoopClock`
    when None). `address` defaults to the trace's, or a fresh one when it is taken or no MAC.
    """
    if fleet is not None:
        radio = fleet.radio
        clock = fleet.clock
        taken = {t.address for t in fleet.treadmills}
    else:
        taken = set()
    radio = radio if radio is not None else SimulatedRadio()
    clock = clock if clock is not None else LoopClock()
    trace = as_trace(source)
    sessions = trace.sessions()
    recorded = sessions[session].connect.address if 0 <= session < len(sessions) else None
    chosen = _usable_address(address or recorded, radio, taken)
    name = deck_name(trace, sessions[session]) if 0 <= session < len(sessions) else "REPLAY"
    device, controller = radio.new_device(name, chosen)
    deck = ReplayedDeck(device, trace, clock, address=chosen, session=session)
    try:
        await deck.power_on()
        yield deck
    finally:
        try:
            await deck.close()
        finally:
            radio.remove_controller(controller)


# -- python -m treadmilld_sim.replay FILE ---------------------------------------------------------


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _drive_link(source: Path, session: int, seconds: float) -> int:
    """Serve the trace in-process and connect treadmilld's own link to it."""
    from treadmilld.ble.api import LinkConnected, MachineStatusReceived, TelemetryReceived  # noqa: PLC0415
    from treadmilld.ble.client import BleTreadmillLink  # noqa: PLC0415
    from treadmilld.ble.config import LinkSettings, TargetSelector  # noqa: PLC0415

    async with (
        SimulatedFleet() as fleet,
        replay_trace(source, fleet=fleet, session=session) as deck,
    ):
        _say(f"replaying {deck.name} ({deck.address}) from {source}")
        link = BleTreadmillLink(
            "replay",
            TargetSelector(address=deck.address),
            LinkSettings(),
            clock=fleet.clock,
            scanner_backend=fleet.scanner_backend,
            client_backend=fleet.client_backend,
        )
        events = link.events()
        runner = asyncio.create_task(link.run())

        async def show() -> None:
            async for event in events:
                if isinstance(event, LinkConnected):
                    _say(f"link connected: {event.capabilities}")
                elif isinstance(event, TelemetryReceived):
                    _say(f"  {event.at:8.3f} telemetry {event.record}")
                elif isinstance(event, MachineStatusReceived):
                    _say(f"  {event.at:8.3f} machine status {event.status}")
                else:
                    _say(f"  {event}")

        shower = asyncio.create_task(show())
        try:
            await asyncio.sleep(seconds)
        finally:
            await link.close()
            await runner
            shower.cancel()
        _say(deck.report())
        _say(
            "(the link sends commands only when the engine asks: recorded writes show as "
            "'not written' here; drive it from a test to compare them)",
        )
        return 1 if deck.mismatches else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m treadmilld_sim.replay",
        description="Replay a treadmilld trace (docs/capture.md) as a simulated deck, connect "
        "treadmilld's link to it and print what the link sees.",
    )
    parser.add_argument("trace", type=Path, help="a .jsonl trace file")
    parser.add_argument("--session", type=int, default=0, help="which connection (default 0)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long to watch (default 10)"
    )
    args = parser.parse_args(argv)
    try:
        trace = load_trace(args.trace)
        sessions = trace.sessions()
        if not 0 <= args.session < len(sessions):
            sys.stderr.write(
                f"{args.trace}: has {len(sessions)} session(s); --session takes 0.."
                f"{max(len(sessions) - 1, 0)}\n"
            )
            return 2
    except TraceFormatError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    try:
        return asyncio.run(_drive_link(args.trace, args.session, args.seconds))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
