"""The heart-rate strap link: the real `BleHeartRateStrap` (real BleakScanner/BleakClient) against
simulated straps over Bumble, in virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from treadmilld_sim import (
    SimulatedFleet,
    SimulatedStrap,
    SimulatedStrapConfig,
    SimulatedTreadmillConfig,
    Work,
)

from treadmilld.ble.api import ConnectionState, LinkLostCause
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.config import BackoffSettings, StrapLinkSettings, TargetSelector
from treadmilld.ble.strap import BleHeartRateStrap, scan_straps
from treadmilld.ble.strap_api import (
    HeartRateReceived,
    HeartRateStrap,
    StrapConnected,
    StrapEvent,
    StrapLost,
)

from .harness import WAIT_BOUND_S

E = TypeVar("E", bound=StrapEvent)

SETTINGS = StrapLinkSettings(backoff=BackoffSettings(initial_s=1.0, maximum_s=4.0))


@dataclass
class StrapUnderTest:
    strap: BleHeartRateStrap
    events: AsyncIterator[StrapEvent]
    seen: list[StrapEvent] = field(default_factory=list)

    async def next_event(self, kind: type[E], where: Callable[[E], bool] = lambda _e: True) -> E:
        async with asyncio.timeout(WAIT_BOUND_S):
            async for event in self.events:
                self.seen.append(event)
                if isinstance(event, kind) and where(event):
                    return event
        raise AssertionError(f"the strap link closed before a {kind.__name__} arrived")

    async def readings(self, count: int) -> list[HeartRateReceived]:
        return [await self.next_event(HeartRateReceived) for _ in range(count)]


@contextlib.asynccontextmanager
async def running_strap(
    fleet: SimulatedFleet, strap: SimulatedStrap, *, target: TargetSelector | None = None
) -> AsyncIterator[StrapUnderTest]:
    link = BleHeartRateStrap(
        "hr1",
        target or TargetSelector(address=strap.address),
        SETTINGS,
        clock=fleet.clock,
        scanner_backend=fleet.scanner_backend,
        client_backend=fleet.client_backend,
    )
    under_test = StrapUnderTest(strap=link, events=link.events())
    runner = asyncio.create_task(link.run(), name="hr1-run")
    try:
        yield under_test
    finally:
        async with asyncio.timeout(WAIT_BOUND_S):
            await link.close()
            await runner


async def test_discovery_lists_straps_and_not_treadmills(fleet: SimulatedFleet) -> None:
    await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01"))
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01"))
    backend = BleakGattBackend(fleet.clock, scanner_backend=fleet.scanner_backend)
    found = await scan_straps(backend, 1.0)
    assert [(s.address, s.name) for s in found] == [(strap.address, "SIM-HR01")]


async def test_a_strap_named_in_the_target_is_found_connected_and_read_at_one_hertz(
    fleet: SimulatedFleet,
) -> None:
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01", resting_bpm=62))
    async with running_strap(fleet, strap, target=TargetSelector(name_contains="hr01")) as run:
        connected = await run.next_event(StrapConnected)
        readings = await run.readings(5)
        assert isinstance(run.strap, HeartRateStrap)
        assert run.strap.connection_state is ConnectionState.CONNECTED
        assert run.strap.latest == readings[-1]
    assert connected.address == strap.address
    assert connected.name == "SIM-HR01"
    assert [r.bpm for r in readings] == [62] * 5
    assert all(r.contact is True for r in readings)
    gaps = [b.at - a.at for a, b in itertools.pairwise(readings)]
    assert all(abs(gap - 1.0) < 0.05 for gap in gaps)


async def test_readings_follow_the_simulated_riders_work(fleet: SimulatedFleet) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-TM01"))
    strap = await fleet.add_strap(
        SimulatedStrapConfig(name="SIM-HR01", resting_bpm=65, max_bpm=180, treadmill="SIM-TM01")
    )
    async with running_strap(fleet, strap) as run:
        at_rest = (await run.readings(3))[-1]
        treadmill.model.press_start()
        treadmill.model.set_speed_at_console(4.0)
        treadmill.model.set_incline_at_console(5.0)
        walking = await run.readings(240)  # four minutes backward, uphill
        treadmill.model.press_stop()
        resting = await run.readings(150)
    expected = strap.model.steady_state_bpm(Work(4.0, 5.0, "backward"))
    assert at_rest.bpm == 65
    # Rising with a lag: after a minute about two thirds of the way, after four near the top.
    assert walking[59].bpm < expected - 5
    assert walking[59].bpm > 65 + (expected - 65) * 0.5
    assert walking[-1].bpm >= expected - 3
    assert all(b.bpm >= a.bpm - 1 for a, b in itertools.pairwise(walking))
    # And falling back once the belt stops.
    assert resting[-1].bpm < 75
    # RR intervals are the beats of the rate read.
    last = walking[-1]
    assert last.rr_intervals
    assert all(abs(60 / rr - last.bpm) < 3 for rr in last.rr_intervals)


async def test_contact_loss_is_reported_and_the_link_stays_up(fleet: SimulatedFleet) -> None:
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01"))
    async with running_strap(fleet, strap) as run:
        await run.next_event(HeartRateReceived)
        strap.faults.contact_lost = True
        lost_contact = await run.next_event(HeartRateReceived, lambda r: r.contact is False)
        strap.faults.contact_lost = False
        back = await run.next_event(HeartRateReceived, lambda r: r.contact is True)
    assert lost_contact.bpm == 0
    assert lost_contact.rr_intervals == ()
    assert back.bpm > 0
    assert not any(isinstance(event, StrapLost) for event in run.seen)


async def test_a_silent_strap_is_lost_for_no_data_and_reconnected(fleet: SimulatedFleet) -> None:
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01"))
    async with running_strap(fleet, strap) as run:
        last = await run.next_event(HeartRateReceived)
        strap.faults.silent = True
        lost = await run.next_event(StrapLost)
        strap.faults.silent = False
        await run.next_event(StrapConnected)
        again = await run.next_event(HeartRateReceived)
    assert lost.cause is LinkLostCause.NO_DATA
    assert lost.at - last.at >= SETTINGS.liveness_timeout_s
    assert again.at > lost.at


async def test_a_dropped_link_is_reconnected(fleet: SimulatedFleet) -> None:
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01"))
    async with running_strap(fleet, strap) as run:
        await run.next_event(HeartRateReceived)
        await strap.drop_link()
        lost = await run.next_event(StrapLost)
        await run.next_event(StrapConnected)
        await run.next_event(HeartRateReceived)
    assert lost.cause is LinkLostCause.DROPPED


async def test_a_malformed_notification_is_logged_and_dropped(fleet: SimulatedFleet) -> None:
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01", resting_bpm=70))
    async with running_strap(fleet, strap) as run:
        await run.next_event(HeartRateReceived)
        with structlog.testing.capture_logs() as logs:
            # The uint16 flag with one byte of value: too short.
            await strap.notify_raw(bytes.fromhex("01 48"))
            following = await run.next_event(HeartRateReceived)
    dropped = [entry for entry in logs if entry["event"] == "heart_rate_dropped"]
    assert len(dropped) == 1
    assert dropped[0]["data"] == "0148"
    assert following.bpm == 70
    assert not any(isinstance(event, StrapLost) for event in run.seen)


async def test_closing_ends_the_subscription_with_strap_lost_closed(
    fleet: SimulatedFleet,
) -> None:
    strap = await fleet.add_strap(SimulatedStrapConfig(name="SIM-HR01"))
    async with running_strap(fleet, strap) as run:
        await run.next_event(HeartRateReceived)
    remaining = [event async for event in run.events]
    lost = [event for event in remaining if isinstance(event, StrapLost)]
    assert [event.cause for event in lost] == [LinkLostCause.CLOSED]
    assert run.strap.connection_state is ConnectionState.DISCONNECTED
