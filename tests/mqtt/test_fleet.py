"""Several daemons on one broker (a gym's Pis): their own bridge topics and availability, no
fight over a client id, and a clear word when one is shared anyway. Real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from treadmilld_broker import EmbeddedBroker

from tests.support.broker import secured_mosquitto
from treadmilld.mqtt import config as mqtt_config
from treadmilld.mqtt.bridge import MqttBridge
from treadmilld.mqtt.config import MqttSettings
from treadmilld.mqtt.reconnect_policy import SESSION_TAKEN_OVER, ReconnectPolicy

from .client import WAIT_S, Observer, Received, eventually
from .doubles import RecordingTreadmill, StaticCatalog

BASE = "treadmilld"
GYM_DOC = Path(__file__).parents[2] / "docs" / "gym-broker.md"
# How long two daemons are watched for a fight over the connection: a fight flaps within
# a second (backoff 0.25-0.5 s, then a new connect that throws the other off).
WATCH_S = 2.5

LogList = list[MutableMapping[str, Any]]


def settings_on_host(
    monkeypatch: pytest.MonkeyPatch, host: str, broker: EmbeddedBroker, **fields: Any
) -> MqttSettings:
    """What `treadmilld run` would build on the Pi called `host`: defaults except the broker."""
    monkeypatch.setattr(mqtt_config, "host_name", lambda: host)
    return MqttSettings.from_url(broker.url, **fields)


@contextlib.asynccontextmanager
async def daemon_bridge(
    settings: MqttSettings, treadmill_ids: tuple[str, ...], *, wait_ready: bool = True
) -> AsyncIterator[tuple[MqttBridge, dict[str, RecordingTreadmill]]]:
    treadmills = {tid: RecordingTreadmill(tid) for tid in treadmill_ids}
    bridge = MqttBridge(settings, treadmills, StaticCatalog(), version="9.9.9")
    task = asyncio.create_task(bridge.run(), name=f"bridge-{settings.instance}")
    try:
        if wait_ready:
            async with asyncio.timeout(WAIT_S):
                await bridge.wait_ready()
        yield bridge, treadmills
    finally:
        async with asyncio.timeout(WAIT_S):
            await bridge.close()
            await task


def events(logs: LogList, name: str) -> LogList:
    return [entry for entry in logs if entry["event"] == name]


async def retained(broker: EmbeddedBroker, *filters: str) -> dict[str, Received]:
    """The retained messages under `filters`, as a client connecting now gets them."""
    async with Observer(broker) as late:
        await late.subscribe(*filters)
        await asyncio.sleep(0.3)  # retained messages come right after SUBACK
        return {message.topic: message for message in late.received if message.retain}


def available_in_home_assistant(config: dict[str, Any], store: dict[str, Received]) -> bool:
    """HA's verdict for a discovered device with `availability_mode: all`: every listed
    topic holds its `online` payload."""
    assert config["availability_mode"] == "all"
    return all(
        topic["topic"] in store and store[topic["topic"]].text == "online"
        for topic in config["availability"]
    )


async def test_two_daemons_with_default_settings_keep_to_their_own_topics(
    mosquitto_broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two Pis set up from the same example configuration: only the host names differ.
    north = settings_on_host(monkeypatch, "gym-pi-north", mosquitto_broker)
    south = settings_on_host(monkeypatch, "gym-pi-south", mosquitto_broker)
    assert (north.client_id, south.client_id) == (
        "treadmilld-gym-pi-north",
        "treadmilld-gym-pi-south",
    )
    with capture_logs() as logs:
        async with Observer(mosquitto_broker) as watcher:
            await watcher.subscribe(f"{BASE}/#", "homeassistant/#")
            async with (
                daemon_bridge(north, ("tm01", "tm02")) as (north_bridge, _),
                daemon_bridge(south, ("tm03", "tm04")),
            ):
                await asyncio.sleep(WATCH_S)
                assert north_bridge.connected
                stop_north = watcher.mark()
                async with asyncio.timeout(WAIT_S):
                    await north_bridge.close()
                await watcher.wait_for(
                    f"{BASE}/bridge/gym-pi-north/state",
                    lambda m: m.text == "offline",
                    after=stop_north,
                )
                # The south Pi carries on, connected, with its treadmills available.
                await asyncio.sleep(0.5)
                store = await retained(mosquitto_broker, f"{BASE}/#", "homeassistant/#")

    # No flapping: one connection each, one `online` each, nothing dropped.
    connected = events(logs, "mqtt_connected")
    assert sorted(entry["client_id"] for entry in connected) == [
        "treadmilld-gym-pi-north",
        "treadmilld-gym-pi-south",
    ]
    assert not events(logs, "mqtt_connection_lost")
    assert not events(logs, "mqtt_client_id_in_use")
    bridge_states = [
        (m.topic, m.text)
        for m in watcher.received[:stop_north]
        if m.topic.startswith(f"{BASE}/bridge/") and m.topic.endswith("/state")
    ]
    assert sorted(bridge_states) == [
        (f"{BASE}/bridge/gym-pi-north/state", "online"),
        (f"{BASE}/bridge/gym-pi-south/state", "online"),
    ]
    # No cross-talk: each instance announces only its own treadmills, on its own topics, and
    # nobody writes the old shared `bridge/...` topics.
    for instance, treadmills in (
        ("gym-pi-north", ["tm01", "tm02"]),
        ("gym-pi-south", ["tm03", "tm04"]),
    ):
        info = watcher.matching(f"{BASE}/bridge/{instance}/info")
        devices = watcher.matching(f"{BASE}/bridge/{instance}/devices")
        assert info
        assert all(m.json()["treadmills"] == treadmills for m in info)
        assert info[0].json()["instance"] == instance
        assert devices
        assert all([d["id"] for d in m.json()] == treadmills for m in devices)
    assert not watcher.matching(f"{BASE}/bridge/state")
    assert not watcher.matching(f"{BASE}/bridge/info")
    assert not watcher.matching(f"{BASE}/bridge/devices")
    assert not events(logs, "mqtt_duplicate_treadmill_id")

    # What Home Assistant reads now: the north Pi's treadmills unavailable, the south Pi's
    # still available, each tied to its own instance's bridge state.
    assert store[f"{BASE}/bridge/gym-pi-north/state"].text == "offline"
    assert store[f"{BASE}/bridge/gym-pi-south/state"].text == "online"
    for treadmill_id, instance, expected in (
        ("tm01", "gym-pi-north", False),
        ("tm02", "gym-pi-north", False),
        ("tm03", "gym-pi-south", True),
        ("tm04", "gym-pi-south", True),
    ):
        config = store[f"homeassistant/device/treadmilld_{treadmill_id}/config"].json()
        assert config["availability"] == [
            {"topic": f"{BASE}/bridge/{instance}/state"},
            {"topic": f"{BASE}/{treadmill_id}/availability"},
        ]
        assert available_in_home_assistant(config, store) is expected, treadmill_id
        connected_sensor = config["components"]["connected"]
        assert connected_sensor["availability"] == [{"topic": f"{BASE}/bridge/{instance}/state"}]


async def test_a_shared_client_id_is_named_in_the_log_and_the_fight_slows_down(
    mosquitto_broker: EmbeddedBroker,
) -> None:
    # What the old example configuration did: the same fixed client id on two Pis.
    with capture_logs() as logs:
        async with (
            daemon_bridge(
                MqttSettings.from_url(
                    mosquitto_broker.url, instance="pi-a", client_id="treadmilld"
                ),
                ("tm01",),
            ),
            daemon_bridge(
                MqttSettings.from_url(
                    mosquitto_broker.url, instance="pi-b", client_id="treadmilld"
                ),
                ("tm02",),
                wait_ready=False,
            ),
        ):
            started = asyncio.get_running_loop().time()
            await eventually(lambda: bool(events(logs, "mqtt_client_id_in_use")), within_s=15)
            took_s = asyncio.get_running_loop().time() - started
            await asyncio.sleep(3.0)
            watched_s = asyncio.get_running_loop().time() - started

    in_use = events(logs, "mqtt_client_id_in_use")[0]
    assert in_use["log_level"] == "error"
    assert in_use["client_id"] == "treadmilld"
    assert "another client with the same client_id 'treadmilld'" in in_use["hint"]
    assert "mqtt.instance" in in_use["hint"]
    assert "mqtt.client_id" in in_use["hint"]
    assert took_s < 10.0
    # Said once per streak, not on every flap.
    assert len(events(logs, "mqtt_client_id_in_use")) <= 2
    # The misleading hint of before is gone from the drops.
    lost = events(logs, "mqtt_connection_lost")
    assert lost
    assert not [entry for entry in lost if "broker is running" in entry["hint"]]
    # Backoff is not reset by connections the other client cuts short: the two no longer
    # flap several times a second (the issue saw 120 `bridge/state` changes in 25 s).
    connects = len(events(logs, "mqtt_connected"))
    assert connects <= 4 * watched_s, (connects, watched_s)


def test_session_taken_over_on_mqtt5_is_named_at_the_first_drop() -> None:
    policy = ReconnectPolicy(
        MqttSettings(host="broker.lan", instance="pi-a", client_id="treadmilld", protocol="5")
    )
    with capture_logs() as logs:
        suspected = policy.takeover_suspected(
            dropped_by_broker=True, reason_code=SESSION_TAKEN_OVER, held_s=120.0
        )
    assert suspected
    [entry] = events(logs, "mqtt_client_id_in_use")
    assert "0x8E" in entry["reason"]
    # A drop that is neither quick nor a takeover starts over.
    assert not policy.takeover_suspected(dropped_by_broker=True, reason_code=None, held_s=120.0)


async def test_a_treadmill_id_served_by_two_instances_is_warned_about(
    mosquitto_broker: EmbeddedBroker,
) -> None:
    # pi-b was given tm02 as well: it finds pi-a's retained device list, and pi-a hears
    # pi-b's.
    with capture_logs() as logs:
        async with (
            daemon_bridge(
                MqttSettings.from_url(mosquitto_broker.url, instance="pi-a"), ("tm01", "tm02")
            ),
            daemon_bridge(
                MqttSettings.from_url(mosquitto_broker.url, instance="pi-b"), ("tm02", "tm03")
            ),
        ):
            await eventually(lambda: len(events(logs, "mqtt_duplicate_treadmill_id")) >= 2)
            await asyncio.sleep(0.3)
    warnings = events(logs, "mqtt_duplicate_treadmill_id")
    assert sorted((w["instance"], w["other_instance"], w["treadmill_id"]) for w in warnings) == [
        ("pi-a", "pi-b", "tm02"),
        ("pi-b", "pi-a", "tm02"),
    ]
    assert all(w["log_level"] == "warning" for w in warnings)
    assert "unique id" in warnings[0]["hint"]


LEGACY = {
    f"{BASE}/bridge/state": "offline",
    f"{BASE}/bridge/devices": '[{"id": "tm01"}]',
    f"{BASE}/bridge/profiles": "[]",
}


@pytest.mark.parametrize(
    ("listed", "state", "cleared"),
    [
        (["tm01"], "offline", True),  # this daemon before it had an instance name
        (["tm01", "tm09"], "offline", False),  # tm09 is served elsewhere: not ours
        (["tm01"], "online", False),  # someone is still publishing the old layout
    ],
)
async def test_old_shared_bridge_topics_are_cleared_only_when_they_are_ours(
    mosquitto_broker: EmbeddedBroker, listed: list[str], state: str, cleared: bool
) -> None:
    info = json.dumps({"version": "0.1.0", "treadmills": listed})
    async with Observer(mosquitto_broker) as old_daemon:
        for topic, payload in {**LEGACY, f"{BASE}/bridge/state": state}.items():
            await old_daemon.publish(topic, payload, retain=True)
        await old_daemon.publish(f"{BASE}/bridge/info", info, retain=True)
    with capture_logs() as logs:
        async with daemon_bridge(
            MqttSettings.from_url(mosquitto_broker.url, instance="pi-a"), ("tm01",)
        ):
            outcome = (
                "mqtt_legacy_bridge_topics_cleared" if cleared else "mqtt_legacy_bridge_topics_left"
            )
            await eventually(lambda: bool(events(logs, outcome)))
            await asyncio.sleep(0.2)
    store = await retained(mosquitto_broker, f"{BASE}/bridge/+")
    if cleared:
        assert store == {}
    else:
        assert store[f"{BASE}/bridge/info"].text == info
        assert store[f"{BASE}/bridge/state"].text == state


def fleet_acl() -> str:
    """The two-Pi ACL exactly as docs/gym-broker.md gives it."""
    blocks: list[str] = re.findall(r"```text\n(.*?)```", GYM_DOC.read_text(), flags=re.DOTALL)
    acl = [block for block in blocks if block.startswith("# fleet ACL")]
    assert len(acl) == 1, "docs/gym-broker.md must hold exactly one fleet ACL block"
    return acl[0]


FLEET_USERS = {
    "treadmilld-pi-north": "north-pw",
    "treadmilld-pi-south": "south-pw",
    "frontdesk": "desk-pw",
    "tm01": "tm01-pw",
}


async def test_fleet_acl_lets_each_pi_write_only_its_own_topics(tmp_path: Path) -> None:
    async with secured_mosquitto(tmp_path, users=FLEET_USERS, acl=fleet_acl()) as broker:

        def pi(name: str) -> MqttSettings:
            return MqttSettings.from_url(
                broker.url,
                instance=name,
                username=f"treadmilld-{name}",
                password=FLEET_USERS[f"treadmilld-{name}"],
            )

        async with (
            Observer(broker, username="frontdesk", password="desk-pw") as desk,
            Observer(broker, username="tm01", password="tm01-pw") as tablet,
        ):
            await desk.subscribe(f"{BASE}/#", "homeassistant/#")
            await tablet.subscribe(f"{BASE}/#")
            async with daemon_bridge(pi("pi-south"), ("tm03", "tm04")):
                async with daemon_bridge(pi("pi-north"), ("tm01", "tm02")):
                    for instance in ("pi-north", "pi-south"):
                        await desk.wait_for(
                            f"{BASE}/bridge/{instance}/state", lambda m: m.text == "online"
                        )
                    for treadmill_id in ("tm01", "tm02", "tm03", "tm04"):
                        await desk.wait_for(
                            f"homeassistant/device/treadmilld_{treadmill_id}/config"
                        )
                        await desk.wait_for(
                            f"{BASE}/{treadmill_id}/availability", lambda m: m.text == "online"
                        )
                    # The front desk (Home Assistant) talks to each Pi's bridge.
                    health = await desk.request(f"{BASE}/bridge/pi-south/request/health_check")
                    # Each Pi subscribes to commands by wildcard; the ACL delivers it its own.
                    for treadmill_id in ("tm01", "tm04"):
                        state = await desk.request(
                            f"{BASE}/{treadmill_id}/request/state", transaction=treadmill_id
                        )
                        assert state["status"] == "ok", state
                        assert state["data"]["treadmill_id"] == treadmill_id
                    assert health["data"]["treadmills"] == {
                        "tm03": "connected",
                        "tm04": "connected",
                    }
                    # A tablet sees whether its Pi is up, and its own treadmill only.
                    await tablet.wait_for(
                        f"{BASE}/bridge/pi-north/state", lambda m: m.text == "online"
                    )
                    await tablet.wait_for(f"{BASE}/tm01/state")
                    assert not tablet.matching(f"{BASE}/tm03/#")

                # The north Pi's login cannot speak for the south Pi or its treadmills. (Tried
                # once the north daemon is down: with use_username_as_clientid, its login is
                # its client id, and a second connection would throw the daemon off.)
                async with Observer(
                    broker, username="treadmilld-pi-north", password="north-pw"
                ) as rogue:
                    after = desk.mark()
                    await rogue.publish(f"{BASE}/bridge/pi-south/state", "offline", retain=True)
                    await rogue.publish(f"{BASE}/tm03/availability", "offline", retain=True)
                    await rogue.publish(
                        "homeassistant/device/treadmilld_tm03/config", "", retain=True
                    )
                    await rogue.publish(f"{BASE}/tm01/availability", "online", retain=True)
                    await desk.wait_for(f"{BASE}/tm01/availability", after=after)  # its own
                assert not desk.matching(f"{BASE}/bridge/pi-south/#", after=after)
                assert not desk.matching(f"{BASE}/tm03/#", after=after)
                assert not desk.matching("homeassistant/device/treadmilld_tm03/config", after=after)


async def test_a_command_is_answered_by_the_pi_serving_it_and_an_unknown_id_once(
    mosquitto_broker: EmbeddedBroker,
) -> None:
    def pi(name: str) -> MqttSettings:
        return MqttSettings.from_url(mosquitto_broker.url, instance=name)

    async with Observer(mosquitto_broker) as desk:
        await desk.subscribe(f"{BASE}/+/response/#", f"{BASE}/+/event", f"{BASE}/bridge/+/state")
        async with (
            daemon_bridge(pi("pi-south"), ("tm03",)) as (south, south_treadmills),
            daemon_bridge(pi("pi-north"), ("tm01",)) as (_, north_treadmills),
        ):
            for instance in ("pi-north", "pi-south"):
                await desk.wait_for(f"{BASE}/bridge/{instance}/state", lambda m: m.text == "online")
            await asyncio.sleep(0.3)  # each has read the other's retained device list
            # tm03 is pi-south's: pi-north, which sees the command too, says nothing.
            served = await desk.request(
                f"{BASE}/tm03/request/set_speed", {"speed_kmh": 3.0}, transaction="tm03"
            )
            # tm99 is nobody's: one error, from one Pi, naming the whole floor's ids.
            unknown = await desk.request(
                f"{BASE}/tm99/request/start", {"profile": "x"}, transaction="tm99"
            )
            await asyncio.sleep(0.5)
            replies = {
                transaction: [
                    m
                    for m in desk.matching(f"{BASE}/+/response/#")
                    if m.json().get("transaction") == transaction
                ]
                for transaction in ("tm03", "tm99")
            }
            assert south_treadmills["tm03"].calls == [("set_speed", (3.0,))]
            assert north_treadmills["tm01"].calls == []
            # pi-south stops: its treadmill is now answered for by pi-north, as offline.
            async with asyncio.timeout(WAIT_S):
                await south.close()
            await desk.wait_for(f"{BASE}/bridge/pi-south/state", lambda m: m.text == "offline")
            await asyncio.sleep(0.3)
            offline = await desk.request(
                f"{BASE}/tm03/request/start", {"profile": "x"}, transaction="gone"
            )
    assert served["status"] == "ok"
    assert [m.topic for m in replies["tm03"]] == [f"{BASE}/tm03/response/set_speed"]
    assert len(replies["tm99"]) == 1
    assert unknown["code"] == "unknown_treadmill"
    assert unknown["treadmills"] == ["tm01", "tm03"]
    assert offline["code"] == "treadmill_offline"
    assert "pi-south" in offline["error"]
    assert offline["treadmills"] == ["tm01"]
