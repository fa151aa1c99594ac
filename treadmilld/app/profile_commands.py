"""`treadmilld profiles list | show NAME|FILE | check PATH...`: the text the CLI prints.

Plain functions writing to `out`, each returning the process exit code; `profiles_command`
wires them to argparse. What they render comes from the engine (the library, the one profile
check `check_profile_file`, the planner, the calorie model); only the text is made here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from treadmilld.app.settings import load_settings
from treadmilld.engine.api import ProfileIssue
from treadmilld.engine.calories import check_body_weight, plan_kcal
from treadmilld.engine.library import ProfileLibrary, UnknownProfileError, check_profile_file
from treadmilld.engine.limits import SafetyLimits, effective_limits
from treadmilld.engine.planner import SegmentKind, plan_workout
from treadmilld.engine.profile import Profile, ProfileError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60:d}:{whole % 60:02d}"


def list_profiles(out: TextIO, library: ProfileLibrary) -> int:
    summaries = library.summaries()
    width = max((len(s.name) for s in summaries), default=4)
    out.write(f"{'NAME':<{width}}  {'TOTAL':>6}  {'BACK':>6}  CLINICAL  TITLE\n")
    for summary in summaries:
        out.write(
            f"{summary.name:<{width}}  {_clock(summary.total_s):>6}  "
            f"{_clock(summary.backward_s):>6}  {'yes' if summary.clinical else 'no':<8}  "
            f"{summary.title}\n"
        )
    for issue in library.issues:
        out.write(f"skipped invalid profile: {issue}\n")
    return EXIT_OK


def show_profile(
    out: TextIO,
    library: ProfileLibrary,
    name: str,
    body_weight_kg: float,
    limits: SafetyLimits,
) -> int:
    """Show the profile called `name` in `library`, or the profile file `name` (a path
    ending in .toml, or any path that names a file)."""
    check_body_weight(body_weight_kg)  # before anything is printed
    profile: Profile
    if _names_a_file(name):
        try:
            profile = check_profile_file(Path(name), limits)
        except ProfileError as error:
            _write_issues(out, error.issues)
            return EXIT_INVALID
    else:
        try:
            profile = library.get(name)
        except UnknownProfileError as error:
            out.write(f"error: {error}\n")
            return EXIT_UNKNOWN
    plan = plan_workout(
        profile, effective_limits(limits, clinical=profile.clinical, profile=profile.limits)
    )
    out.write(f"{profile.title}  [{profile.name}]\n\n{profile.description.strip()}\n\n")
    out.write(f"Suits: {profile.suits}\n")
    if profile.sessions_per_week is not None:
        out.write(f"Sessions per week: {profile.sessions_per_week}\n")
    mode = "clinical (turns wait for a confirm)" if plan.clinical else "general"
    out.write(f"Limits: {mode}; turn pause {plan.limits.turn_pause_s:g} s; ramp ")
    out.write(
        f"{plan.limits.ramp_rate_kmh_per_s:g} km/h per s; backward max "
        f"{plan.limits.max_backward_speed_kmh:g} km/h and "
        f"{plan.limits.max_backward_incline_pct:g} %\n"
    )
    out.write("Sources:\n")
    for source in profile.sources:
        out.write(f"  - {source}\n")
    out.write("\n  #  START   KIND  DIRECTION  DURATION  SPEED km/h  INCLINE %  CUE\n")
    for segment in plan.segments:
        speed = f"{segment.speed_kmh:.1f}" if segment.kind is SegmentKind.WALK else "paused"
        direction = segment.direction.value
        if segment.kind is SegmentKind.TURN:
            direction = f"-> {direction}"
            if segment.awaits_confirmation:
                speed = "confirm"
        out.write(
            f"{segment.index:>3}  {_clock(segment.start_s):>5}  {segment.kind.value:<4}  "
            f"{direction:<10} {segment.duration_s:>7.0f}s  {speed:>10}  "
            f"{segment.incline_pct:>9.1f}  {segment.cue or ''}\n"
        )
    kcal = plan_kcal(plan, body_weight_kg)
    out.write(
        f"\nTotal {_clock(plan.total_s)} (forward {_clock(plan.forward_s)}, backward "
        f"{_clock(plan.backward_s)}, {plan.turn_count} turns)\n"
        f"Estimated energy for {body_weight_kg:g} kg: {kcal:.0f} kcal (+-25-30 %)\n"
    )
    if plan.adjustments:
        out.write("\nChanged to keep the limits:\n")
        for adjustment in plan.adjustments:
            out.write(
                f"  {adjustment.origin}: {adjustment.limit} {adjustment.requested:g} -> "
                f"{adjustment.applied:g}\n"
            )
    return EXIT_OK


def _names_a_file(name: str) -> bool:
    # A profile's name is lowercase letters, digits and dashes: anything with a suffix or a
    # slash is meant as a path (and a missing file should say so, not "no profile named").
    return name.endswith(".toml") or "/" in name or os.sep in name or Path(name).is_file()


def _write_issues(out: TextIO, issues: Sequence[ProfileIssue]) -> None:
    for issue in issues:
        out.write(
            f"error   {issue.file}: {issue.field}: {issue.message}\n        hint: {issue.hint}\n"
        )


def _profile_files(paths: Sequence[Path]) -> tuple[list[Path], list[ProfileIssue]]:
    files: list[Path] = []
    missing: list[ProfileIssue] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                missing.append(
                    ProfileIssue(str(path), "(file)", "no *.toml files here", "check the path")
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(
                ProfileIssue(str(path), "(file)", "no such file or directory", "check the path")
            )
    return files, missing


def check_profiles(out: TextIO, paths: Sequence[Path]) -> int:
    """Validate profile files (or directories of them); report every problem; non-zero when
    any file is invalid."""
    files, issues = _profile_files(paths)
    seen: dict[str, Path] = {}
    for path in files:
        try:
            profile = check_profile_file(path)
        except ProfileError as error:
            issues.extend(error.issues)
            continue
        if profile.name in seen:
            issues.append(
                ProfileIssue(
                    str(path),
                    "name",
                    f"name {profile.name!r} is also used by {seen[profile.name]}",
                    "give each profile a unique name",
                )
            )
            continue
        seen[profile.name] = path
        out.write(f"ok      {path}  ({profile.name}: {profile.title})\n")
    _write_issues(out, issues)
    bad_files = len({issue.file for issue in issues})
    out.write(f"{len(seen)} valid, {bad_files} invalid ({len(issues)} problem(s))\n")
    return EXIT_INVALID if issues else EXIT_OK


def profiles_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The profile commands, with the limits and profile directory of `--config` when one is
    given (built-in profiles and default limits otherwise)."""
    # Lazily: the assembly pulls in the BLE and MQTT layers, which the text functions above
    # (and the tests that call them) never need.
    from treadmilld.app.assembly import profile_library  # noqa: PLC0415

    stream = sys.stdout if out is None else out
    config: Path | None = getattr(args, "config", None)
    settings = load_settings(config)[0] if config is not None else None
    library = profile_library(settings)
    limits = settings.limits if settings is not None else SafetyLimits()
    if args.profiles_command == "list":
        return list_profiles(stream, library)
    if args.profiles_command == "show":
        return show_profile(stream, library, args.name, args.weight, limits)
    return check_profiles(stream, args.paths)
