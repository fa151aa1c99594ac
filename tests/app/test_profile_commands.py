"""`treadmilld profiles list | show | check` as functions."""

from __future__ import annotations

import io
from pathlib import Path

from treadmilld.app.profile_commands import check_profiles, list_profiles, show_profile
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import SafetyLimits

REPO_PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def test_list_shows_every_profile_with_its_times() -> None:
    out = io.StringIO()
    assert list_profiles(out, ProfileLibrary()) == 0
    text = out.getvalue()
    assert "p2-retro-core" in text
    assert "17:00" in text  # P2 total
    assert "9:00" in text  # P2 backward


def test_show_renders_the_timeline_and_an_energy_estimate() -> None:
    out = io.StringIO()
    assert show_profile(out, ProfileLibrary(), "p2-retro-core", 70.0, SafetyLimits()) == 0
    text = out.getvalue()
    assert "Total 17:00 (forward 7:00, backward 9:00, 6 turns)" in text
    assert "-> backward" in text
    assert "Michaelsen" in text
    heavy = io.StringIO()
    show_profile(heavy, ProfileLibrary(), "p2-retro-core", 140.0, SafetyLimits())

    def kcal(rendered: str) -> float:
        line = next(x for x in rendered.splitlines() if x.startswith("Estimated energy"))
        return float(line.split(": ")[1].split(" kcal")[0])

    # Twice the weight, twice the energy (each figure is rounded to whole kcal).
    assert abs(kcal(heavy.getvalue()) - 2 * kcal(text)) <= 1


def test_show_lists_what_the_limits_changed() -> None:
    out = io.StringIO()
    show_profile(out, ProfileLibrary(), "p6-backward-jog", 70.0, SafetyLimits())
    assert "max_backward_speed_kmh 6 -> 5" in out.getvalue()


def test_show_of_an_unknown_profile_fails() -> None:
    out = io.StringIO()
    assert show_profile(out, ProfileLibrary(), "p9", 70.0, SafetyLimits()) != 0
    assert "known profiles" in out.getvalue()


def test_check_accepts_the_builtin_profiles() -> None:
    out = io.StringIO()
    assert check_profiles(out, [REPO_PROFILES]) == 0
    assert "11 valid, 0 invalid" in out.getvalue()


def test_check_reports_every_error_with_file_field_and_hint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\ntitle = "B"\ndescription = "d"\nsuits = "s"\nsources = ["x"]\n'
        '[[segments]]\ndirection = "backwards"\nduration_s = 0\nspeed_kmh = 2\n'
    )
    out = io.StringIO()
    assert check_profiles(out, [bad, tmp_path / "missing.toml"]) != 0
    text = out.getvalue()
    assert f"{bad}: segments[0].direction" in text
    assert f"{bad}: segments[0].duration_s" in text
    assert "missing.toml" in text
    assert text.count("hint:") == 3


def test_show_accepts_a_profile_file_not_in_the_library(tmp_path: Path) -> None:
    mine = tmp_path / "my-retro.toml"
    mine.write_text(
        (REPO_PROFILES / "p2-retro-core.toml")
        .read_text()
        .replace('name = "p2-retro-core"', 'name = "my-retro"')
    )
    out = io.StringIO()
    assert show_profile(out, ProfileLibrary(), str(mine), 70.0, SafetyLimits()) == 0
    text = out.getvalue()
    assert "[my-retro]" in text
    assert "Total 17:00" in text


def test_show_of_a_bad_file_lists_every_problem_with_field_and_hint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\ntitle = "B"\ndescription = "d"\nsuits = "s"\nsources = ["x"]\n'
        '[[segments]]\ndirection = "backwards"\nduration_s = 0\nspeed_kmh = 2\n'
    )
    out = io.StringIO()
    assert show_profile(out, ProfileLibrary(), str(bad), 70.0, SafetyLimits()) == 1
    text = out.getvalue()
    assert f"{bad}: segments[0].direction" in text
    assert f"{bad}: segments[0].duration_s" in text
    assert text.count("hint:") == 2


def test_show_of_a_missing_file_says_so_not_unknown_profile(tmp_path: Path) -> None:
    out = io.StringIO()
    missing = tmp_path / "nope.toml"
    assert show_profile(out, ProfileLibrary(), str(missing), 70.0, SafetyLimits()) == 1
    assert f"{missing}: (file)" in out.getvalue()
    assert "known profiles" not in out.getvalue()
