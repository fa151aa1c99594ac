"""The few topics and payloads of docs/mqtt.md the benchmarks use, in one place."""

from __future__ import annotations

import json

BASE_TOPIC = "treadmilld"
# A built-in profile long enough that no measurement window outlives it.
PROFILE_FOR_BENCH = "p2-retro-core"


def request_topic(treadmill_id: str, action: str) -> str:
    """`<base>/<id>/request/<action>`, answered on `<base>/<id>/response/<action>`."""
    return f"{BASE_TOPIC}/{treadmill_id}/request/{action}"


def start_command(treadmill_id: str, profile: str) -> tuple[str, bytes]:
    return request_topic(treadmill_id, "start"), json.dumps({"profile": profile}).encode()


def emergency_stop_command(treadmill_id: str, transaction: int) -> tuple[str, bytes]:
    return (
        request_topic(treadmill_id, "emergency_stop"),
        json.dumps({"transaction": transaction}).encode(),
    )
