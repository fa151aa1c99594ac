"""Program files: every problem named with its file, field and fix; the built-ins; the check
against the profile library at load and at reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.programs.rider import builtin_programs
from treadmilld.engine.library import ProfileLibrary
from treadmilld.programs import (
    ProgramError,
    ProgramLibrary,
    UnknownProgramError,
    builtin_programs_dir,
    load_program,
    parse_program,
)

PROFILES = ("p1-starter-a", "p1-starter-b", "p2-retro-core")

GOOD = """
name = "good"
title = "Good"
description = "A valid program"
sources = ["a source"]

[[stages]]
profile = "p1-starter-a"
sessions_per_week = 4
[stages.advance]
sessions = 8
within_days = 14
max_effort = 5
max_pain = 2
[stages.step_back]
pain_above = 4

[[stages]]
profile = "p1-starter-b"
sessions_per_week = 4
[stages.step_back]
pain_above = 4
"""


def problems(text: str, **kwargs: object) -> list[tuple[str, str, str, str]]:
    with pytest.raises(ProgramError) as caught:
        parse_program(text, file="my.toml", **kwargs)  # type: ignore[arg-type]
    return [(i.file, i.field, i.message, i.hint) for i in caught.value.issues]


def test_a_valid_program_loads_with_its_stages() -> None:
    program = parse_program(GOOD, file="good.toml", expected_name="good", profile_names=PROFILES)
    assert [stage.profile for stage in program.stages] == ["p1-starter-a", "p1-starter-b"]
    assert program.stages[0].advance is not None
    assert program.stages[0].advance.sessions == 8


def test_every_field_error_of_a_file_is_reported_with_field_and_hint() -> None:
    text = (
        GOOD.replace("sessions = 8", "sesions = 8")
        .replace("max_pain = 2", "max_pain = 11")
        .replace(
            "sessions_per_week = 4\n[stages.step_back]\npain_above = 4",
            "sessions_per_week = 0\nstep_bak = { pain_above = 4 }",
        )
    )
    found = problems(text)
    fields = {field: hint for _, field, _, hint in found}
    assert all(file == "my.toml" for file, *_ in found)
    assert "did you mean `sessions`?" in fields["stages[0].advance.sesions"]
    assert "add `sessions = ...`" in fields["stages[0].advance.sessions"]
    assert fields["stages[0].advance.max_pain"] == "bring the value inside the allowed range"
    assert fields["stages[1].sessions_per_week"] == "bring the value inside the allowed range"
    assert "add `step_back = ...`" in fields["stages[1].step_back"]
    assert fields["stages[1].step_bak"] == (
        "did you mean `step_back`? remove it or use one of: "
        "advance, note, profile, sessions_per_week, step_back"
    )


def test_a_toml_syntax_error_names_the_file_and_place() -> None:
    [(file, field, message, hint)] = problems("name = \n")
    assert (file, field) == ("my.toml", "(toml)")
    assert "line 1" in message
    assert "fix the TOML syntax" in hint


def test_a_stage_naming_a_profile_the_library_lacks_is_refused_with_the_close_name() -> None:
    [(_, field, message, hint)] = problems(
        GOOD.replace('"p1-starter-b"', '"p1-starter-bb"'), profile_names=PROFILES
    )
    assert field == "stages[1].profile"
    assert "no profile named 'p1-starter-bb'" in message
    assert hint.startswith("did you mean 'p1-starter-b'?")


def test_the_file_name_must_match_the_program_name(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ProgramError) as caught:
        load_program(path)
    [issue] = caught.value.issues
    assert (issue.file, issue.field) == (str(path), "name")
    assert "rename the file to good.toml" in issue.hint


@pytest.mark.parametrize(
    ("change", "field", "expected_hint"),
    [
        # A stage in the middle that can never be left.
        (
            (
                "[stages.advance]\nsessions = 8\nwithin_days = 14\nmax_effort = 5\nmax_pain = 2\n",
                "",
            ),
            "stages[0].advance",
            "add [stages.advance]",
        ),
        # Eight sessions at two a week take four weeks; a 14-day window never holds them.
        (
            ("sessions_per_week = 4\n[stages.advance]", "sessions_per_week = 2\n[stages.advance]"),
            "stages[0].advance.within_days",
            "set within_days to at least 28",
        ),
        # Pain 2 would count towards advancing and step back at once.
        (
            ("pain_above = 4\n\n", "pain_above = 1\n\n"),
            "stages[0].step_back.pain_above",
            "set pain_above to at least 2",
        ),
    ],
)
def test_rules_that_cannot_work_are_refused_naming_the_field_to_fix(
    change: tuple[str, str], field: str, expected_hint: str
) -> None:
    old, new = change
    assert old in GOOD
    [(_, found_field, _, hint)] = problems(GOOD.replace(old, new, 1))
    assert found_field == field
    assert expected_hint in hint


def test_the_last_stage_has_nothing_to_advance_to() -> None:
    text = GOOD + "[stages.advance]\nsessions = 4\nwithin_days = 7\nmax_effort = 5\nmax_pain = 2\n"
    [(_, field, message, hint)] = problems(text)
    assert field == "stages[1].advance"
    assert "no next stage" in message
    assert "remove [stages.advance] from the last stage" in hint


def test_the_builtin_programs_load_cite_sources_and_follow_the_seed() -> None:
    library = builtin_programs()
    assert library.issues == ()
    assert set(library.names()) == {
        "retro-starter",
        "clinical-knee-oa",
        "clinical-neuro-gait",
        "clinical-post-op-knee",
    }
    starter = library.get("retro-starter")
    assert [stage.profile for stage in starter.stages] == [
        "p1-starter-a",
        "p1-starter-b",
        "p1-starter-c",
        "p2-retro-core",
        "p6-backward-jog",
    ]
    # The article: the routine four days a week, jogging about three times a week.
    assert [stage.sessions_per_week for stage in starter.stages] == [4, 4, 4, 4, 3]
    assert not starter.clinical
    clinical = {
        name: [stage.profile for stage in library.get(name).stages]
        for name in library.names()
        if library.get(name).clinical
    }
    assert clinical == {
        "clinical-knee-oa": ["p3-knee-oa", "p2-retro-core"],
        "clinical-neuro-gait": ["p4-neuro-gait"],
        "clinical-post-op-knee": ["p7-post-op-knee", "p2-retro-core"],
    }
    for name in library.names():
        assert library.get(name).sources


def test_the_builtin_programs_live_beside_the_builtin_profiles() -> None:
    assert builtin_programs_dir() == Path(__file__).resolve().parents[2] / "profiles" / "programs"


def test_an_unknown_program_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProgramError, match="known programs: clinical-knee-oa"):
        builtin_programs().get("nope")


MY_PROFILE = """
name = "my-walk"
title = "Mine"
description = "A user profile"
suits = "tests"
sources = ["a source"]
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 3.0
[[segments]]
direction = "backward"
duration_s = 30
speed_kmh = 2.0
"""


def test_a_program_leaves_with_its_profile_at_reload_and_returns_with_it(tmp_path: Path) -> None:
    profiles_dir = tmp_path / "profiles"
    programs_dir = tmp_path / "programs"
    profiles_dir.mkdir()
    programs_dir.mkdir()
    (profiles_dir / "my-walk.toml").write_text(MY_PROFILE, encoding="utf-8")
    (programs_dir / "mine.toml").write_text(
        GOOD.replace('name = "good"', 'name = "mine"').replace('"p1-starter-b"', '"my-walk"'),
        encoding="utf-8",
    )
    profiles = ProfileLibrary([profiles_dir])
    programs = ProgramLibrary(profiles, [programs_dir])
    assert "mine" in programs.names()

    (profiles_dir / "my-walk.toml").unlink()
    profiles.reload()
    report = programs.on_profiles_reloaded()
    assert report.removed == ("mine",)
    [issue] = report.problems
    assert (issue.file, issue.field) == (str(programs_dir / "mine.toml"), "stages[1].profile")
    with pytest.raises(UnknownProgramError):
        programs.get("mine")

    (profiles_dir / "my-walk.toml").write_text(MY_PROFILE, encoding="utf-8")
    profiles.reload()
    assert programs.on_profiles_reloaded().added == ("mine",)
