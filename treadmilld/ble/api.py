"""The link seam: what the engine may ask of one treadmill, and what it hears back.

`treadmilld.ble.client.BleTreadmillLink` implements it over bleak; test doubles implement it
directly (named by behaviour, e.g. `DropsAfterConnect`). Nothing here imports bleak.

Rules every implementation keeps (the engine relies on them):
- It never starts the belt by itself: not on connect, not after a reconnect.
- It never re-applies a speed or incline after a reconnect: that decision is the engine's.
- `start_belt` sends Start/Resume at most once while the belt is moving (some decks treat a
  second Start as "stop": TM11GY, qdomyos-zwift#5100).
- Every target is clamped to the treadmill's supported range and rounded toward zero onto its
  increment, in the deck's own units, before it is written; the value actually written is
  returned (in km/h: exactly what the encoded number means to the deck, never above the asked
  speed except at the range's floor). See `treadmilld.ble.control`.
- Bleak callbacks only enqueue; subscribers read events from their own queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from treadmilld.ftms import (
    FitnessMachineFeature,
    InclinationRange,
    MachineStatus,
    ResultCode,
    SpeedRange,
    TrainingStatus,
    TreadmillData,
)


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """Device Information service (0x180A) strings; `None` when the treadmill has none."""

    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None


@dataclass(frozen=True, slots=True)
class TreadmillCapabilities:
    """What was learned on connect; stays valid until the next connect."""

    address: str
    name: str | None
    device_information: DeviceInformation
    features: FitnessMachineFeature
    # None when the treadmill exposes no Supported Speed Range (then speed is not controllable).
    speed_range: SpeedRange | None
    # None when the treadmill exposes no Supported Inclination Range (incline not controllable).
    inclination_range: InclinationRange | None
    # The deck takes no target speed while the belt stands (3G Cardio: qdomyos-zwift#3382;
    # KingSmith: walkingpad-controller docs §2.6): the engine then writes Start first and the
    # restart speed at once.
    speed_needs_running_belt: bool = False


@dataclass(frozen=True, slots=True)
class Telemetry:
    """The latest measured values, merged across Treadmill Data records.

    Always in km/h and % whatever unit the deck reports in (mph decks are converted). A field
    a record omits keeps its previous value; `received_at` is the clock time the last record
    was complete. Reset to empty on every new connection.
    """

    data: TreadmillData
    received_at: float | None

    @property
    def belt_moving(self) -> bool:
        speed = self.data.instantaneous_speed_kmh
        return speed is not None and speed > 0


@dataclass(frozen=True, slots=True)
class LinkConnected:
    capabilities: TreadmillCapabilities
    at: float


class LinkLostCause(StrEnum):
    """Why the link went down, decided where the link decides to end the connection."""

    # Our own shutdown (`close()`).
    CLOSED = "closed"
    # The treadmill or the Bluetooth stack dropped the connection.
    DROPPED = "dropped"
    # The deck went silent: no data for the liveness timeout while still connected.
    NO_DATA = "no_data"
    # The link's own notification processing stopped (a bug): the connection is given up.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LinkLost:
    """The link went down: peer disconnect, liveness timeout (no data), or our own shutdown.

    `cause` is the contract (the engine reports `no_data` for `NO_DATA`, `link_lost`
    otherwise); `reason` is text for people and logs, never to be parsed.
    """

    reason: str
    at: float
    cause: LinkLostCause


@dataclass(frozen=True, slots=True)
class TelemetryReceived:
    record: TreadmillData  # this record as decoded (reassembled if it came in fragments)
    telemetry: Telemetry  # merged state after this record
    at: float


@dataclass(frozen=True, slots=True)
class MachineStatusReceived:
    """A Fitness Machine Status notification (console actions, safety key, control lost...).

    Speeds are in km/h: Target Speed Changed from an mph deck is converted."""

    status: MachineStatus
    at: float


@dataclass(frozen=True, slots=True)
class TrainingStatusReceived:
    """A Training Status notification (0x2AD3; only from decks that offer it).

    `status.status` is the raw byte: real decks send values FTMS reserves (0x10, 0x11 on a
    Urevo E1L) and vendor codes (KingSmith); `status.code` is None for those."""

    status: TrainingStatus
    at: float


LinkEvent = (
    LinkConnected | LinkLost | TelemetryReceived | MachineStatusReceived | TrainingStatusReceived
)


class LinkError(Exception):
    """A command could not be carried out on the treadmill; the message says what to do."""


class NotConnectedError(LinkError):
    """The treadmill is not connected right now."""


class ControlTimeoutError(LinkError):
    """The treadmill did not answer a Control Point request in time."""


# `ControlRejectedError.request` of a refused Set Target Speed, for callers that must tell it
# from other refusals (a belt-first deck refuses it exactly when its belt is not running).
SET_TARGET_SPEED_REQUEST = "Set Target Speed"


class ControlRejectedError(LinkError):
    """The treadmill answered a Control Point request with a result other than Success.

    `result` is the deck's FTMS result code; the link also raises it with
    `ResultCode.NOT_SUPPORTED` for a request the deck cannot take at all (no Control Point, no
    supported range), without writing anything."""

    def __init__(self, message: str, *, request: str, result: ResultCode) -> None:
        super().__init__(message)
        self.request = request
        self.result = result


class ControlNotPermittedError(ControlRejectedError):
    """Control permission was refused or lost (another app or the console took over)."""


class BeltNotMovingError(LinkError):
    """A speed change waited for the belt to move after Start, and it never did."""


@runtime_checkable
class TreadmillLink(Protocol):
    """One treadmill, reconnecting by itself, commanded one Control Point procedure at a time."""

    @property
    def treadmill_id(self) -> str: ...

    @property
    def connection_state(self) -> ConnectionState: ...

    @property
    def capabilities(self) -> TreadmillCapabilities | None:
        """Known while connected; `None` before the first connect."""
        ...

    @property
    def telemetry(self) -> Telemetry: ...

    def events(self) -> AsyncIterator[LinkEvent]:
        """A fresh subscription: every event from now on, in order, until the link closes."""
        ...

    async def run(self) -> None:
        """Connect, keep the link alive, reconnect with backoff; returns only when closed."""
        ...

    async def close(self) -> None:
        """Disconnect for good (the caller stops the belt first if it wants it stopped)."""
        ...

    async def start_belt(self) -> None:
        """Start/Resume, unless the belt is already moving. Returns when the request succeeded."""
        ...

    async def set_target_speed(self, speed_kmh: float) -> float:
        """Write a target speed (clamped and rounded); waits for the belt to move if the
        treadmill's quirks require it. Returns the value written."""
        ...

    async def set_target_inclination(self, inclination_pct: float) -> float:
        """Write a target inclination (clamped and rounded). Returns the value written."""
        ...

    async def pause_belt(self) -> None:
        """Stop/Pause with 'pause' (2): the belt stops and keeps its targets."""
        ...

    async def stop_belt(self) -> None:
        """Stop/Pause with 'stop' (1): the belt stops and the session ends on the treadmill."""
        ...

    async def reset_targets(self) -> None:
        """Reset (FTMS §4.16.2.2, op code 0x01): the deck's targets and elapsed time go to zero
        and it returns to Idle. Control permission is lost; the next command asks for it again.
        The Reset and Control Permission Lost statuses our own Reset causes are not reported as
        events. Raises `ControlRejectedError` if the deck refuses or does not support it."""
        ...
