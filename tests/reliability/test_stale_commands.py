"""Retained, replayed and stale commands never move a belt.

- Retained: commands left retained on the broker before the daemon starts are delivered to it
  on subscribe (retain flag set) and must be refused, not run.
- Stale: a command stamped (`ts`) longer ago than `max_command_age_s` is refused.
- Replayed: a command that was valid and ran, sent again byte for byte later, is refused
  because its stamp has aged.
In every case the treadmill must not receive Start, and the refusal must be reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

from treadmilld_broker import EmbeddedBroker

from tests.reliability.conftest import Survived
from tests.reliability.daemon import BASE, operator, running_daemon
from treadmilld.engine.api import Phase
from treadmilld.ftms import SetTargetSpeed, StartOrResume

TM = "tm01"
MAX_AGE_S = 1.0


def _stamped(seconds_ago: float, **fields: object) -> str:
    sent = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
    return json.dumps({"ts": sent.isoformat(), **fields})


async def test_retained_stale_and_replayed_commands_never_run(
    mosquitto_broker: EmbeddedBroker, survived: Survived, rounds: int
) -> None:
    broker = mosquitto_broker
    refused = 0
    async with operator(broker, "leftover") as leftover:
        # Left behind by some dashboard: they would fire on every daemon (re)subscribe.
        await leftover.publish(
            f"{BASE}/{TM}/request/start", '{"profile": "forward-walk"}', retain=True
        )
        await leftover.publish(
            f"{BASE}/{TM}/set", '{"command": "start", "profile": "forward-walk"}', retain=True
        )
    async with operator(broker, "watcher") as watcher:
        await watcher.subscribe(f"{BASE}/{TM}/response/#", f"{BASE}/{TM}/event")
        async with running_daemon(broker, max_command_age_s=MAX_AGE_S) as daemon:
            started = time.monotonic()
            expected = {f"{BASE}/{TM}/response/start", f"{BASE}/{TM}/event"}
            while expected:
                topic, reply = await watcher.next_of(
                    tuple(expected),
                    where=lambda v: isinstance(v, dict) and v.get("status") == "error",
                )
                assert reply["code"] == "retained_command", reply
                expected.discard(topic)
                refused += 1
            await daemon.until(
                "treadmill connected", lambda: daemon.snapshot(TM).connection == "connected"
            )
            async with operator(broker, "member") as member:
                await member.subscribe(f"{BASE}/{TM}/response/#")
                for _ in range(3 * rounds):
                    stale = await member.request(TM, "start", _stamped(60, profile="forward-walk"))
                    assert stale["status"] == "error", stale
                    assert stale["code"] == "stale_command", stale
                    refused += 1

                # A fresh command runs; the same bytes replayed later do not.
                fresh = _stamped(0, profile="forward-walk", transaction="replay-me")
                accepted = await member.request(TM, "start", fresh)
                assert accepted["status"] == "ok", accepted
                stopped = await member.request(TM, "stop")
                assert stopped["status"] == "ok", stopped
                await asyncio.sleep(MAX_AGE_S + 0.5)
                replay_from = time.monotonic()
                for _ in range(3 * rounds):
                    replay = await member.request(TM, "start", fresh)
                    assert replay["status"] == "error", replay
                    assert replay["code"] == "stale_command", replay
                    assert replay["transaction"] == "replay-me", replay
                    refused += 1
                await asyncio.sleep(0.5)

            assert daemon.snapshot(TM).phase is not Phase.RUNNING
            driven = [
                r
                for r in daemon.recorded[TM].since(started)
                if isinstance(r, StartOrResume | SetTargetSpeed)
            ]
            # Only the one deliberate, fresh start may have started the belt.
            assert not [
                r
                for r in daemon.recorded[TM].since(replay_from)
                if isinstance(r, StartOrResume | SetTargetSpeed)
            ], "a replayed command drove the belt"
            assert sum(isinstance(r, StartOrResume) for r in driven) <= 1
    survived.add("retained, stale and replayed commands refused", refused)
