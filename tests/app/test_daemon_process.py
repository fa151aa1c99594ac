"""`treadmilld run` as a real subprocess: simulated treadmills, a real broker, real signals."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from treadmilld_broker import EmbeddedBroker

from tests.app.process import treadmilld
from tests.mqtt.client import Observer, Received
from treadmilld.mqtt.config import default_instance

BASE = "tdtest"
# No instance in the configs: the bridge topics are named after this host.
BRIDGE_STATE = f"{BASE}/bridge/{default_instance()}/state"
# The history database is migrated already: the first start's migration child is
# tests/app/test_history_daemon.py's subject, not these tests'.
pytestmark = pytest.mark.usefixtures("migrated_history")


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)  # noqa: FBT003
        self.received: list[str] = []

    async def wait_for(self, prefix: str, within_s: float = 30.0) -> str:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within_s):
            while True:
                for message in self.received:
                    if message.startswith(prefix):
                        return message
                self.received.append((await loop.sock_recv(self.socket, 4096)).decode())

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def write_config(tmp_path: Path, broker: EmbeddedBroker, *, treadmills: int = 2) -> Path:
    lines = []
    for index in range(1, treadmills + 1):
        lines += ["[[treadmills]]", f'id = "sim{index:02d}"', "simulated = {}", ""]
    lines += [
        "[mqtt]",
        f'host = "{broker.host}"',
        f"port = {broker.port}",
        f'base_topic = "{BASE}"',
        f'client_id = "treadmilld-test-{os.getpid()}"',
        "ha_discovery = false",
        "",
        "[logging]",
        'format = "json"',
        'level = "info"',
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def moving(message: Received) -> bool:
    state = message.json()
    return state.get("phase") == "running" and (state.get("speed_kmh") or 0) > 0


async def test_profile_started_over_mqtt_then_sigterm_stops_belts_and_goes_offline(
    tmp_path: Path, mqtt_broker: EmbeddedBroker, notify: NotifyListener
) -> None:
    config = write_config(tmp_path, mqtt_broker)
    async with (
        Observer(mqtt_broker) as dashboard,
        treadmilld(
            "run", "--config", str(config), env={"NOTIFY_SOCKET": str(notify.path)}
        ) as daemon,
    ):
        await dashboard.subscribe(f"{BASE}/#")
        # READY=1 comes once tasks are up, without waiting for a treadmill to connect.
        ready = await notify.wait_for("READY=1")
        assert "STATUS=sim01" in ready
        await dashboard.wait_for(BRIDGE_STATE, lambda m: m.text == "online", within_s=30)
        for treadmill in ("sim01", "sim02"):
            await dashboard.wait_for(
                f"{BASE}/{treadmill}/availability", lambda m: m.text == "online", within_s=30
            )

        reply = await dashboard.request(
            f"{BASE}/sim01/request/start", {"profile": "p1-starter-a"}, transaction="go"
        )
        assert reply["status"] == "ok", reply
        running = await dashboard.wait_for(f"{BASE}/sim01/state", moving, within_s=30)
        assert running.json()["profile"] == "p1-starter-a"
        # The other treadmill was not touched.
        assert dashboard.matching(f"{BASE}/sim02/state", moving) == []

        before_stop = dashboard.mark()
        daemon.terminate()
        code = await daemon.wait(30)
        await dashboard.wait_for(BRIDGE_STATE, lambda m: m.text == "offline", after=before_stop)

    assert code == 0, daemon.output()
    assert "Traceback" not in daemon.output()
    # What a dashboard connecting afterwards is told: both treadmills offline, neither with a
    # workout running or a target live (sim02 never moved; sim01 was stopped).
    async with Observer(mqtt_broker) as later:
        await later.subscribe(f"{BASE}/+/availability", f"{BASE}/+/state")
        for treadmill in ("sim01", "sim02"):
            availability = await later.wait_for(f"{BASE}/{treadmill}/availability")
            assert (availability.text, availability.retain) == ("offline", True)
            state = (await later.wait_for(f"{BASE}/{treadmill}/state")).json()
            assert state["phase"] in ("idle", "aborted"), state
            assert (state["target_speed_kmh"], state["target_incline_pct"]) == (None, None)
    await notify.wait_for("STOPPING=1")
    confirmed = {record["treadmill_id"]: record for record in daemon.events("belt_stop_confirmed")}
    assert set(confirmed) == {"sim01", "sim02"}, daemon.output()
    assert all(not record.get("speed_kmh") for record in confirmed.values())
    assert daemon.events("belt_still_moving") == []
    [commanded] = daemon.events("belts_stop_commanded")
    assert commanded["budget_s"] == 3.0
    # Every log line about a treadmill names it.
    assert all(r["treadmill_id"] for r in daemon.events("belt_stop_confirmed"))


async def test_pause_mode_reaches_the_belt(tmp_path: Path, mqtt_broker: EmbeddedBroker) -> None:
    config = write_config(tmp_path, mqtt_broker, treadmills=1)
    config.write_text('shutdown_mode = "pause"\n' + config.read_text(encoding="utf-8"))
    async with (
        Observer(mqtt_broker) as dashboard,
        treadmilld("run", "--config", str(config)) as daemon,
    ):
        await dashboard.subscribe(f"{BASE}/#")
        await dashboard.wait_for(
            f"{BASE}/sim01/availability", lambda m: m.text == "online", within_s=30
        )
        reply = await dashboard.request(f"{BASE}/sim01/request/start", {"profile": "p1-starter-a"})
        assert reply["status"] == "ok", reply
        await dashboard.wait_for(f"{BASE}/sim01/state", moving, within_s=30)
        daemon.terminate()
        code = await daemon.wait(30)
    assert code == 0, daemon.output()
    assert [r["mode"] for r in daemon.events("daemon_stopping")] == ["pause"]
    assert len(daemon.events("belt_stop_confirmed")) == 1, daemon.output()


async def test_an_unreachable_treadmill_never_holds_up_the_others(
    tmp_path: Path, mqtt_broker: EmbeddedBroker
) -> None:
    # `real01` is a Bluetooth address no adapter here can reach: its link keeps failing and
    # retrying while the simulated treadmill runs its profile.
    config = write_config(tmp_path, mqtt_broker, treadmills=1)
    config.write_text(
        '[[treadmills]]\nid = "real01"\naddress = "AA:BB:CC:DD:EE:01"\n\n'
        + config.read_text(encoding="utf-8")
        + "\n[link]\nscan_timeout_s = 0.5\n[link.backoff]\ninitial_s = 0.2\nmaximum_s = 0.5\n",
        encoding="utf-8",
    )
    async with (
        Observer(mqtt_broker) as dashboard,
        treadmilld("run", "--config", str(config)) as daemon,
    ):
        await dashboard.subscribe(f"{BASE}/#")
        await dashboard.wait_for(
            f"{BASE}/sim01/availability", lambda m: m.text == "online", within_s=30
        )
        reply = await dashboard.request(f"{BASE}/sim01/request/start", {"profile": "p1-starter-a"})
        assert reply["status"] == "ok", reply
        await dashboard.wait_for(f"{BASE}/sim01/state", moving, within_s=30)
        refused = await dashboard.request(
            f"{BASE}/real01/request/start", {"profile": "p1-starter-a"}, transaction="real"
        )
        assert refused["status"] == "error"
        daemon.terminate()
        code = await daemon.wait(30)
    assert code == 0, daemon.output()
    failures = [r for r in daemon.log_records() if r.get("treadmill_id") == "real01"]
    assert any(r["level"] == "warning" for r in failures), daemon.output()
    assert [r["treadmill_id"] for r in daemon.events("belt_stop_confirmed")] == ["sim01"]


def imported_modules(stderr: list[str]) -> set[str]:
    """The modules a process imported, from its `-X importtime` lines on stderr."""
    return {
        line.rsplit("|", 1)[1].strip() for line in stderr if line.startswith("import time:")
    } - {"imported package"}


async def test_a_real_treadmill_config_keeps_the_simulator_out_of_the_daemon(
    tmp_path: Path, mqtt_broker: EmbeddedBroker
) -> None:
    # What a gym runs: a deck found by its address, nothing simulated. The simulator
    # (treadmilld_sim, and Bumble under it) would cost the daemon memory it never uses.
    config = tmp_path / "config.toml"
    config.write_text(
        '[[treadmills]]\nid = "real01"\naddress = "AA:BB:CC:DD:EE:01"\n\n'
        f'[mqtt]\nhost = "{mqtt_broker.host}"\nport = {mqtt_broker.port}\n'
        f'base_topic = "{BASE}"\nclient_id = "treadmilld-test-{os.getpid()}"\n\n'
        '[logging]\nformat = "json"\nlevel = "info"\n\n'
        "[link]\nscan_timeout_s = 0.5\n[link.backoff]\ninitial_s = 0.2\nmaximum_s = 0.5\n",
        encoding="utf-8",
    )
    importtime = {"PYTHONPROFILEIMPORTTIME": "1"}
    async with (
        Observer(mqtt_broker) as dashboard,
        treadmilld("run", "--config", str(config), env=importtime) as daemon,
    ):
        await dashboard.subscribe(BRIDGE_STATE)
        await dashboard.wait_for(BRIDGE_STATE, lambda m: m.text == "online", within_s=30)
        # The link has tried the deck (and found no adapter here): whatever it imports on the
        # way is imported by now.
        async with asyncio.timeout(30):
            while not daemon.events("connect_failed"):  # noqa: ASYNC110 - a log line has no event
                await asyncio.sleep(0.05)
        daemon.terminate()
        code = await daemon.wait(30)
    assert code == 0, daemon.output()
    imported = imported_modules(daemon.stderr)
    assert "treadmilld.ble.bleak_io" in imported  # the import list is the daemon's own
    loaded = sorted(m for m in imported if m.split(".")[0] in ("treadmilld_sim", "bumble"))
    assert loaded == []


async def test_profile_files_are_reloaded_while_a_running_workout_keeps_its_plan(
    tmp_path: Path, mqtt_broker: EmbeddedBroker
) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    short = (Path(__file__).parent / "data" / "test-short.toml").read_text(encoding="utf-8")
    (folder / "test-short.toml").write_text(short, encoding="utf-8")
    config = write_config(tmp_path, mqtt_broker, treadmills=1)
    config.write_text(
        f'profiles_dir = "{folder}"\nprofiles_poll_interval_s = 0.1\n'
        + config.read_text(encoding="utf-8")
    )
    profiles_topic = f"{BASE}/bridge/{default_instance()}/profiles"

    def listing(name: str, total_s: float | None = None) -> Callable[[Received], bool]:
        def check(message: Received) -> bool:
            entries = {entry["name"]: entry for entry in message.json()}
            return name in entries and total_s in (None, entries[name]["total_s"])

        return check

    async with (
        Observer(mqtt_broker) as dashboard,
        treadmilld("run", "--config", str(config)) as daemon,
    ):
        await dashboard.subscribe(f"{BASE}/#")
        first = await dashboard.wait_for(profiles_topic, listing("test-short"), within_s=30)
        old_total = {e["name"]: e["total_s"] for e in first.json()}["test-short"]
        await dashboard.wait_for(
            f"{BASE}/sim01/availability", lambda m: m.text == "online", within_s=30
        )
        reply = await dashboard.request(f"{BASE}/sim01/request/start", {"profile": "test-short"})
        assert reply["status"] == "ok", reply
        running = await dashboard.wait_for(f"{BASE}/sim01/state", moving, within_s=30)
        segments = running.json()["segment_count"]

        # Longer while it runs, and a new file beside it: both picked up by themselves.
        mark = dashboard.mark()
        longer = short.replace("duration_s = 15", "duration_s = 45")
        (folder / "test-short.toml").write_text(longer, encoding="utf-8")
        (folder / "dropped-in.toml").write_text(
            short.replace('name = "test-short"', 'name = "dropped-in"'), encoding="utf-8"
        )
        await dashboard.wait_for(profiles_topic, listing("dropped-in"), after=mark, within_s=30)
        reloaded = await dashboard.wait_for(
            profiles_topic, listing("test-short", old_total + 30), after=mark, within_s=30
        )
        assert reloaded is not None
        # The workout walks on with the plan it started with.
        state = await dashboard.wait_for(f"{BASE}/sim01/state", moving, after=dashboard.mark())
        assert state.json()["profile"] == "test-short"
        assert state.json()["segment_count"] == segments
        assert state.json()["remaining_s"] <= old_total
        daemon.terminate()
        code = await daemon.wait(30)
    assert code == 0, daemon.output()
    assert daemon.events("profiles_reloaded"), daemon.output()
