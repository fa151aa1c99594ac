"""Machine Status and Training Status through the real BleakClient against the simulator.

Where a deck sends bytes the simulator's model does not produce (an mph deck's Target Speed
Changed, reserved Training Status values, malformed data), `notify_raw` sends them from the
simulator's GATT server over the air.
"""

from __future__ import annotations

import pytest
import structlog.testing
from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.harness import notify_raw, record_requests, running_link
from treadmilld.ble.api import (
    ConnectionState,
    LinkLost,
    MachineStatusReceived,
    TelemetryReceived,
    TrainingStatusReceived,
)
from treadmilld.ble.config import LinkSettings
from treadmilld.ble.quirks import KM_PER_MILE
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    StartOrResume,
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
        # Reserved for future use by FTMS, sent by a real Urevo E1L (blak3r/treadspan captures).
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


# -- malformed notifications: logged with their bytes and dropped, the link stays up

MALFORMED = [
    pytest.param(TREADMILL_DATA_UUID, "00", id="treadmill-data-no-flags"),
    pytest.param(TREADMILL_DATA_UUID, "040010", id="treadmill-data-short"),
    pytest.param(MACHINE_STATUS_UUID, "0536", id="machine-status-short-speed"),
    pytest.param(MACHINE_STATUS_UUID, "0207", id="machine-status-bad-stop-kind"),
    pytest.param(MACHINE_STATUS_UUID, "42", id="machine-status-unknown-opcode"),
    pytest.param(TRAINING_STATUS_UUID, "00", id="training-status-no-status"),
    pytest.param(TRAINING_STATUS_UUID, "000d41", id="training-status-text-without-flag"),
    pytest.param(TRAINING_STATUS_UUID, "010dff", id="training-status-bad-utf8"),
    pytest.param(CONTROL_POINT_UUID, "8002", id="control-point-short"),
    pytest.param(CONTROL_POINT_UUID, "800709", id="control-point-unknown-result"),
    pytest.param(CONTROL_POINT_UUID, "070000", id="control-point-not-a-response"),
]


@pytest.mark.parametrize(("uuid", "data"), MALFORMED)
async def test_a_malformed_notification_is_logged_and_dropped(
    fleet: SimulatedFleet, uuid: str, data: str
) -> None:
    treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-GARBLED"))
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        with structlog.testing.capture_logs() as logs:
            await notify_raw(treadmill, uuid, bytes.fromhex(data))
            # Everything after it still works: telemetry, statuses and a command.
            await lut.next_event(TelemetryReceived)
            await lut.link.start_belt()
            await lut.telemetry_where(lambda t: t.belt_moving)
        assert lut.link.connection_state is ConnectionState.CONNECTED
    dropped = [entry for entry in logs if entry["event"] == "notification_dropped"]
    assert [(entry["characteristic"], entry["data"]) for entry in dropped] == [(uuid, data)]
    assert not any(isinstance(event, LinkLost) for event in lut.seen)
    assert StartOrResume() in requests
