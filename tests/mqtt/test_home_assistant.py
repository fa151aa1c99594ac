"""A clinical workout run from Home Assistant alone: the real daemon (engine, BLE client, a
simulated deck on Bumble) behind a real broker, and a client that knows only what HA knows,
the discovery config. Every press is the payload HA would publish for that entity, every
reading is the entity's template rendered as HA renders it, and a button is pressed only
when HA would offer it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from treadmilld_broker import EmbeddedBroker

from treadmilld.app.assembly import Assembly
from treadmilld.app.run import run_daemon
from treadmilld.app.sdnotify import SystemdNotifier
from treadmilld.app.settings import LoggingSettings, Settings, TreadmillSettings
from treadmilld.app.supervisor import Supervisor
from treadmilld.engine.api import SessionEvent, StateChanged
from treadmilld.mqtt.config import MqttSettings

from .client import Observer, Received, eventually
from .home_assistant import UNKNOWN, HomeAssistant

BASE = "treadmilld"
CONFIG = "homeassistant/device/treadmilld_tm01/config"
STATE = f"{BASE}/tm01/state"
EVENTS = f"{BASE}/tm01/event"
# Profile seconds per wall second: the first segment lasts 12 s here, time enough to pause and
# resume in it on a busy machine; a clinical turn (20 s standing) about 2 s. Not faster: at 20x
# a 100 ms stall of a loaded machine was 2 s of deck time, and the governor rightly judged the
# simulated belt by it (seen twice with the load average at 3.5 and above).
SPEEDUP = 10.0
WAIT_S = 40.0
# The history database is migrated already: this test is about Home Assistant, not a first
# start.
pytestmark = pytest.mark.usefixtures("migrated_history")
PROFILE = """
name = "ha-clinical"
title = "Clinical: forward, backward, forward"
description = "Two turns, each confirmed by a person."
suits = "tests"
sources = ["none: a test fixture"]
clinical = true

[[segments]]
direction = "forward"
duration_s = 120
speed_kmh = 2.5
cue = "Face forward"

[[segments]]
direction = "backward"
duration_s = 300
speed_kmh = 1.5
cue = "Small steps backward"

[[segments]]
direction = "forward"
duration_s = 120
speed_kmh = 2.5
cue = "Face forward again"
"""


def state_is(**fields: object) -> Callable[[Received], bool]:
    return lambda message: all(message.json().get(k) == v for k, v in fields.items())


@contextlib.asynccontextmanager
async def daemon(
    broker: EmbeddedBroker, profiles: Path
) -> AsyncIterator[tuple[Assembly, list[SessionEvent]]]:
    """`treadmilld run` in-process with one simulated treadmill; yields its assembly and every
    event its session emitted (what must reach HA)."""
    settings = Settings(
        treadmills=[TreadmillSettings(id="tm01", name="Hall treadmill", simulated={})],
        mqtt=MqttSettings(
            host=broker.host, port=broker.port, client_id="treadmilld-ha", instance="test"
        ),
        logging=LoggingSettings(),
        clock_speedup=SPEEDUP,
        profiles_dir=profiles,
    )
    emitted: list[SessionEvent] = []
    ready: asyncio.Future[tuple[Assembly, Supervisor]] = asyncio.get_running_loop().create_future()
    readers: list[asyncio.Task[None]] = []

    async def record(assembly: Assembly) -> None:
        async for event in assembly.units[0].session.events():
            if not isinstance(event, StateChanged):
                emitted.append(event)

    def attach(assembly: Assembly, supervisor: Supervisor) -> None:
        readers.append(asyncio.create_task(record(assembly)))
        ready.set_result((assembly, supervisor))

    task = asyncio.create_task(
        run_daemon(settings, notifier=SystemdNotifier({}), on_assembled=attach)
    )
    try:
        async with asyncio.timeout(WAIT_S):
            assembly, _ = await ready
        yield assembly, emitted
    finally:
        if ready.done():
            ready.result()[1].request_stop("test over")
        async with asyncio.timeout(WAIT_S):
            await task
        for reader in readers:
            reader.cancel()


async def test_a_clinical_workout_driven_only_from_home_assistant(
    mqtt_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "ha-clinical.toml").write_text(PROFILE, encoding="utf-8")
    async with Observer(mqtt_broker) as mqtt, daemon(mqtt_broker, profiles) as (_, emitted):
        ha = await HomeAssistant.discover(mqtt, CONFIG, within_s=WAIT_S)

        async def until(**fields: object) -> None:
            await mqtt.wait_for(STATE, state_is(**fields), after=mark, within_s=WAIT_S)

        # The device HA shows: the configured name, the deck's address, serial and firmware.
        device = ha.config["device"]
        assert device["name"] == "Hall treadmill"
        assert device["connections"][0][0] == "bluetooth"
        assert (device["serial_number"], device["sw_version"]) == ("0001", "1.0.0")
        assert ha.config["components"]["target_speed"]["max"] > 0

        mark = mqtt.mark()
        await mqtt.publish(*ha.choose("profile", "Clinical: forward, backward, forward"))
        await until(selected_profile="ha-clinical", belt="standing")
        await mqtt.publish(*ha.press("start"))
        await until(phase="running", direction="forward")
        assert ha.state("workout") == "Clinical: forward, backward, forward"
        assert ha.state("segment") == "1 of 5"  # the two turns are segments of the plan

        # Faster than clinical mode allows: applied at its cap, and HA hears of it.
        await mqtt.publish(*ha.choose("target_speed", 9.0))
        await mqtt.wait_for(EVENTS, state_is(event_type="limit_applied"), within_s=WAIT_S)

        mark = mqtt.mark()
        await mqtt.publish(*ha.press("pause"))
        await until(phase="paused")
        assert not ha.available("pause")
        assert not ha.available("skip")
        mark = mqtt.mark()
        await mqtt.publish(*ha.press("resume"))
        await until(phase="running")

        # The first turn stops at `awaiting_confirmation` until someone confirms.
        await until(phase="awaiting_confirmation")
        assert ha.state("target_speed") == UNKNOWN  # the belt stands: no target
        # A speed now is refused (only while walking): HA's event entity shows why.
        await mqtt.publish(*ha.choose("target_speed", 2.0))
        refused = await mqtt.wait_for(EVENTS, state_is(event_type="error"), within_s=WAIT_S)
        mark = mqtt.mark()
        await mqtt.publish(*ha.press("confirm_turn"))
        await until(phase="running", direction="backward")
        assert ha.state("cue") == "Small steps backward"

        await mqtt.publish(*ha.press("skip"))
        await mqtt.wait_for(EVENTS, state_is(event_type="segment_skipped"), within_s=WAIT_S)
        await until(phase="awaiting_confirmation")
        mark = mqtt.mark()
        await mqtt.publish(*ha.press("confirm_turn"))
        await until(phase="running", direction="forward", segment_index=4)

        mark = mqtt.mark()
        await mqtt.publish(*ha.press("emergency_stop"))
        await until(phase="aborted")
        assert ha.state("outcome") == "emergency_stop"
        await mqtt.wait_for(EVENTS, state_is(event_type="stop_confirmed"), within_s=WAIT_S)
        # Every event the engine emitted so far is on the event entity's topic, in order.
        await eventually(lambda: len(mqtt.matching(EVENTS)) >= len(emitted) + 1)
        engine_types = [event.type for event in emitted]

    published = [m.json() for m in mqtt.matching(EVENTS)]
    event_types = ha.entity("events")["event_types"]
    assert all(p["event_type"] == p["type"] and p["type"] in event_types for p in published)
    assert [p["type"] for p in published if p["type"] != "error"][: len(engine_types)] == (
        engine_types
    )
    assert refused.json()["code"] == "invalid_state"
    assert {
        "workout_started",
        "segment_started",
        "limit_applied",
        "workout_paused",
        "workout_resumed",
        "turn_now",
        "turn_countdown",
        "turn_confirmation_needed",
        "segment_skipped",
        "workout_aborted",
        "stop_confirmed",
    } <= set(engine_types)
