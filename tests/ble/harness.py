"""Running a real `BleTreadmillLink` (real BleakScanner/BleakClient) against simulated decks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bumble.core import UUID
from bumble.gatt import Characteristic
from treadmilld_sim import SimulatedFleet, SimulatedTreadmill

from treadmilld.ble.api import LinkConnected, LinkEvent, LinkLost, Telemetry, TelemetryReceived
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ftms import FTMS_SERVICE_UUID, ControlRequest

# Bound on any single wait, in (virtual) seconds: a hang fails the test with a traceback here
# instead of at pytest-timeout's process level. Virtual time makes this cost nothing.
WAIT_BOUND_S = 120.0

E = TypeVar("E", bound=LinkEvent)


@dataclass
class LinkUnderTest:
    link: BleTreadmillLink
    events: AsyncIterator[LinkEvent]
    seen: list[LinkEvent] = field(default_factory=list)

    async def next_event(self, kind: type[E], where: Callable[[E], bool] = lambda _e: True) -> E:
        """The next event of `kind` satisfying `where` (earlier ones are kept in `seen`)."""
        async with asyncio.timeout(WAIT_BOUND_S):
            async for event in self.events:
                self.seen.append(event)
                if isinstance(event, kind) and where(event):
                    return event
        raise AssertionError(f"the link closed before a {kind.__name__} arrived")

    async def connected(self) -> LinkConnected:
        return await self.next_event(LinkConnected)

    async def lost(self) -> LinkLost:
        return await self.next_event(LinkLost)

    async def telemetry_where(self, check: Callable[[Telemetry], bool]) -> Telemetry:
        event = await self.next_event(TelemetryReceived, lambda e: check(e.telemetry))
        return event.telemetry

    async def belt_at(self, speed_kmh: float) -> Telemetry:
        """Wait until the measured belt speed reaches `speed_kmh` (within 0.01)."""
        return await self.telemetry_where(
            lambda t: (
                t.data.instantaneous_speed_kmh is not None
                and abs(t.data.instantaneous_speed_kmh - speed_kmh) < 0.011
            )
        )


@contextlib.asynccontextmanager
async def running_link(
    fleet: SimulatedFleet,
    treadmill: SimulatedTreadmill | None = None,
    *,
    settings: LinkSettings | None = None,
    target: TargetSelector | None = None,
    treadmill_id: str = "tm1",
) -> AsyncIterator[LinkUnderTest]:
    """A link running in the background; closed (and its run() awaited) on exit."""
    if target is None:
        assert treadmill is not None
        target = TargetSelector(address=treadmill.address)
    link = BleTreadmillLink(
        treadmill_id,
        target,
        settings or LinkSettings(),
        clock=fleet.clock,
        scanner_backend=fleet.scanner_backend,
        client_backend=fleet.client_backend,
    )
    under_test = LinkUnderTest(link=link, events=link.events())
    runner = asyncio.create_task(link.run(), name=f"{treadmill_id}-run")
    try:
        yield under_test
    finally:
        async with asyncio.timeout(WAIT_BOUND_S):
            await link.close()
            await runner


def record_requests(treadmill: SimulatedTreadmill) -> list[ControlRequest]:
    """Every Control Point request the simulated deck receives from now on, in order."""
    received: list[ControlRequest] = []
    treadmill.add_control_listener(lambda request, _at: received.append(request))
    return received


def _bumble_uuid(full_uuid: str) -> UUID:
    """A SIG UUID in the form the simulator's Bumble GATT server registers it (16-bit)."""
    return UUID.from_16_bits(int(full_uuid[4:8], 16))


async def notify_raw(treadmill: SimulatedTreadmill, characteristic_uuid: str, data: bytes) -> None:
    """Send `data` as the treadmill's notification on one FTMS characteristic, as is.

    For bytes the simulator's model never produces (malformed data, the statuses of decks it
    does not model). It goes out over the air from the simulator's own GATT server to the
    real BleakClient, through Bumble's public API; the simulator itself is not changed.
    """
    (connection,) = treadmill.connections
    device = connection.device
    found = device.gatt_server.get_characteristic_attributes(
        _bumble_uuid(FTMS_SERVICE_UUID), _bumble_uuid(characteristic_uuid)
    )
    assert found is not None, f"the simulated treadmill has no {characteristic_uuid}"
    _declaration, characteristic = found
    if characteristic.properties & Characteristic.Properties.NOTIFY:
        await device.notify_subscriber(connection, characteristic, data)
    else:  # the Control Point indicates (FTMS §4.16)
        await device.indicate_subscriber(connection, characteristic, data)
