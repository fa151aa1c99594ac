"""What lives exactly as long as one connection: `LinkSession`, and in it the belt as this
connection has seen it (`BeltWatch`) and the Control Point's state (`ControlState`).

Plain state shared by the link's pieces: set-up (`connection_setup.py`) fills it in, the
notifications (`notifications.py`) and the commands (`control_channel.py`,
`belt_commands.py`) read and update it. The rules live with those pieces; a new connection
starts from a fresh `LinkSession`, so nothing here outlives a reconnect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math

from treadmilld.ble.api import Telemetry
from treadmilld.ble.gatt import GattConnection
from treadmilld.ble.quirks import Quirks
from treadmilld.ftms import (
    ControlResponse,
    InclinationRange,
    SpeedRange,
    TreadmillData,
    TreadmillDataAssembler,
)


@dataclasses.dataclass(eq=False)
class BeltWatch:
    """The belt as this connection's data and commands have shown it, for the command rules
    (start once, the start gate, a stop that counts as done)."""

    # Clock time a successful Start was sent and the belt has not been seen moving since.
    start_pending_since: float | None = None
    # Clock time the reported speed went above 0 (None while the belt stands still).
    moving_since: float | None = None
    moving: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Set by the first complete Treadmill Data record: before it, whether the belt moves is
    # unknown.
    first_record: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Counts stops and pauses (ours, the console's, the safety key, Reset). A command that
    # waited compares it before writing, so nothing that waited is sent after a stop.
    stops: int = 0
    # `stops` when the belt last began to move.
    stops_when_moving_began: int = 0
    # Stops and pauses the deck carried out (accepted, or reported by the deck itself), and
    # their count when the belt last began to move: more since then means it is coasting to a
    # halt. A refused Stop does not count: the belt it refused is not coasting.
    halts: int = 0
    halts_when_moving_began: int = 0
    # One Start at a time: a second one waits and then sees what the first left.
    start_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    def record_seen(self, belt_moving: bool, now: float) -> None:
        """A complete Treadmill Data record arrived; `belt_moving` is what it shows."""
        self.first_record.set()
        if belt_moving:
            if self.moving_since is None:
                self.moving_since = now
                self.stops_when_moving_began = self.stops
                self.halts_when_moving_began = self.halts
                self.start_pending_since = None
                self.moving.set()
        elif self.moving_since is not None:
            self.moving_since = None
            self.moving.clear()

    def halted_by_deck(self) -> None:
        """The deck reports it stopped or paused the belt (console, safety key, Reset)."""
        self.start_pending_since = None
        self.stops += 1
        self.halts += 1

    @property
    def coasting(self) -> bool:
        """A stop or pause was carried out since the belt began moving: it is coming to a
        halt already."""
        return self.halts != self.halts_when_moving_began

    @property
    def stopped_since_moving_began(self) -> bool:
        """A stop or pause was asked for or reported since the belt began moving (a moving
        belt then is coasting, and may be resumed)."""
        return self.stops != self.stops_when_moving_began


@dataclasses.dataclass(eq=False)
class ControlState:
    """The Control Point on this connection: how it is written, the permission, the one
    procedure in flight."""

    has_control_point: bool = False
    # How the Control Point is written: ATT Write Request, or Write Command (Urevo E1L).
    with_response: bool = True
    # The vendor unlock (KingSmith MC21) is still to be written before the next request.
    unlock_pending: bool = False
    granted: bool = False
    # Until this clock time, Reset and Control Permission Lost statuses are our own Reset's
    # echo (FTMS §4.17 sends them whoever reset the deck), not someone taking over.
    own_reset_until: float = -math.inf
    # The deck answered Request Control with Not Supported: it has no permission to give.
    request_not_supported: bool = False
    request_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    pending_opcode: int | None = None
    pending_response: asyncio.Future[ControlResponse] | None = None


@dataclasses.dataclass(eq=False)
class LinkSession:
    """Everything that lives exactly as long as one connection."""

    connection: GattConnection
    name: str | None
    quirks: Quirks
    disconnected: asyncio.Event
    # Both stamped when the connection goes live (`DeviceLink._make_current`); the pump moves
    # `last_data_at` on every sign of life.
    connected_at: float = 0.0
    last_data_at: float = 0.0
    # Notifications as bleak delivered them, for the pump to decode in order.
    inbound: asyncio.Queue[tuple[str, bytes]] = dataclasses.field(default_factory=asyncio.Queue)
    assembler: TreadmillDataAssembler = dataclasses.field(default_factory=TreadmillDataAssembler)
    # Ranges in the deck's own units (mph decks), used to clamp what is written.
    deck_speed_range: SpeedRange | None = None
    inclination_range: InclinationRange | None = None
    # Measured values merged across this connection's records (empty until the first one).
    telemetry: Telemetry = dataclasses.field(
        default_factory=lambda: Telemetry(data=TreadmillData(), received_at=None)
    )
    belt: BeltWatch = dataclasses.field(default_factory=BeltWatch)
    control: ControlState = dataclasses.field(default_factory=ControlState)
    pump: asyncio.Task[None] | None = None
