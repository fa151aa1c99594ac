"""Fuzzed payloads on every command topic: each is answered with an error and changes nothing.

Seeded random payloads that can never be valid (bytes that are not JSON, JSON that is not an
object, objects with a field no command has, values of the wrong type or out of bounds) go to
every `request/<action>` of a treadmill and of the bridge, to `set` and to every `set/<field>`.
Each must get its error reply (a `response/<action>` for requests, an `error` event for `set`),
the daemon must keep running, and the treadmill must not hear a single Control Point request.
"""

from __future__ import annotations

import json
import random
import string
import time
from typing import Any

from treadmilld_broker import EmbeddedBroker

from tests.reliability.conftest import Survived
from tests.reliability.daemon import BASE, INSTANCE, Operator, operator, running_daemon
from treadmilld.engine.api import Phase
from treadmilld.mqtt.payloads import BRIDGE_REQUESTS, PLAIN_SET_FIELDS, TREADMILL_REQUESTS

TM = "tm01"
PER_TOPIC = 6  # payloads per topic per normal run


def invalid_object_payload(rng: random.Random) -> bytes:
    """Bytes no command model accepts (every model forbids unknown fields)."""
    shape = rng.randrange(5)
    if shape == 0:
        return rng.randbytes(rng.randrange(1, 64)).replace(b"{", b"(")  # never a JSON object
    if shape == 1:
        return json.dumps(rng.choice([[1, 2], "stop", 42, None, True, 3.5])).encode()
    if shape == 2:
        return b'{"unterminated": '
    key = "x_" + "".join(rng.choices(string.ascii_lowercase, k=rng.randrange(1, 12)))
    value: Any = rng.choice([1, "a", None, [1], {"deep": {"er": 1}}, 1e308, -1])
    if shape == 3:
        return json.dumps({key: value}).encode()
    return json.dumps({"transaction": rng.randrange(10_000), key: value}).encode()


def invalid_plain_value(field: str, rng: random.Random) -> bytes:
    numbers = ["fast", "nan", "inf", "1e999", "85", "-99", "", "3,5", "\u0663"]
    by_field = {
        "speed_kmh": numbers,
        "incline_pct": numbers,
        "command": ["fly", "START", "stop now", "", "emergency-stop"],
        "profile": ["", "p" * 101],
    }
    choices = by_field.get(field, ["\xff\xfe"])
    return rng.choice(choices).encode() if rng.random() < 0.9 else b"\xff\xfe\xfd"


async def _expect_error(op: Operator, topic_suffix: str) -> dict[str, Any]:
    reply = await op.next_on(
        topic_suffix, timeout_s=5.0, where=lambda v: isinstance(v, dict) and "status" in v
    )
    assert reply["status"] == "error", reply
    for key in ("code", "error"):
        assert isinstance(reply.get(key), str), reply
        assert reply[key], reply
    return dict(reply)


async def test_fuzzed_payloads_on_every_command_topic(
    mqtt_broker: EmbeddedBroker, survived: Survived, rounds: int
) -> None:
    rng = random.Random(1124)
    answered = 0
    async with running_daemon(mqtt_broker) as daemon, operator(mqtt_broker) as op:
        await daemon.until(
            "treadmill connected", lambda: daemon.snapshot(TM).connection == "connected"
        )
        await op.subscribe(
            f"{BASE}/{TM}/response/#", f"{BASE}/{TM}/event", f"{BASE}/bridge/{INSTANCE}/response/#"
        )
        started = time.monotonic()
        actions = [*TREADMILL_REQUESTS, "fly_away"]
        for _ in range(PER_TOPIC * rounds):
            for action in actions:
                await op.publish(f"{BASE}/{TM}/request/{action}", invalid_object_payload(rng))
                await _expect_error(op, f"{TM}/response/{action}")
                answered += 1
            for action in [*BRIDGE_REQUESTS, "reboot"]:
                await op.publish(
                    f"{BASE}/bridge/{INSTANCE}/request/{action}", invalid_object_payload(rng)
                )
                await _expect_error(op, f"bridge/{INSTANCE}/response/{action}")
                answered += 1
            await op.publish(f"{BASE}/{TM}/set", invalid_object_payload(rng))
            await _expect_error(op, f"{TM}/event")
            answered += 1
            for field in [*PLAIN_SET_FIELDS, "belt_direction"]:
                await op.publish(f"{BASE}/{TM}/set/{field}", invalid_plain_value(field, rng))
                await _expect_error(op, f"{TM}/event")
                answered += 1
        # Still alive and answering, and nothing reached the treadmill.
        reply = await op.request(TM, "state")
        assert reply["status"] == "ok", reply
        assert daemon.snapshot(TM).phase is Phase.IDLE
        assert daemon.recorded[TM].since(started) == []
        assert daemon.treadmill(TM).model.belt_speed_kmh == 0.0
    survived.add("fuzzed MQTT commands answered with an error", answered)
