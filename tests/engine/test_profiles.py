"""The profile format, its error reporting, and the built-in library."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadmilld.engine.api import Direction, ProfileCatalog
from treadmilld.engine.library import ProfileLibrary, UnknownProfileError, builtin_profiles_dir
from treadmilld.engine.profile import ProfileError, load_profile, parse_profile

REPO_PROFILES = Path(__file__).resolve().parents[2] / "profiles"
BUILTIN = {
    "p1-starter-a",
    "p1-starter-b",
    "p1-starter-c",
    "p2-retro-core",
    "p3-knee-oa",
    "p4-neuro-gait",
    "p5-uphill-retro",
    "p6-backward-jog",
    "p7-post-op-knee",
    "forward-walk",
}

GOOD = """
name = "good"
title = "Good"
description = "A valid profile"
suits = "tests"
sources = ["a source"]
[[segments]]
direction = "forward"
duration_s = 60
speed_kmh = 3.0
[[segments]]
repeat = 2
  [[segments.segments]]
  direction = "backward"
  duration_s = 20
  speed_kmh = 2.0
  [[segments.segments]]
  direction = "rest"
  duration_s = 10
"""


def test_the_library_holds_p1_to_p7_and_a_forward_walk() -> None:
    library = ProfileLibrary()
    assert set(library.names()) == BUILTIN
    assert library.issues == ()
    assert isinstance(library, ProfileCatalog)


def test_every_builtin_profile_cites_its_sources_and_walks_backward_where_it_should() -> None:
    library = ProfileLibrary()
    for name in BUILTIN:
        profile = library.get(name)
        assert profile.sources, name
        text = (REPO_PROFILES / f"{name}.toml").read_text()
        assert "sources" in text
        directions = {f.segment.direction for f in profile.flat_segments()}
        assert (Direction.BACKWARD in directions) == (name != "forward-walk"), name


def test_clinical_profiles_are_marked() -> None:
    library = ProfileLibrary()
    clinical = {s.name for s in library.summaries() if s.clinical}
    assert clinical == {"p4-neuro-gait", "p7-post-op-knee"}


def test_summaries_carry_planned_totals() -> None:
    summary = ProfileLibrary().summary("p2-retro-core")
    assert summary.backward_s == 540.0  # 3 x 180 s backward
    assert summary.total_s == 1020.0
    assert summary.sessions_per_week == 4


def test_builtin_profiles_come_from_the_checkout() -> None:
    assert builtin_profiles_dir() == REPO_PROFILES


def test_repeat_blocks_unroll_in_order() -> None:
    profile = parse_profile(GOOD, file="good.toml")
    flat = profile.flat_segments()
    assert [f.segment.direction for f in flat] == [
        Direction.FORWARD,
        Direction.BACKWARD,
        Direction.REST,
        Direction.BACKWARD,
        Direction.REST,
    ]
    assert flat[3].origin == "segments[1] (repeat 2/2) > segments[0]"


def test_every_error_of_a_file_is_reported_with_field_and_hint() -> None:
    bad = """
name = "Bad Name"
title = "Bad"
description = "d"
suits = "s"
sources = []
colour = "red"
[[segments]]
direction = "sideways"
duration_s = 10
speed_kmh = 3
[[segments]]
repeat = 0
  [[segments.segments]]
  direction = "backward"
  duration_s = -5
  speedkmh = 2
  [[segments.segments]]
  direction = "rest"
  duration_s = 10
  speed_kmh = 2
"""
    with pytest.raises(ProfileError) as raised:
        parse_profile(bad, file="bad.toml")
    issues = {issue.field: issue for issue in raised.value.issues}
    assert set(issues) >= {
        "name",
        "sources",
        "colour",
        "segments[0].direction",
        "segments[1].repeat",
        "segments[1].segments[0].duration_s",
        "segments[1].segments[0].speedkmh",
        "segments[1].segments[1]",
    }
    assert all(issue.file == "bad.toml" for issue in raised.value.issues)
    assert "speed_kmh" in issues["segments[1].segments[0].speedkmh"].hint
    assert "forward" in issues["segments[0].direction"].hint
    assert "rest" in issues["segments[1].segments[1]"].message
    assert "bad.toml" in str(raised.value)


def test_a_toml_syntax_error_names_the_file_and_place() -> None:
    with pytest.raises(ProfileError) as raised:
        parse_profile('name = "x"\nduration_s = = 3\n', file="broken.toml")
    (issue,) = raised.value.issues
    assert issue.field == "(toml)"
    assert "line 2" in issue.message


def test_the_file_name_must_match_the_profile_name(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(GOOD)
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    assert raised.value.issues[0].field == "name"
    assert "good.toml" in raised.value.issues[0].hint


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ('direction = "backward"\nduration_s = 10\nspeed_kmh = 9', "hard cap"),
        ('direction = "backward"\nduration_s = 10\nspeed_kmh = 2\nincline_pct = 16', "hard cap"),
        ('direction = "forward"\nduration_s = 10', "speed_kmh above 0"),
        ('direction = "forward"\nduration_s = 10\nspeed_kmh = 2\nramp = {}', "to_speed_kmh"),
    ],
)
def test_unsafe_or_empty_segments_are_refused(segment: str, expected: str) -> None:
    text = GOOD.split("[[segments]]", maxsplit=1)[0] + "[[segments]]\n" + segment + "\n"
    with pytest.raises(ProfileError) as raised:
        parse_profile(text, file="x.toml")
    assert expected in str(raised.value)


def test_a_profile_that_only_rests_is_refused() -> None:
    header = GOOD.split("[[segments]]", maxsplit=1)[0]
    text = header + '[[segments]]\ndirection = "rest"\nduration_s = 10\n'
    with pytest.raises(ProfileError, match="only rests"):
        parse_profile(text, file="x.toml")


def test_user_dirs_add_and_override_and_invalid_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "forward-walk.toml").write_text(GOOD.replace('"good"', '"forward-walk"'))
    (tmp_path / "broken.toml").write_text("name = ")
    library = ProfileLibrary([tmp_path])
    assert "good" in library.names()
    assert library.get("forward-walk").title == "Good"  # the user's copy wins
    assert "broken" not in library.names()
    assert [issue.file for issue in library.issues] == [str(tmp_path / "broken.toml")]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProfileError, match="p2-retro-core"):
        ProfileLibrary().get("p9")
