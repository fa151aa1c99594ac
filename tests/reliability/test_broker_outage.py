"""The MQTT broker killed and restarted mid-profile, again and again.

The belt is driven over Bluetooth, not MQTT: while the broker is gone the workout goes on. When
it returns, the daemon's state is published again, and a command someone sent before the daemon
was back never runs (the daemon uses a clean session, so nothing is queued for it).
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from treadmilld_broker import EmbeddedBroker

from tests.reliability.conftest import Survived
from tests.reliability.daemon import BASE, INSTANCE, operator, running_daemon
from treadmilld.engine.api import Phase
from treadmilld.ftms import StopOrPause

OUTAGES = 3  # per normal run
# The history database is migrated already: this test is about the broker, not a first start.
pytestmark = pytest.mark.usefixtures("migrated_history")
TM = "tm01"


async def test_broker_killed_and_restarted_mid_profile(
    mqtt_broker: EmbeddedBroker, survived: Survived, rounds: int
) -> None:
    broker = mqtt_broker
    # Every reconnect comes 2-4 s after the loss (jittered): long enough that the commands
    # sent right after the restart certainly precede the daemon's return. The cap is the
    # initial delay: a connection that lived less than the cap does not reset the backoff, so
    # with a higher cap the later outages would each wait up to twice as long, for nothing.
    async with running_daemon(broker, reconnect_initial_s=4.0, reconnect_max_s=4.0) as daemon:
        treadmill = daemon.treadmill(TM)
        async with operator(broker, "starter") as starter:
            await starter.start_profile(daemon, TM, "forward-walk")
        await daemon.until(
            "the belt walking the profile",
            lambda: (
                daemon.snapshot(TM).phase is Phase.RUNNING and treadmill.model.belt_speed_kmh >= 3.0
            ),
        )
        outages = 0
        for index in range(OUTAGES * rounds):
            elapsed_before = daemon.snapshot(TM).elapsed_s
            await broker.stop(kill=True)
            await asyncio.sleep(0.5)
            # No broker: the workout carries on, the belt keeps walking.
            assert daemon.snapshot(TM).phase is Phase.RUNNING
            assert treadmill.model.belt_speed_kmh >= 3.0
            await broker.start()
            sent_at = time.monotonic()
            async with operator(broker, f"late-{index}") as late:
                # Sent while the daemon is still away: nobody is subscribed, nothing queues.
                await late.subscribe(f"{BASE}/bridge/{INSTANCE}/state", f"{BASE}/{TM}/state")
                # The restarted broker holds no retained messages: no `online` yet means the
                # daemon has not subscribed again (it announces `online` before subscribing).
                early = await late.poll(f"bridge/{INSTANCE}/state", within_s=0.1)
                assert early is None, "the daemon was back before the commands; raise its backoff"
                await late.publish(f"{BASE}/{TM}/request/stop", "{}")
                await late.publish(f"{BASE}/{TM}/set", '{"command": "pause"}')
                await late.next_on(
                    f"bridge/{INSTANCE}/state", where=lambda value: value == "online"
                )
                state = await late.next_on(
                    f"{TM}/state",
                    where=lambda value: isinstance(value, dict) and value.get("phase") == "running",
                )
            # Published in whole seconds, rounded down; the restarted broker holds nothing
            # retained, so this state was published after the outage, by a workout still on.
            assert state["elapsed_s"] >= math.floor(elapsed_before)
            # Give any replayed command every chance to arrive before looking.
            await asyncio.sleep(0.5)
            assert daemon.snapshot(TM).phase is Phase.RUNNING
            assert not [
                r for r in daemon.recorded[TM].since(sent_at) if isinstance(r, StopOrPause)
            ], "a command sent before the daemon was back ran"
            outages += 1
    survived.add("broker outages mid-profile survived (workout on, state back)", outages)
