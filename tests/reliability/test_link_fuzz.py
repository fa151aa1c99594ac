"""A treadmill that sends garbage: the link logs and drops it, keeps running and stays usable.

Seeded random bytes and mutations of real payloads are pushed into the link's own notification
path (Treadmill Data, Machine Status, Training Status, Control Point responses) while the real
simulated treadmill keeps talking and commands keep being sent.
"""

from __future__ import annotations

import asyncio
import random

from treadmilld_sim import SimulatedFleet, SimulatedTreadmillConfig

from tests.reliability.conftest import Survived
from tests.reliability.harness import GarblesNotifications, random_payload, run_in_virtual_time
from treadmilld.ble.api import LinkConnected, LinkError, LinkLost, TelemetryReceived
from treadmilld.ble.bleak_io import BleakGattBackend
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import LinkSettings, TargetSelector
from treadmilld.ftms import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlOpcode,
    ControlResponse,
    ResultCode,
    StopKind,
    StoppedOrPausedByUser,
    TrainingStatus,
    TreadmillData,
    encode_control_response,
    encode_machine_status,
    encode_training_status,
    encode_treadmill_data,
)
from treadmilld.runtime.clock import LoopClock

# Real payloads to mutate, so the fuzz reaches past the first length check of each decoder.
SEEDS: dict[str, bytes] = {
    TREADMILL_DATA_UUID: encode_treadmill_data(
        TreadmillData(
            instantaneous_speed_kmh=3.2,
            total_distance_m=120,
            inclination_pct=1.5,
            ramp_angle_deg=0.9,
            total_energy_kcal=12,
            energy_per_hour_kcal=200,
            energy_per_minute_kcal=3,
            heart_rate_bpm=101,
            elapsed_time_s=75,
        )
    ),
    MACHINE_STATUS_UUID: encode_machine_status(StoppedOrPausedByUser(kind=StopKind.PAUSE)),
    TRAINING_STATUS_UUID: encode_training_status(TrainingStatus(status=1, text="idle")),
    CONTROL_POINT_UUID: encode_control_response(
        ControlResponse(ControlOpcode.SET_TARGET_SPEED, ResultCode.SUCCESS)
    ),
}

ROUNDS = 300  # x 4 characteristics per normal run
# Virtual seconds the fuzz may take, times the soak factor, before it counts as a hang. A normal
# run takes about 19 (connect, 300 x 50 ms between bursts, the commands); the bound grows with
# `--soak N` as the rounds do, so a long soak is not cut short as if it had hung.
BOUND_S = 600.0


def test_garbage_notifications_are_dropped_and_the_link_stays_usable(
    survived: Survived, rounds: int
) -> None:
    async def main() -> tuple[int, int, int]:
        clock = LoopClock()
        rng = random.Random(20261124)
        async with SimulatedFleet(clock) as fleet:
            treadmill = await fleet.add(SimulatedTreadmillConfig(name="SIM-FUZZ"))
            backend = GarblesNotifications(
                BleakGattBackend(
                    clock,
                    scanner_backend=fleet.scanner_backend,
                    client_backend=fleet.client_backend,
                )
            )
            link = BleTreadmillLink(
                "fuzz",
                TargetSelector(address=treadmill.address),
                LinkSettings(),
                clock=clock,
                gatt_backend=backend,
            )
            events = link.events()
            running = asyncio.create_task(link.run())
            refused = 0
            try:
                async with asyncio.timeout(BOUND_S * rounds):
                    async for event in events:
                        if isinstance(event, LinkConnected):
                            break
                    # The link does not subscribe to Training Status (it acts on nothing in
                    # it), so garbage there cannot reach it; the other three must be tapped.
                    fuzzed = {u: s for u, s in SEEDS.items() if u in backend.subscribed}
                    assert set(fuzzed) >= set(SEEDS) - {TRAINING_STATUS_UUID}
                    await link.start_belt()
                    for i in range(ROUNDS * rounds):
                        for uuid, seed in fuzzed.items():
                            backend.inject(uuid, random_payload(rng, around=seed))
                        if i % 25 == 0:
                            # Commands meet garbage responses: a typed error is fine, a crash
                            # or a hang is not.
                            try:
                                await link.set_target_speed(rng.choice((2.0, 3.0, 4.0)))
                            except LinkError:
                                refused += 1
                        await asyncio.sleep(0.05)
                    assert not running.done(), "the link's run() ended while fed garbage"
                    # After the garbage stops, real commands and real data work again.
                    written = await link.set_target_speed(5.0)
                    assert written == 5.0
                    # Everything the link reported since connecting is still queued: garbage
                    # must never have cost the connection.
                    async for event in events:
                        assert not isinstance(event, LinkLost), f"link dropped: {event.reason}"
                        if (
                            isinstance(event, TelemetryReceived)
                            and event.record.instantaneous_speed_kmh is not None
                            and abs(event.record.instantaneous_speed_kmh - 5.0) < 0.05
                            and abs(treadmill.model.belt_speed_kmh - 5.0) < 0.05
                        ):
                            break
            finally:
                await link.close()
                await running
            return backend.injected, refused, len(fuzzed)

    injected, refused, characteristics = run_in_virtual_time(main)
    assert injected == ROUNDS * rounds * characteristics
    survived.add("malformed notifications dropped", injected)
    survived.add("setpoint commands sent amid garbage", ROUNDS * rounds // 25)
    if refused:
        survived.add("of those, answered by a garbage response (typed error, no crash)", refused)
