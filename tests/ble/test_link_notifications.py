"""Machine Status and Training Status through the real BleakClient against the simulator.

Where a deck sends bytes the simulator's model does not produce (an mph deck's Target Speed
Changed, reserved Training Status values), `notify_raw` sends them from the
simulator's GATT server over the air.
"""

from __future__ import annotations

import pytest
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.harness import notify_raw, running_link
from treadmilld.ble.api import MachineStatusReceived, TrainingStatusReceived
from treadmilld.ble.config import LinkSettings
from treadmilld.ble.quirks import KM_PER_MILE
from treadmilld.ftms import (
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TargetSpeedChanged,
    TrainingStatus,
    TrainingStatusCode,
)


async def test_target_speed_changed_from_an_mph_deck_arrives_in_km_h(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig.tm11gy(name="TM11GY-STATUS"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        # The console's knob at 3.10 mph: `05 36 01` (310 x 0.01, in the deck's mph).
        await notify_raw(treadmill, MACHINE_STATUS_UUID, bytes.fromhex("053601"))
        event = await lut.next_event(MachineStatusReceived)
    assert event.status == TargetSpeedChanged(speed_kmh=3.10 * KM_PER_MILE)


@pytest.mark.parametrize(
    ("quirks", "speed_kmh"),
    [("standard", 3.10), ("jftm", 3.10 * KM_PER_MILE), ("mph", 3.10 * KM_PER_MILE)],
)
async def test_target_speed_changed_is_converted_only_where_the_deck_uses_mph(
    fleet: SimulatedFleet, quirks: str, speed_kmh: float
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-STATUS"))
    async with running_link(fleet, treadmill, settings=LinkSettings(quirks=quirks)) as lut:
        await lut.connected()
        await notify_raw(treadmill, MACHINE_STATUS_UUID, bytes.fromhex("053601"))
        event = await lut.next_event(MachineStatusReceived)
    assert event.status == TargetSpeedChanged(speed_kmh=speed_kmh)


async def test_a_console_speed_change_on_a_km_h_deck_stays_as_sent(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-KNOB"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        treadmill.model.set_speed_at_console(4.3)
        event = await lut.next_event(
            MachineStatusReceived, lambda e: isinstance(e.status, TargetSpeedChanged)
        )
    assert event.status == TargetSpeedChanged(speed_kmh=4.3)


# -- Training Status (0x2AD3)


async def test_training_status_is_forwarded_from_a_deck_that_has_it(
    fleet: SimulatedFleet,
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-TRAINING"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await lut.link.start_belt()  # the simulated deck goes Idle -> Manual Mode
        event = await lut.next_event(TrainingStatusReceived)
    assert event.status == TrainingStatus(status=TrainingStatusCode.MANUAL_MODE)
    assert event.status.code is TrainingStatusCode.MANUAL_MODE


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Reserved for future use by FTMS, sent by a real Urevo E1L (real-decks.md §1).
        ("0010", TrainingStatus(status=0x10)),
        ("0011", TrainingStatus(status=0x11)),
        ("000d", TrainingStatus(status=TrainingStatusCode.MANUAL_MODE)),
        ("010f446f6e65", TrainingStatus(status=TrainingStatusCode.POST_WORKOUT, text="Done")),
    ],
)
async def test_reserved_and_vendor_training_status_values_decode_and_are_forwarded(
    fleet: SimulatedFleet, data: str, expected: TrainingStatus
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-UREVO"))
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        await notify_raw(treadmill, TRAINING_STATUS_UUID, bytes.fromhex(data))
        event = await lut.next_event(TrainingStatusReceived)
    assert event.status == expected
