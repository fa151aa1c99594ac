"""`treadmilld history list | show | export | prune` over a database holding recorded
workouts, read through the same settings as `run` (here TREADMILLD_DATABASE__URL)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.history.test_csv_export import rows
from tests.history.test_fit_export import check_matches_record as check_fit
from tests.history.test_fit_export import decode as decode_fit
from tests.history.test_tcx_export import check_matches_record as check_tcx
from tests.history.test_tcx_export import valid_activity
from tests.history.workouts import interval_workout
from treadmilld.cli import main
from treadmilld.engine.api import AbortReason
from treadmilld.history.records import WorkoutOutcome, WorkoutRecord
from treadmilld.history.riders import Rider
from treadmilld.store.api import open_store, sqlite_url

RECENT = replace(interval_workout(), workout_id="w-recent", rider_id="r-17")
OLD = replace(
    interval_workout(),
    workout_id="w-old",
    started_at=datetime.now(UTC) - timedelta(days=400),
    outcome=WorkoutOutcome.ABORTED,
    abort_reason=AbortReason.NO_DATA,
    abort_detail="no Treadmill Data for 3 s",
)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = sqlite_url(tmp_path / "db")

    async def fill() -> None:
        async with await open_store(url) as store:
            await store.create_rider(Rider(rider_id="r-17", display_name="Ann", body_weight_kg=60))
            for record in (RECENT, OLD):
                await store.begin_workout(record)

    asyncio.run(fill())
    monkeypatch.setenv("TREADMILLD_DATABASE__URL", url)
    monkeypatch.delenv("TREADMILLD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return url


def _stored(url: str, workout_id: str) -> WorkoutRecord:
    async def read() -> WorkoutRecord:
        async with await open_store(url) as store:
            return await store.get_workout(workout_id)

    return asyncio.run(read())


def test_list_shows_the_newest_first_and_a_riders_own(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ID")
    assert [line.split()[0] for line in lines[1:]] == ["w-recent", "w-old"]
    assert main(["history", "list", "--rider", "r-17"]) == 0
    assert "w-old" not in capsys.readouterr().out
    assert main(["history", "list", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_show_gives_the_summary_segments_planned_and_done_and_the_abort(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "show", "w-old"]) == 0
    text = capsys.readouterr().out
    assert "aborted: no_data: no Treadmill Data for 3 s" in text
    table = text.split("STATE\n", 1)[1].splitlines()
    assert len(table) == len(OLD.segments)
    # The last segment was planned 20 s and stopped after 5 s.
    assert table[-1].split()[1:3] == ["backward", "0:20"]
    assert "0:05" in table[-1]


@pytest.mark.parametrize("kind", ["fit", "tcx", "csv"])
def test_export_writes_a_file_named_by_id_and_format_that_reads_back(
    database: str, kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["history", "export", "w-recent", "--format", kind]) == 0
    written = tmp_path / f"w-recent.{kind}"
    assert str(written.name) in capsys.readouterr().out
    record = _stored(database, "w-recent")
    data = written.read_bytes()
    if kind == "fit":
        check_fit(record, decode_fit(data))
    elif kind == "tcx":
        check_tcx(record, valid_activity(data))
    else:
        assert len(rows(data.decode("utf-8"))) == len(record.samples)


def test_export_to_a_chosen_file(database: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "walk.tcx"
    target.parent.mkdir()
    assert main(["history", "export", "w-recent", "--format", "tcx", "-o", str(target)]) == 0
    valid_activity(target.read_bytes())


def test_an_unknown_id_says_how_to_list_the_ids(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "show", "w-nope"]) == 2
    assert "`treadmilld history list`" in capsys.readouterr().err


def test_an_unreachable_database_says_what_to_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TREADMILLD_DATABASE__URL", "postgresql://treadmilld@127.0.0.1:9/db")
    assert main(["history", "list"]) == 1
    err = capsys.readouterr().err
    assert "cannot be reached" in err
    assert "[database] url" in err


def test_prune_deletes_what_retention_says_and_refuses_without_retention(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "prune"]) == 2
    assert "retention_days" in capsys.readouterr().err
    monkeypatch.setenv("TREADMILLD_DATABASE__RETENTION_DAYS", "365")
    assert main(["history", "prune"]) == 0
    assert "deleted 1 workout(s)" in capsys.readouterr().out
    assert main(["history", "list"]) == 0
    assert "w-old" not in capsys.readouterr().out
