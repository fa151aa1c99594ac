"""`treadmilld run` as a real subprocess records a workout started over MQTT into its
database; SIGKILLed mid-workout, the next start finds every sample written before the kill and
the workout `interrupted`."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from treadmilld_broker import EmbeddedBroker

from tests.app.process import treadmilld
from tests.app.test_daemon_process import BASE, BRIDGE_STATE, moving
from tests.mqtt.client import Observer, eventually

SPEEDUP = 10  # profile seconds per real second: a sample every 0.1 s of the test's time
SAMPLES_BEFORE_KILL = 20


def _config(tmp_path: Path, broker: EmbeddedBroker, database: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "\n".join(
            [
                f"clock_speedup = {SPEEDUP}",
                "[[treadmills]]",
                'id = "sim01"',
                "simulated = {}",
                "[database]",
                f'url = "sqlite:///{database}"',
                "[mqtt]",
                f'host = "{broker.host}"',
                f"port = {broker.port}",
                f'base_topic = "{BASE}"',
                f'client_id = "treadmilld-test-{os.getpid()}"',
                "ha_discovery = false",
                "[logging]",
                'format = "json"',
                'level = "info"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def _query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    """What a reader beside the daemon sees (committed rows only)."""
    # closing(): a connection's own `with` only commits; Python 3.13 warns of one left open.
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return connection.execute(sql).fetchall()


def _sample_times(database: Path) -> list[float]:
    try:
        return [float(row[0]) for row in _query(database, "SELECT at_s FROM samples")]
    except sqlite3.OperationalError:  # not created yet
        return []


async def test_a_daemon_killed_mid_workout_keeps_its_samples_and_the_workout_is_interrupted(
    tmp_path: Path, mqtt_broker: EmbeddedBroker
) -> None:
    database = tmp_path / "db" / "treadmilld.db"
    config = _config(tmp_path, mqtt_broker, database)
    async with (
        Observer(mqtt_broker) as dashboard,
        treadmilld("run", "--config", str(config)) as first,
    ):
        await dashboard.subscribe(f"{BASE}/#")
        await dashboard.wait_for(BRIDGE_STATE, lambda m: m.text == "online", within_s=30)
        await dashboard.wait_for(
            f"{BASE}/sim01/availability", lambda m: m.text == "online", within_s=30
        )
        reply = await dashboard.request(
            f"{BASE}/sim01/request/start", {"profile": "p1-starter-a"}, transaction="go"
        )
        assert reply["status"] == "ok", reply
        await dashboard.wait_for(f"{BASE}/sim01/state", moving, within_s=30)
        await eventually(lambda: len(_sample_times(database)) >= SAMPLES_BEFORE_KILL)
        before_kill = _sample_times(database)
        first.process.send_signal(signal.SIGKILL)
        assert await first.wait(30) == -signal.SIGKILL
    [(workout_id, outcome)] = _query(database, "SELECT id, outcome FROM workouts")
    assert outcome == "running"  # nobody could end it

    async with treadmilld("run", "--config", str(config)) as second:
        await eventually(lambda: bool(second.events("daemon_ready")))
        second.terminate()
        assert await second.wait(30) == 0, second.output()

    assert [r["workout_id"] for r in second.events("workout_marked_interrupted")] == [workout_id]
    assert _query(database, "SELECT outcome FROM workouts") == [("interrupted",)]
    after = _sample_times(database)
    assert set(before_kill) <= set(after)
    # One a second, from the start, none lost in between.
    assert after == sorted(after)
    assert max(b - a for a, b in itertools.pairwise(after)) < 1.5
    segments = _query(database, "SELECT idx FROM segments ORDER BY idx")
    assert segments[0] == (0,)
