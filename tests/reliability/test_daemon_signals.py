"""The daemon as systemd runs it (a real subprocess), signalled mid-workout.

- SIGTERM, SIGINT or SIGHUP (a closed terminal or SSH session) while the belt walks a profile:
  the daemon stops the belt, sees it stand still in the treadmill's own data, leaves a final
  retained state with no running phase and no live targets, publishes `offline` for the
  treadmill and the bridge, and exits 0.
- SIGKILL while the belt walks (no chance to clean up), then a restart with the same config:
  the new daemon connects and never starts the belt or sets a speed by itself.

The simulated treadmill lives inside the daemon's process; the daemon logs JSON at debug level,
so the treadmill's own record of every Control Point request it answered is in the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from treadmilld_broker import EmbeddedBroker

from tests.reliability.conftest import Survived
from treadmilld.ftms import ControlOpcode
from treadmilld.mqtt.config import default_instance

BASE = "treadmilld"
TM = "tm01"
WAIT_S = 30.0


class Daemon:
    """`python -m treadmilld run` with its output captured to a file."""

    def __init__(self, config: Path, notify_path: Path, log_path: Path) -> None:
        self.log_path = log_path
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), PYTHONUNBUFFERED="1")
        env.pop("JOURNAL_STREAM", None)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "treadmilld", "run", "--config", str(config)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def records(self) -> list[dict[str, Any]]:
        """Every JSON log record so far (anything else, e.g. a traceback, is skipped)."""
        found = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append(record)
        return found

    def answered_opcodes(self) -> list[int]:
        """Control Point opcodes the simulated treadmill answered, in order."""
        return [
            int(r["opcode"]) for r in self.records() if r.get("event") == "sim_control_response"
        ]

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextlib.contextmanager
def notify_socket(path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield sock
    finally:
        sock.close()


async def wait_ready(sock: socket.socket, daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    sock.settimeout(0.0)  # non-blocking, for loop.sock_recv
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                data = await loop.sock_recv(sock, 4096)
                if "READY=1" in data.decode(errors="replace").splitlines():
                    return
    except TimeoutError:
        raise AssertionError(f"no READY=1; daemon output:\n{daemon.output()}") from None


def write_config(directory: Path, broker: EmbeddedBroker) -> Path:
    config = directory / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[[treadmills]]",
                f'id = "{TM}"',
                'simulated = { name = "SIM-SIGNALS" }',
                "",
                "[mqtt]",
                f'host = "{broker.host}"',
                f"port = {broker.port}",
                f'base_topic = "{BASE}"',
                "ha_discovery = false",
                "",
                "[logging]",
                'format = "json"',
                'level = "debug"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


@contextlib.asynccontextmanager
async def mqtt_client(broker: EmbeddedBroker, name: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"test-{name}") as client:
        yield client


async def live_states(client: aiomqtt.Client) -> AsyncIterator[dict[str, Any]]:
    """State snapshots published from now on (the retained one is the killed daemon's)."""
    async for message in client.messages:
        if message.retain:
            continue
        if str(message.topic) == f"{BASE}/{TM}/state" and isinstance(message.payload, bytes):
            value = json.loads(message.payload)
            if isinstance(value, dict):
                yield value


async def start_walking(broker: EmbeddedBroker, daemon: Daemon) -> None:
    """Start a profile over MQTT and wait until the treadmill reports the belt moving."""
    async with mqtt_client(broker, "starter") as client:
        await client.subscribe(f"{BASE}/{TM}/state")
        await client.subscribe(f"{BASE}/{TM}/response/start")
        # READY=1 comes before the broker connection, and the bridge announces `online` just
        # before it subscribes to commands; the treadmill's availability comes after.
        await client.subscribe(f"{BASE}/{TM}/availability")
        start = (f"{BASE}/{TM}/request/start", '{"profile": "forward-walk"}')
        try:
            async with asyncio.timeout(WAIT_S):
                async for message in client.messages:
                    topic = str(message.topic)
                    raw = message.payload if isinstance(message.payload, bytes) else b""
                    if topic.endswith("/availability"):
                        if raw == b"online":
                            await client.publish(*start, qos=1)
                        continue
                    value = json.loads(raw)
                    if topic.endswith("/response/start") and value.get("status") != "ok":
                        assert value.get("code") == "not_connected", value
                        await asyncio.sleep(0.2)
                        await client.publish(*start, qos=1)
                    elif (
                        topic.endswith("/state")
                        and value.get("phase") == "running"
                        and ((value.get("speed_kmh") or 0.0) >= 1.0)
                    ):
                        return
        except TimeoutError:
            raise AssertionError(f"never walking; daemon output:\n{daemon.output()}") from None


async def retained(broker: EmbeddedBroker, name: str, *topics: str) -> dict[str, bytes]:
    """The retained payload of each topic, as a dashboard connecting now would get it."""
    found: dict[str, bytes] = {}
    async with mqtt_client(broker, name) as client:
        for topic in topics:
            await client.subscribe(topic)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert message.retain, f"{message.topic} is not retained"
                payload = message.payload
                found[str(message.topic)] = payload if isinstance(payload, bytes) else b""
                if len(found) == len(topics):
                    break
    return found


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
async def test_stop_signal_mid_workout_stops_the_belt_and_leaves_a_final_state(
    mqtt_broker: EmbeddedBroker,
    tmp_path: Path,
    survived: Survived,
    rounds: int,
    signum: signal.Signals,
) -> None:
    config = write_config(tmp_path, mqtt_broker)
    for index in range(rounds):
        with notify_socket(tmp_path / f"notify-{index}.sock") as sock:
            daemon = Daemon(config, tmp_path / f"notify-{index}.sock", tmp_path / f"{index}.log")
            try:
                await wait_ready(sock, daemon)
                await start_walking(mqtt_broker, daemon)
                daemon.process.send_signal(signum)
                code = await asyncio.wait_for(asyncio.to_thread(daemon.process.wait), WAIT_S)
            finally:
                daemon.close()
        assert code == 0, daemon.output()
        records = daemon.records()
        events = [r.get("event") for r in records]
        assert [r["reason"] for r in records if r.get("event") == "stop_requested"] == [
            signum.name
        ], daemon.output()
        # The treadmill's own data shows the belt standing before the daemon let go.
        confirmed = [r for r in records if r.get("event") == "belt_stop_confirmed"]
        assert [r.get("speed_kmh") or 0.0 for r in confirmed] == [0.0], daemon.output()
        assert "belt_still_moving" not in events, daemon.output()
        assert ControlOpcode.STOP_OR_PAUSE in daemon.answered_opcodes(), daemon.output()

        state_topic, availability_topic = f"{BASE}/{TM}/state", f"{BASE}/{TM}/availability"
        # No instance in the config: the bridge topics are named after this host.
        bridge_state = f"{BASE}/bridge/{default_instance()}/state"
        left = await retained(
            mqtt_broker, f"after-{index}", bridge_state, availability_topic, state_topic
        )
        assert left[bridge_state] == b"offline"
        assert left[availability_topic] == b"offline"
        state = json.loads(left[state_topic])
        # Nothing on the dashboard claims a workout runs or a target is live.
        assert (state["phase"], state["abort_reason"]) in {
            ("aborted", "shutdown"),
            ("idle", None),
        }, state
        assert state["target_speed_kmh"] is None, state
        assert state["target_incline_pct"] is None, state
        assert not state["speed_kmh"], state
        survived.add(
            f"{signum.name}s mid-workout (belt stopped, final state and offline retained, exit 0)"
        )


async def test_sigkill_mid_workout_then_restart_never_drives_the_belt(
    mqtt_broker: EmbeddedBroker, tmp_path: Path, survived: Survived, rounds: int
) -> None:
    config = write_config(tmp_path, mqtt_broker)
    for index in range(rounds):
        notify_path = tmp_path / f"notify-{index}.sock"
        with notify_socket(notify_path) as sock:
            first = Daemon(config, notify_path, tmp_path / f"first-{index}.log")
            try:
                await wait_ready(sock, first)
                await start_walking(mqtt_broker, first)
                first.process.send_signal(signal.SIGKILL)
                await asyncio.wait_for(asyncio.to_thread(first.process.wait), WAIT_S)
            finally:
                first.close()
            assert first.process.returncode == -signal.SIGKILL

            second = Daemon(config, notify_path, tmp_path / f"second-{index}.log")
            try:
                await wait_ready(sock, second)
                seen = await watch_after_connect(mqtt_broker, f"watcher-{index}", second)
            finally:
                second.close()
        assert all(s.get("phase") != "running" for s in seen), seen[-1]
        assert all(not s.get("speed_kmh") for s in seen), seen[-1]
        opcodes = second.answered_opcodes()
        assert ControlOpcode.START_OR_RESUME not in opcodes, opcodes
        assert ControlOpcode.SET_TARGET_SPEED not in opcodes, opcodes
        survived.add("SIGKILLs mid-workout + restart (belt never driven by itself)")


async def watch_after_connect(
    broker: EmbeddedBroker, name: str, daemon: Daemon, watch_s: float = 4.0
) -> list[dict[str, Any]]:
    """Live states until the treadmill is connected, then for `watch_s` more seconds."""
    seen: list[dict[str, Any]] = []
    async with mqtt_client(broker, name) as client:
        await client.subscribe(f"{BASE}/{TM}/state")
        states = live_states(client)
        try:
            async with asyncio.timeout(WAIT_S):
                async for state in states:
                    seen.append(state)
                    if state.get("connection") == "connected":
                        break
        except TimeoutError:
            raise AssertionError(f"never connected; output:\n{daemon.output()}") from None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(watch_s):
                async for state in states:
                    seen.append(state)
    return seen


# The history database is migrated already: these tests are about signals, not a first start.
pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("migrated_history")]
