"""Frames real decks send, met by the link; and a deck that stops itself without a word.

The frames are the Urevo E1L's, from the nRF Sniffer captures in blak3r/treadspan
(`protocol-analysis/urevo-E1L`, Kinomap's session), pushed through our own GATT seam. The
self-stopping deck is the simulator's, through the real BleakClient.
"""

from __future__ import annotations

import asyncio

import structlog.testing
from treadmilld_sim import RunningState, SimulatedFleet, SimulatedTreadmillConfig

from tests.ble.doubles import WithTrainingStatus
from tests.ble.harness import record_requests, running_link
from tests.ble.test_real_deck_control import driving
from treadmilld.ble.api import (
    LinkEvent,
    MachineStatusReceived,
    TelemetryReceived,
    TrainingStatusReceived,
)
from treadmilld.ftms import (
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    StartedOrResumedByUser,
    StartOrResume,
    StopKind,
    StopOrPause,
    TargetSpeedChanged,
)
from treadmilld.runtime.clock import LoopClock

# The E1L's connect sequence (excerpt, in order) and one status it sends when started.
E1L_FRAMES = (
    (TREADMILL_DATA_UUID, "84 25 e1 00 00 00 00 01 00 00 00 00 00 21 00 02 00 00"),
    (TRAINING_STATUS_UUID, "00 10"),
    (MACHINE_STATUS_UUID, "05 d1 00"),
    (MACHINE_STATUS_UUID, "05 c1 00"),
    (MACHINE_STATUS_UUID, "05 b1 00"),
    (TRAINING_STATUS_UUID, "00 11"),
    (MACHINE_STATUS_UUID, "04 00 00"),
)


async def test_the_urevo_e1l_frames_arrive_as_events_and_none_is_dropped() -> None:
    deck = WithTrainingStatus(LoopClock(), name="URTM041")
    with structlog.testing.capture_logs() as logs:
        async with driving(deck) as (link, events):
            for uuid, frame in E1L_FRAMES:
                deck.push(uuid, bytes.fromhex(frame))
            seen: list[LinkEvent] = []
            async with asyncio.timeout(60):
                async for event in events:
                    if isinstance(
                        event, TelemetryReceived | TrainingStatusReceived | MachineStatusReceived
                    ):
                        seen.append(event)
                    if len(seen) == len(E1L_FRAMES):
                        break
            speed = link.telemetry.data.instantaneous_speed_kmh
    assert speed == 2.25
    statuses = [e.status for e in seen if isinstance(e, MachineStatusReceived)]
    assert statuses == [
        TargetSpeedChanged(2.09),
        TargetSpeedChanged(1.93),
        TargetSpeedChanged(1.77),
        StartedOrResumedByUser(),  # its two trailing bytes are no error
    ]
    training = [e.status for e in seen if isinstance(e, TrainingStatusReceived)]
    assert [(t.status, t.code) for t in training] == [(0x10, None), (0x11, None)]
    assert not [entry for entry in logs if entry["event"] == "notification_dropped"]


async def test_a_deck_that_stops_itself_unannounced_is_seen_standing_and_not_restarted(
    fleet: SimulatedFleet,
) -> None:
    # Horizon decks stop on their own after 30 minutes (qdomyos-zwift #1128), often with no
    # Machine Status: only the Treadmill Data shows it.
    treadmill = await fleet.add(
        SimulatedTreadmillConfig(name="HORIZON-SIM", report_console_status=False)
    )
    requests = record_requests(treadmill)
    async with running_link(fleet, treadmill) as lut:
        await lut.connected()
        assert lut.link.quirks is not None
        assert lut.link.quirks.name == "horizon"
        await lut.link.start_belt()
        await lut.link.set_target_speed(3.0)
        await lut.belt_at(3.0)
        sent_before = len(requests)
        treadmill.model.press_stop()  # the deck's own stop
        standing = await lut.telemetry_where(lambda t: not t.belt_moving)
        assert standing.data.instantaneous_speed_kmh == 0.0
        # Nothing was announced, and the link sent nothing of its own accord.
        assert not any(isinstance(e, MachineStatusReceived) for e in lut.seen)
        assert len(requests) == sent_before
        await lut.link.stop_belt()  # the engine's stop after the console stop: not an error
    assert requests[sent_before:] == [StopOrPause(StopKind.STOP)]
    assert StartOrResume() not in requests[sent_before:]
    assert treadmill.model.running_state is not RunningState.RUNNING
