"""`treadmilld riders ...`: riders, feedback, a therapist's confirm or decline and progress from
the command line, on the database of the configuration (`[database]`, docs/database.md), with
program weeks in `[programs] time_zone`. The rider service decides; this module parses, calls
it once and renders the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    # The parser is built for every `treadmilld` command: what the actions need is imported
    # when one runs, so `treadmilld --help` stays fast on a Pi.
    from treadmilld.history.riders import Rider
    from treadmilld.programs import Progress
    from treadmilld.riders.api import FeedbackResult

EXIT_OK = 0
EXIT_REFUSED = 1  # the service refused (unknown rider, looser limits, ...): nothing changed
EXIT_USAGE = 2  # a value the rider fields do not take


def limit_assignment(text: str) -> tuple[str, Any]:
    """`--limit NAME=VALUE`: one personal limit (`max_backward_speed_kmh=2.0`,
    `confirm_turns=true`)."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give NAME=VALUE, e.g. max_backward_speed_kmh=2.0"
        )
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return name.strip(), lowered == "true"
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value must be a number (or true/false for confirm_turns)"
        ) from None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`treadmilld riders ...` and its actions."""
    riders = commands.add_parser(
        "riders",
        help="riders, feedback, a therapist's confirm or decline and progress (the database)",
    )
    actions = riders.add_subparsers(dest="riders_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument(
            "--config",
            type=Path,
            default=None,
            metavar="PATH",
            help="TOML configuration (default: $TREADMILLD_CONFIG or "
            "/etc/treadmilld/config.toml); its [database] is used",
        )
        return sub

    def rider_fields(sub: argparse.ArgumentParser, *, new: bool) -> None:
        sub.add_argument(
            "--name", required=new, help="display name (shown on dashboards' replies only)"
        )
        sub.add_argument("--weight", type=float, required=new, metavar="KG", help="body weight")
        sub.add_argument(
            "--max-hr", type=int, default=None, metavar="BPM", help="maximum heart rate"
        )
        sub.add_argument(
            "--limit",
            type=limit_assignment,
            action="append",
            default=None,
            metavar="NAME=VALUE",
            help="a personal limit, e.g. max_backward_speed_kmh=2.0 (repeatable); never looser "
            "than the configured limits",
        )
        strap = sub.add_mutually_exclusive_group()
        strap.add_argument(
            "--strap-address",
            default=None,
            metavar="AA:BB:CC:DD:EE:FF",
            help="the heart-rate strap the rider wears, connected for their workouts "
            "(`treadmilld scan` lists straps)",
        )
        strap.add_argument(
            "--strap-name",
            default=None,
            metavar="TEXT",
            help="the rider's strap, by a part of its advertised name, e.g. 'H10 4A3B2C'",
        )
        if not new:
            strap.add_argument(
                "--no-strap", action="store_true", help="forget the rider's own strap"
            )

    add = action("add", "add a rider")
    add.add_argument("rider_id", metavar="ID", help="pseudonymous id, e.g. r-17 (never a name)")
    rider_fields(add, new=True)
    add.add_argument("--clinical", action="store_true", help="clinical limits apply")
    add.add_argument("--program", default=None, help="the program to follow, e.g. retro-starter")

    action("list", "every rider")
    show = action("show", "one rider")
    show.add_argument("rider_id", metavar="ID")

    change = action("set", "change a rider (only the options given)")
    change.add_argument("rider_id", metavar="ID")
    rider_fields(change, new=False)
    change.add_argument("--no-max-hr", action="store_true", help="forget the maximum heart rate")
    change.add_argument(
        "--clinical", action=argparse.BooleanOptionalAction, default=None, help="clinical or not"
    )
    change.add_argument("--no-limits", action="store_true", help="clear the personal limits")
    program = change.add_mutually_exclusive_group()
    program.add_argument("--program", default=None, help="begin this program at its first stage")
    program.add_argument("--no-program", action="store_true", help="follow no program")

    delete = action("delete", "delete a rider and all their history")
    delete.add_argument("rider_id", metavar="ID")
    export = action("export", "everything stored about a rider, as JSON")
    export.add_argument("rider_id", metavar="ID")
    export.add_argument("-o", "--output", type=Path, default=None, metavar="FILE")

    feedback = action("feedback", "effort and pain after a workout; prints the next session")
    feedback.add_argument("workout_id", metavar="WORKOUT_ID")
    feedback.add_argument("--effort", type=int, required=True, metavar="0-10")
    feedback.add_argument("--pain", type=int, required=True, metavar="0-10")

    confirm = action("confirm", "a therapist confirms the advance a clinical program waits for")
    confirm.add_argument("rider_id", metavar="ID")
    confirm.add_argument("--therapist", required=True, metavar="NAME")
    decline = action(
        "decline",
        "a therapist declines that advance: the rider stays, the stage counts again from now",
    )
    decline.add_argument("rider_id", metavar="ID")
    decline.add_argument("--therapist", required=True, metavar="NAME")

    progress = action("progress", "a rider's progress in their program")
    progress.add_argument("rider_id", metavar="ID")


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if args.name is not None:
        values["display_name"] = args.name
    if args.weight is not None:
        values["body_weight_kg"] = args.weight
    if args.max_hr is not None:
        values["max_heart_rate_bpm"] = args.max_hr
    if getattr(args, "no_max_hr", False):
        values["max_heart_rate_bpm"] = None
    if args.limit:
        values["limits"] = dict(args.limit)
    if getattr(args, "no_limits", False):
        values["limits"] = None
    if args.clinical is not None:
        values["clinical"] = args.clinical
    if args.program is not None:
        values["program"] = args.program
    if getattr(args, "no_program", False):
        values["program"] = None
    if args.strap_address is not None:
        values["heart_rate_strap"] = {"address": args.strap_address}
    if args.strap_name is not None:
        values["heart_rate_strap"] = {"name_match": args.strap_name}
    if getattr(args, "no_strap", False):
        values["heart_rate_strap"] = None
    return values


def _rider_text(rider: Rider) -> str:
    limits = rider.limits.model_dump(exclude_none=True) if rider.limits else {}
    stage = rider.program_state.get("stage") if rider.program_state else None
    lines = [
        f"{rider.rider_id}  {rider.display_name}",
        f"  body weight   {rider.body_weight_kg:g} kg",
        f"  max HR        {rider.max_heart_rate_bpm or '-'}",
        f"  clinical      {'yes' if rider.clinical else 'no'}",
        f"  HR strap      {rider.heart_rate_strap.describe() if rider.heart_rate_strap else '-'}",
        "  limits        "
        + (", ".join(f"{name}={value}" for name, value in limits.items()) or "the configured ones"),
        f"  program       {rider.program_name or '-'}"
        # Stages counted from 1 for people (MQTT's `stage` counts from 0).
        + (f" (stage {stage + 1})" if stage is not None else ""),
    ]
    return "\n".join(lines) + "\n"


def _progress_text(rider_id: str, progress: Progress | None) -> str:
    if progress is None:
        return f"{rider_id} follows no program\n"
    lines = [
        f"{rider_id}  {progress.program}: stage {progress.stage + 1} of {progress.stages}",
        f"  next profile       {progress.next_profile}",
        f"  this week          {progress.sessions_this_week} of {progress.weekly_target} sessions",
        f"  streak             {progress.streak_weeks} weeks",
    ]
    if progress.awaiting_confirm:
        lines.append(
            "  awaiting           a therapist's answer (treadmilld riders confirm or decline)"
        )
    last = progress.last_workout
    if last is not None:
        distance = (last.distance_forward_m or 0.0) + (last.distance_backward_m or 0.0)
        lines.append(
            f"  last workout       {last.workout_id} {last.profile} {last.outcome.value}, "
            f"{distance:.0f} m"
        )
    return "\n".join(lines) + "\n"


def _feedback_text(result: FeedbackResult) -> str:
    from treadmilld.riders.api import next_session_json  # noqa: PLC0415

    if result.decision is None:
        return f"feedback kept for {result.workout_id}; {result.rider_id} follows no program\n"
    session = next_session_json(result.next_session) or {}
    return (
        f"{result.decision.value}: {result.reason}\n"
        f"next session: {session.get('profile')} (stage {session.get('stage')}, "
        f"session {session.get('session_number')})\n"
    )


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    # Imported here: SQLAlchemy and the assembly only for the riders commands.
    from treadmilld.app.assembly import profile_library  # noqa: PLC0415
    from treadmilld.app.settings import load_settings  # noqa: PLC0415
    from treadmilld.programs import ProgramLibrary  # noqa: PLC0415
    from treadmilld.riders.api import RiderChanges, RiderFields  # noqa: PLC0415
    from treadmilld.riders.service import RiderService, clock_in  # noqa: PLC0415
    from treadmilld.store.api import database_url, open_store  # noqa: PLC0415

    settings = load_settings(args.config)[0]
    profiles = profile_library(settings)
    async with await open_store(database_url(settings.database)) as store:
        service = RiderService(
            store,
            ProgramLibrary(profiles),
            profiles,
            settings.limits,
            now=clock_in(settings.programs.zone()),
        )
        match args.riders_command:
            case "add":
                fields = {
                    "rider_id": args.rider_id,
                    "clinical": args.clinical,
                    **{k: v for k, v in _changes(args).items() if k != "clinical"},
                }
                rider = await service.create(RiderFields.model_validate(fields))
                out.write(_rider_text(rider))
            case "list":
                for rider in await service.list_riders():
                    out.write(
                        f"{rider.rider_id}\t{rider.display_name}\t{rider.program_name or '-'}\n"
                    )
            case "show":
                out.write(_rider_text(await service.get(args.rider_id)))
            case "set":
                changes = RiderChanges.model_validate(_changes(args))
                out.write(_rider_text(await service.update(args.rider_id, changes)))
            case "delete":
                workouts = await service.delete(args.rider_id)
                out.write(f"deleted {args.rider_id} and {workouts} workouts\n")
            case "export":
                text = json.dumps(await service.export(args.rider_id), indent=2) + "\n"
                if args.output is None:
                    out.write(text)
                else:
                    args.output.write_text(text, encoding="utf-8")
                    out.write(f"wrote {args.output}\n")
            case "feedback":
                result = await service.feedback(args.workout_id, effort=args.effort, pain=args.pain)
                out.write(_feedback_text(result))
            case "confirm" | "decline":
                answer = service.confirm if args.riders_command == "confirm" else service.decline
                answered = await answer(args.rider_id, therapist=args.therapist)
                out.write(_progress_text(args.rider_id, answered))
            case _:  # "progress"
                out.write(_progress_text(args.rider_id, await service.progress(args.rider_id)))
    return EXIT_OK


def riders_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    from pydantic import ValidationError  # noqa: PLC0415

    from treadmilld.mqtt.payloads import describe_validation_error  # noqa: PLC0415
    from treadmilld.riders.api import RiderError  # noqa: PLC0415

    stream = sys.stdout if out is None else out
    errors = sys.stderr if err is None else err
    try:
        return asyncio.run(_run(args, stream))
    except RiderError as error:
        errors.write(f"treadmilld: {error.message} ({error.code})\n")
        return EXIT_REFUSED
    except ValidationError as error:
        errors.write(f"treadmilld: {describe_validation_error(error)}\n")
        return EXIT_USAGE
