"""`treadmilld riders ...` on the database of a configuration file (SQLite in the test's folder):
what a person types, what they read, and that a refused command changes nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.riders import record_workout
from treadmilld import cli
from treadmilld.store.api import open_store, sqlite_url


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{sqlite_url(tmp_path)}"\n', encoding="utf-8")
    return path


def riders(config: Path, *args: str) -> int:
    return cli.main(["riders", *args, "--config", str(config)])


def finished_workout(config: Path, workout_id: str, *, program: str, stage: int) -> None:
    """A workout of r-17's that started now (after the rider began the program), as the
    recorder would have left it."""

    async def write() -> None:
        async with await open_store(sqlite_url(config.parent)) as store:
            await record_workout(
                store,
                workout_id,
                rider_id="r-17",
                started_at=datetime.now(UTC),
                profile="p1-starter-a",
                program=program,
                stage=stage,
            )

    asyncio.run(write())


def test_a_rider_is_added_listed_shown_and_changed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        riders(
            config,
            "add",
            "r-17",
            "--name",
            "Anna",
            "--weight",
            "64",
            "--program",
            "retro-starter",
            "--limit",
            "max_backward_speed_kmh=2.0",
        )
        == 0
    )
    assert "max_backward_speed_kmh=2.0" in capsys.readouterr().out
    assert riders(config, "list") == 0
    assert capsys.readouterr().out == "r-17\tAnna\tretro-starter\n"
    assert riders(config, "set", "r-17", "--weight", "66.5", "--clinical") == 0
    shown = capsys.readouterr().out
    assert "66.5 kg" in shown
    assert "clinical      yes" in shown
    assert riders(config, "progress", "r-17") == 0
    progress = capsys.readouterr().out
    assert "retro-starter: stage 1 of 5" in progress
    assert "next profile       p1-starter-a" in progress


def test_a_refused_change_says_why_and_changes_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    riders(config, "add", "r-17", "--name", "Anna", "--weight", "64")
    capsys.readouterr()
    assert (
        riders(config, "set", "r-17", "--weight", "70", "--limit", "max_forward_speed_kmh=19") == 1
    )
    assert "limits.max_forward_speed_kmh 19 is looser" in capsys.readouterr().err
    assert riders(config, "add", "Anna Smith", "--name", "Anna", "--weight", "64") == 2
    assert "rider_id" in capsys.readouterr().err
    assert riders(config, "show", "r-17") == 0
    assert "64 kg" in capsys.readouterr().out
    assert riders(config, "show", "r-99") == 1
    assert "unknown_rider" in capsys.readouterr().err


def test_a_riders_own_strap_is_set_shown_exported_and_forgotten(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    add = ["add", "r-17", "--name", "Anna", "--weight", "64"]
    assert riders(config, *add, "--strap-address", "a0:9e:1a:4b:3c:2d") == 0
    assert "HR strap      address A0:9E:1A:4B:3C:2D" in capsys.readouterr().out
    exported = tmp_path / "r-17.json"
    assert riders(config, "export", "r-17", "-o", str(exported)) == 0
    rider = json.loads(exported.read_text(encoding="utf-8"))["rider"]
    assert rider["heart_rate_strap"] == {"address": "A0:9E:1A:4B:3C:2D", "name_match": None}
    assert riders(config, "set", "r-17", "--strap-name", "Polar H10 4B3C2D") == 0
    assert "HR strap      name containing 'Polar H10 4B3C2D'" in capsys.readouterr().out
    # Not an address: refused, saying how to write one, and the strap is kept.
    assert riders(config, "set", "r-17", "--strap-address", "polar") == 2
    assert "AA:BB:CC:DD:EE:FF" in capsys.readouterr().err
    assert riders(config, "show", "r-17") == 0
    assert "name containing 'Polar H10 4B3C2D'" in capsys.readouterr().out
    assert riders(config, "set", "r-17", "--no-strap") == 0
    assert "HR strap      -" in capsys.readouterr().out


def test_feedback_prints_the_next_session_and_a_confirm_needs_something_to_confirm(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    riders(config, "add", "r-17", "--name", "Anna", "--weight", "64", "--program", "retro-starter")
    finished_workout(config, "w-1", program="retro-starter", stage=0)
    capsys.readouterr()
    assert riders(config, "feedback", "w-1", "--effort", "4", "--pain", "1") == 0
    answer = capsys.readouterr().out
    assert answer.startswith("stay: 1 of 8 qualifying sessions")
    assert "next session: p1-starter-a (stage 0, session 2)" in answer
    assert riders(config, "confirm", "r-17", "--therapist", "pt-anna") == 1
    assert "nothing_to_confirm" in capsys.readouterr().err


def test_export_writes_everything_and_delete_takes_the_rider_with_their_history(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    riders(config, "add", "r-17", "--name", "Anna", "--weight", "64", "--program", "retro-starter")
    finished_workout(config, "w-1", program="retro-starter", stage=0)
    riders(config, "feedback", "w-1", "--effort", "4", "--pain", "1")
    exported = tmp_path / "r-17.json"
    assert riders(config, "export", "r-17", "-o", str(exported)) == 0
    data = json.loads(exported.read_text(encoding="utf-8"))
    assert data["rider"]["display_name"] == "Anna"
    assert data["workouts"][0]["feedback"]["effort"] == 4

    capsys.readouterr()
    assert riders(config, "delete", "r-17") == 0
    assert capsys.readouterr().out == "deleted r-17 and 1 workouts\n"
    assert riders(config, "list") == 0
    assert capsys.readouterr().out == ""
    assert riders(config, "export", "r-17") == 1


def waiting_for_a_therapist(config: Path) -> None:
    """r-17 (clinical-knee-oa) met the first stage's rule: the advance waits for a therapist."""

    async def write() -> None:
        async with await open_store(sqlite_url(config.parent)) as store:
            rider = await store.get_rider("r-17")
            assert rider.program_state is not None
            state = {
                **rider.program_state,
                "pending_confirm": {"to_stage": 1, "since": datetime.now(UTC).isoformat()},
            }
            await store.update_rider(replace(rider, program_state=state))

    asyncio.run(write())


def test_a_therapist_declines_and_the_rider_stays_on_their_stage(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["add", "r-17", "--name", "Anna", "--weight", "64", "--program", "clinical-knee-oa"]
    riders(config, *add)
    waiting_for_a_therapist(config)
    capsys.readouterr()
    assert riders(config, "progress", "r-17") == 0
    assert "a therapist's answer (treadmilld riders confirm or decline)" in capsys.readouterr().out

    assert riders(config, "decline", "r-17", "--therapist", "pt-ben") == 0
    declined = capsys.readouterr().out
    assert "clinical-knee-oa: stage 1 of 2" in declined
    assert "next profile       p3-knee-oa" in declined
    assert "awaiting" not in declined
    assert riders(config, "decline", "r-17", "--therapist", "pt-ben") == 1
    assert "nothing_to_confirm" in capsys.readouterr().err
    assert riders(config, "export", "r-17") == 0
    state = json.loads(capsys.readouterr().out)["rider"]["program_state"]
    assert [d["therapist"] for d in state["declines"]] == ["pt-ben"]


def test_weeks_are_the_configured_zones(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # UTC+14: its week begins on Sunday 10:00 UTC, so a session in its first second is in the
    # previous UTC week (weeks counted in UTC miss it, but for the local Monday's first 14 hours,
    # when UTC is still in that week too).
    zone = ZoneInfo("Pacific/Kiritimati")
    config.write_text(
        config.read_text(encoding="utf-8") + '[programs]\ntime_zone = "Pacific/Kiritimati"\n',
        encoding="utf-8",
    )
    riders(config, "add", "r-17", "--name", "Anna", "--weight", "64", "--program", "retro-starter")
    local_now = datetime.now(zone)
    monday = (local_now - timedelta(days=local_now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )

    async def write() -> None:
        async with await open_store(sqlite_url(config.parent)) as store:
            rider = await store.get_rider("r-17")
            assert rider.program_state is not None
            begun = (monday - timedelta(days=8)).astimezone(UTC).isoformat()
            state = {**rider.program_state, "started_at": begun, "stage_from": begun}
            await store.update_rider(replace(rider, program_state=state))
            # The first minute of the local week: Sunday 10:00 in UTC.
            await record_workout(
                store,
                "w-1",
                rider_id="r-17",
                started_at=min(monday + timedelta(seconds=1), local_now).astimezone(UTC),
                program="retro-starter",
                stage=0,
            )

    asyncio.run(write())
    capsys.readouterr()
    assert riders(config, "progress", "r-17") == 0
    assert "this week          1 of 4 sessions" in capsys.readouterr().out
