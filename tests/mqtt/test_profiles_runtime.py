"""Profiles at runtime, through a real broker: reload on request and when a file changes,
uploads (accepted, refused, never replacing a built-in, never leaving the folder), and the
re-announced profile list a dashboard and Home Assistant's select see."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from treadmilld_broker import EmbeddedBroker

from treadmilld.engine.library import ProfileLibrary

from .client import INSTANCE, ManualClock, Observer, Received, running_bridge
from .doubles import RecordingTreadmill

BASE = "treadmilld"
BRIDGE = f"{BASE}/bridge/{INSTANCE}"
DISCOVERY = "homeassistant/device/treadmilld_tm01/config"
POLL_S = 2.0

GOOD = """\
# A comment that an upload keeps.
name = "{name}"
title = "{title}"
description = "A valid profile"
suits = "tests"
sources = ["a source"]

[[segments]]
direction = "forward"
duration_s = 180
speed_kmh = 3.0

[[segments]]
direction = "backward"
duration_s = 60
speed_kmh = 2.0

[[segments]]
direction = "forward"
duration_s = 120
speed_kmh = 3.0
"""


def good(name: str, title: str = "Mine") -> str:
    return GOOD.format(name=name, title=title)


# The profile a test uploads as a JSON object: the TOML file's structure.
AS_JSON: dict[str, Any] = {
    "name": "from-json",
    "title": "From JSON",
    "description": "Uploaded as an object",
    "suits": "tests",
    "sources": ["a source"],
    "limits": {"turn_pause_s": 15},
    "segments": [
        {"direction": "forward", "duration_s": 180, "speed_kmh": 3.0, "cue": 'Say "go"'},
        {
            "repeat": 2,
            "segments": [
                {"direction": "backward", "duration_s": 30, "speed_kmh": 2.0},
                {"direction": "rest", "duration_s": 10},
            ],
        },
        {"direction": "forward", "duration_s": 60, "speed_kmh": 3.0},
    ],
}


def names(message: Received) -> list[str]:
    return [entry["name"] for entry in message.json()]


def lists(name: str) -> Any:
    return lambda message: name in names(message)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "profiles"
    path.mkdir()
    (path / "mine.toml").write_text(good("mine"), encoding="utf-8")
    return path


@pytest.fixture
async def dashboard(
    mqtt_broker: EmbeddedBroker, folder: Path
) -> AsyncIterator[tuple[Observer, ProfileLibrary]]:
    """A running bridge over a library with the built-ins and `folder`, and a dashboard that
    has seen its first announcements."""
    library = ProfileLibrary([folder])
    treadmill = RecordingTreadmill("tm01")
    async with (
        running_bridge(mqtt_broker, {"tm01": treadmill}, catalog=library),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BRIDGE}/#", DISCOVERY)
        await app.wait_for(f"{BRIDGE}/profiles", lists("mine"))
        await app.wait_for(DISCOVERY)
        yield app, library


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_reload_request_reports_every_change_and_republishes_the_list(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path, mqtt_broker: EmbeddedBroker
) -> None:
    app, _ = dashboard
    (folder / "added.toml").write_text(good("added"), encoding="utf-8")
    (folder / "mine.toml").write_text(good("mine").replace("speed_kmh = 2.0", "speed_kmh = -2"))
    (folder / "never-good.toml").write_text('name = "never-good"\n', encoding="utf-8")
    mark = app.mark()
    reply = await app.request(f"{BRIDGE}/request/reload_profiles", transaction="r1")

    assert reply["status"] == "ok"
    assert reply["transaction"] == "r1"
    data = reply["data"]
    assert data["added"] == ["added"]
    assert data["removed"] == []
    # mine.toml is broken now: its last good version stays usable, and the reply says why.
    assert data["kept"] == ["mine"]
    assert {"added", "mine", "p2-retro-core"} <= set(data["profiles"])
    assert "never-good" not in data["profiles"]
    problems = {(p["file"], p["field"]) for p in data["problems"]}
    assert (str(folder / "mine.toml"), "segments[1].speed_kmh") in problems
    assert (str(folder / "never-good.toml"), "title") in problems
    assert all(p["message"] and p["hint"] for p in data["problems"])

    await app.wait_for(f"{BRIDGE}/profiles", lists("added"), after=mark)
    await app.wait_for(DISCOVERY, lambda m: "added" in m.text, after=mark)
    # Retained: a dashboard (or Home Assistant) arriving now sees the new list too.
    async with Observer(mqtt_broker) as late:
        await late.subscribe(f"{BRIDGE}/profiles", DISCOVERY)
        assert (await late.wait_for(f"{BRIDGE}/profiles", lists("added"))).retain
        assert (await late.wait_for(DISCOVERY, lambda m: "added" in m.text)).retain


async def test_a_reload_that_changes_nothing_republishes_nothing(
    dashboard: tuple[Observer, ProfileLibrary],
) -> None:
    app, _ = dashboard
    mark = app.mark()
    reply = await app.request(f"{BRIDGE}/request/reload_profiles")
    assert reply["data"]["added"] == reply["data"]["removed"] == reply["data"]["changed"] == []
    # The bridge republishes before it replies: nothing came before the reply.
    assert app.matching(f"{BRIDGE}/profiles", after=mark) == []
    assert app.matching(DISCOVERY, after=mark) == []


async def test_a_changed_file_is_reloaded_by_the_folder_watcher(
    mqtt_broker: EmbeddedBroker, folder: Path
) -> None:
    library = ProfileLibrary([folder])
    clock = ManualClock()
    async with (
        running_bridge(
            mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, catalog=library
        ) as bridge,
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BRIDGE}/profiles", DISCOVERY)
        await app.wait_for(f"{BRIDGE}/profiles", lists("mine"))
        watcher = asyncio.create_task(library.watch(clock, POLL_S, bridge.reload_profiles))
        try:
            mark = app.mark()
            (folder / "dropped-in.toml").write_text(good("dropped-in"), encoding="utf-8")
            (folder / "mine.toml").unlink()
            await clock.sleeper_until(clock.now() + POLL_S)
            await clock.advance(POLL_S)
            profiles = await app.wait_for(f"{BRIDGE}/profiles", lists("dropped-in"), after=mark)
            assert "mine" not in names(profiles)
            await app.wait_for(DISCOVERY, lambda m: "dropped-in" in m.text, after=mark)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def test_upload_of_toml_text_is_written_loaded_and_announced(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, library = dashboard
    text = good("uploaded", "Uploaded walk")
    mark = app.mark()
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": text})

    assert reply["status"] == "ok"
    assert reply["data"]["name"] == "uploaded"
    assert reply["data"]["title"] == "Uploaded walk"
    assert reply["data"]["file"] == str(folder / "uploaded.toml")
    assert reply["data"]["replaced"] is False
    assert reply["data"]["reload"]["added"] == ["uploaded"]
    # Written as sent (comments and all), with no temporary file left behind.
    assert (folder / "uploaded.toml").read_text(encoding="utf-8") == text
    assert files(folder) == ["mine.toml", "uploaded.toml"]
    assert library.get("uploaded").title == "Uploaded walk"
    await app.wait_for(f"{BRIDGE}/profiles", lists("uploaded"), after=mark)
    await app.wait_for(DISCOVERY, lambda m: "uploaded" in m.text, after=mark)
    # It survives a restart: a fresh library reads it from the folder.
    assert "uploaded" in ProfileLibrary([folder]).names()


async def test_upload_of_a_json_object_is_written_as_toml(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, _ = dashboard
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"profile": AS_JSON})
    assert reply["status"] == "ok"
    assert reply["data"]["file"] == str(folder / "from-json.toml")
    fresh = ProfileLibrary([folder]).get("from-json")
    assert fresh.model_dump(exclude_defaults=True) == ProfileLibrary.from_profiles(
        [type(fresh).model_validate(AS_JSON)]
    ).get("from-json").model_dump(exclude_defaults=True)


async def test_an_invalid_upload_is_refused_with_every_problem_and_nothing_written(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, _ = dashboard
    bad = good("bad").replace('direction = "backward"', 'direction = "backwards"')
    bad = bad.replace("duration_s = 180", "duration_s = 0")
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": bad})
    assert reply["status"] == "error"
    assert reply["code"] == "invalid_profile"
    assert {p["field"] for p in reply["problems"]} == {
        "segments[0].duration_s",
        "segments[1].direction",
    }
    assert all(p["hint"] for p in reply["problems"])

    # null is "left out": fine for an optional field, "missing" for a required one.
    as_json = {**AS_JSON, "sessions_per_week": None, "title": None, "clinical": "maybe"}
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"profile": as_json})
    assert reply["code"] == "invalid_profile"
    assert {p["field"] for p in reply["problems"]} == {"title", "clinical"}
    reply = await app.request(
        f"{BRIDGE}/request/upload_profile", {"profile": {**AS_JSON, "sources": ["a", None]}}
    )
    assert [p["field"] for p in reply["problems"]] == ["sources[1]"]

    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": "name = "})
    assert reply["code"] == "invalid_profile"
    assert reply["problems"][0]["field"] == "(toml)"
    assert files(folder) == ["mine.toml"]


async def test_an_upload_never_replaces_a_builtin_profile(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, library = dashboard
    before = library.get("p2-retro-core")
    reply = await app.request(
        f"{BRIDGE}/request/upload_profile",
        {"toml": good("p2-retro-core"), "replace": True},
    )
    assert reply["status"] == "error"
    assert reply["code"] == "builtin_profile"
    assert "p2-retro-core-mine" in reply["error"]
    assert files(folder) == ["mine.toml"]
    assert library.get("p2-retro-core") is before


async def test_an_upload_cannot_write_outside_the_folder(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, _ = dashboard
    # The file name is the profile's validated name: no slashes, no dots.
    for name in ("../evil", "/tmp/evil", "..", "evil.toml"):
        text = good("x").replace('name = "x"', f"name = {json.dumps(name)}")
        reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": text})
        assert reply["code"] == "invalid_profile", name
        assert [p["field"] for p in reply["problems"]] == ["name"]
    # And there is no file-name field to aim elsewhere.
    reply = await app.request(
        f"{BRIDGE}/request/upload_profile", {"toml": good("x"), "file": "../evil.toml"}
    )
    assert reply["code"] == "invalid_payload"
    assert files(folder) == ["mine.toml"]
    assert files(folder.parent) == ["profiles"]


async def test_an_upload_replaces_a_profile_only_when_asked(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, library = dashboard
    changed = good("mine", "Mine, longer")
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": changed})
    assert reply["code"] == "profile_exists"
    assert '"replace": true' in reply["error"]
    assert library.get("mine").title == "Mine"
    mark = app.mark()
    reply = await app.request(
        f"{BRIDGE}/request/upload_profile", {"toml": changed, "replace": True}
    )
    assert reply["status"] == "ok"
    assert reply["data"]["replaced"] is True
    assert reply["data"]["reload"]["changed"] == ["mine"]
    assert library.get("mine").title == "Mine, longer"
    await app.wait_for(
        f"{BRIDGE}/profiles",
        lambda m: any(entry["title"] == "Mine, longer" for entry in m.json()),
        after=mark,
    )


async def test_an_oversized_or_malformed_upload_is_refused(
    dashboard: tuple[Observer, ProfileLibrary], folder: Path
) -> None:
    app, _ = dashboard
    padding = "# " + "x" * 70_000 + "\n"
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": padding + good("big")})
    assert reply["code"] == "too_large"
    reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": "x" * 300_000})
    assert reply["code"] == "too_large"
    reply = await app.request(
        f"{BRIDGE}/request/upload_profile", {"toml": good("a"), "profile": AS_JSON}
    )
    assert reply["code"] == "invalid_payload"
    assert "exactly one" in reply["error"]
    assert files(folder) == ["mine.toml"]


async def test_without_a_profiles_dir_an_upload_says_what_to_configure(
    mqtt_broker: EmbeddedBroker,
) -> None:
    async with (
        running_bridge(mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, catalog=ProfileLibrary()),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BRIDGE}/response/#")
        reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": good("a")})
    assert reply["code"] == "no_profiles_dir"
    assert "profiles_dir" in reply["error"]


async def test_an_unwritable_folder_refuses_the_upload_saying_where_and_why(
    mqtt_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # A folder that cannot be created (a file is in the way) fails like a read-only one, even
    # for root, which the tests may run as.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    library = ProfileLibrary([blocker / "profiles"])
    async with (
        running_bridge(mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, catalog=library),
        Observer(mqtt_broker) as app,
    ):
        await app.subscribe(f"{BRIDGE}/response/#")
        reply = await app.request(f"{BRIDGE}/request/upload_profile", {"toml": good("a")})
    assert reply["code"] == "write_failed"
    assert str(blocker / "profiles" / "a.toml") in reply["error"]
    assert "/var/lib/treadmilld" in reply["error"]
    assert "a" not in library.names()


async def test_a_retained_upload_is_refused_not_replayed(
    mqtt_broker: EmbeddedBroker, folder: Path
) -> None:
    async with Observer(mqtt_broker) as app:
        await app.subscribe(f"{BRIDGE}/response/upload_profile")
        # Left on the broker by a careless client before the daemon came up.
        await app.publish(
            f"{BRIDGE}/request/upload_profile",
            {"toml": good("retained"), "transaction": "r"},
            retain=True,
        )
        library = ProfileLibrary([folder])
        async with running_bridge(
            mqtt_broker, {"tm01": RecordingTreadmill("tm01")}, catalog=library
        ):
            reply = (await app.wait_for(f"{BRIDGE}/response/upload_profile")).json()
            await app.publish(f"{BRIDGE}/request/upload_profile", b"", retain=True)  # clear it
    assert reply["code"] == "retained_command"
    assert reply["transaction"] == "r"
    assert files(folder) == ["mine.toml"]
