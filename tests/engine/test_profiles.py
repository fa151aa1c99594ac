"""The profile format, its error reporting, and the built-in library."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import structlog.testing

from treadmilld.app.profile_commands import check_profiles
from treadmilld.engine.api import Direction, ProfileCatalog
from treadmilld.engine.library import ProfileLibrary, UnknownProfileError, builtin_profiles_dir
from treadmilld.engine.profile import (
    MAX_EXPANDED_S,
    MAX_EXPANDED_SEGMENTS,
    ProfileError,
    load_profile,
    parse_profile,
)

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
    "hr-zone-retro",
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


def test_the_library_holds_p1_to_p7_a_forward_walk_and_a_heart_rate_zone_walk() -> None:
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


def nested_repeats(counts: list[int], *segments: str, warm_up: bool = True) -> str:
    """A profile named "good": optionally a 60-s forward warm-up, then repeat blocks nested one
    in the other (one per count) around `segments`, the TOML bodies of the innermost ones."""
    text = GOOD.split("[[segments]]", maxsplit=1)[0]
    if warm_up:
        text += '[[segments]]\ndirection = "forward"\nduration_s = 60\nspeed_kmh = 3.0\n'
    table = "segments"
    for count in counts:
        text += f"[[{table}]]\nrepeat = {count}\n"
        table += ".segments"
    return text + "".join(f"[[{table}]]\n{body}\n" for body in segments)


BACKWARD_10S = 'direction = "backward"\nduration_s = 10\nspeed_kmh = 2.0'
FORWARD_3S5 = 'direction = "forward"\nduration_s = 3.5\nspeed_kmh = 3.0'
REST_3S5 = 'direction = "rest"\nduration_s = 3.5'
FORWARD_1H = 'direction = "forward"\nduration_s = 3600\nspeed_kmh = 3.0'


def test_nested_repeats_that_unroll_past_the_limits_are_refused_naming_the_block(
    tmp_path: Path,
) -> None:
    # 100 x 100 x 100 would unroll to a million segments (seconds of CPU); the repeat counts
    # alone refuse it.
    with pytest.raises(ProfileError) as raised:
        parse_profile(nested_repeats([100, 100, 100], BACKWARD_10S), file="hostile.toml")
    count, time = raised.value.issues
    assert (count.file, count.field) == ("hostile.toml", "segments[1].repeat")
    assert "would unroll to 1,000,001 segments" in count.message  # the whole profile
    assert "this repeat block unrolls to 1,000,000 of them" in count.message
    assert "(repeat 100 x 10,000 segments)" in count.message
    assert f"more than the {MAX_EXPANDED_SEGMENTS:,} a profile may have" in count.message
    assert "lower `repeat` here or in the repeat blocks nested in it" in count.hint
    assert (time.file, time.field) == ("hostile.toml", "segments[1].repeat")
    # 60 s + 1,000,000 x 10 s, as h:mm:ss, against the 4 h limit.
    assert "would last 2777:47:40, more than the 4:00:00 (h:mm:ss)" in time.message

    # The same file in a profile directory is skipped by the library and failed by `check`.
    path = tmp_path / "good.toml"
    path.write_text(nested_repeats([100, 100, 100], BACKWARD_10S))
    library = ProfileLibrary([tmp_path], include_builtin=False)
    assert library.names() == []
    assert {(i.file, i.field) for i in library.issues} == {(str(path), "segments[1].repeat")}
    out = io.StringIO()
    assert check_profiles(out, [path]) != 0
    assert f"error   {path}: segments[1].repeat: the profile would unroll to 1,000,001" in (
        out.getvalue()
    )


def test_a_profile_at_the_segment_limit_loads_and_one_segment_more_is_refused() -> None:
    at_limit = parse_profile(
        nested_repeats([40, 25], FORWARD_3S5, REST_3S5, warm_up=False), file="good.toml"
    )
    assert len(at_limit.flat_segments()) == MAX_EXPANDED_SEGMENTS
    assert at_limit.expansion().segments == MAX_EXPANDED_SEGMENTS

    with pytest.raises(ProfileError) as raised:
        parse_profile(nested_repeats([40, 25], FORWARD_3S5, REST_3S5), file="good.toml")
    (issue,) = raised.value.issues
    assert issue.field == "segments[1].repeat"
    assert "would unroll to 2,001 segments" in issue.message


def test_a_profile_at_the_time_limit_loads_and_a_minute_more_is_refused() -> None:
    at_limit = parse_profile(nested_repeats([4], FORWARD_1H, warm_up=False), file="good.toml")
    assert at_limit.expansion().seconds == MAX_EXPANDED_S

    with pytest.raises(ProfileError) as raised:
        parse_profile(nested_repeats([4], FORWARD_1H), file="good.toml")
    (issue,) = raised.value.issues
    assert issue.field == "segments[1].repeat"
    assert "would last 4:01:00, more than the 4:00:00 (h:mm:ss)" in issue.message
    assert "lasts 4:00:00 of it (repeat 4 x 1:00:00)" in issue.message


def test_plain_segments_past_the_limits_are_refused_where_they_cross_them() -> None:
    with pytest.raises(ProfileError) as raised:
        parse_profile(nested_repeats([], *[FORWARD_1H] * 4), file="good.toml")
    (issue,) = raised.value.issues
    # The warm-up is segments[0]; the fourth hour after it crosses 4 h.
    assert issue.field == "segments[4].duration_s"
    assert "would last 4:01:00" in issue.message

    with pytest.raises(ProfileError) as raised:
        parse_profile(nested_repeats([], *[FORWARD_3S5] * 2000), file="good.toml")
    (issue,) = raised.value.issues
    assert issue.field == "segments"
    assert "would unroll to 2,001 segments" in issue.message
    assert "write fewer segments" in issue.hint


def test_every_builtin_profile_is_far_under_the_expansion_limits() -> None:
    library = ProfileLibrary()
    for name in BUILTIN:
        profile = library.get(name)
        expansion = profile.expansion()
        flat = profile.flat_segments()
        # The arithmetic agrees with actually unrolling it.
        assert expansion.segments == len(flat), name
        assert expansion.seconds == pytest.approx(sum(f.segment.duration_s for f in flat)), name
        assert expansion.segments * 50 <= MAX_EXPANDED_SEGMENTS, name
        assert expansion.seconds * 5 <= MAX_EXPANDED_S, name


def test_reload_reports_added_changed_and_removed_profiles(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    library = ProfileLibrary([tmp_path])
    assert not library.files_changed()
    (tmp_path / "other.toml").write_text(GOOD.replace('"good"', '"other"'))
    (tmp_path / "good.toml").write_text(GOOD.replace('title = "Good"', 'title = "Better"'))
    assert library.files_changed()
    report = library.reload()
    assert (report.added, report.changed, report.removed) == (("other",), ("good",), ())
    assert library.get("good").title == "Better"
    assert not library.files_changed()
    (tmp_path / "other.toml").unlink()
    report = library.reload()
    assert report.removed == ("other",)
    assert "other" not in library.names()


def test_a_file_broken_after_loading_keeps_its_last_good_version(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    library = ProfileLibrary([tmp_path])
    (tmp_path / "good.toml").write_text(GOOD.replace("speed_kmh = 3.0", "speed_kmh = -3"))
    report = library.reload()
    assert report.kept == ("good",)
    assert not report.list_changed
    (problem,) = report.problems
    assert (problem.file, problem.field) == (str(tmp_path / "good.toml"), "segments[0].speed_kmh")
    assert library.get("good").title == "Good"
    # A file that was never valid is not served at all.
    (tmp_path / "new.toml").write_text("name = ")
    report = library.reload()
    assert "new" not in report.profiles
    assert {p.file for p in report.problems} == {
        str(tmp_path / "good.toml"),
        str(tmp_path / "new.toml"),
    }


def test_each_problem_of_a_bad_file_is_logged_with_field_and_hint(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        'name = "bad"\ntitle = "B"\ndescription = "d"\nsuits = "s"\nsources = ["x"]\n'
        '[[segments]]\ndirection = "backwards"\nduration_s = 0\nspeed_kmh = 2\n'
    )
    with structlog.testing.capture_logs() as logs:
        ProfileLibrary([tmp_path])
    invalid = [entry for entry in logs if entry["event"] == "profile_invalid"]
    assert {entry["field"] for entry in invalid} == {
        "segments[0].direction",
        "segments[0].duration_s",
    }
    assert all(entry["file"] == str(tmp_path / "bad.toml") for entry in invalid)
    assert all(entry["hint"] for entry in invalid)
