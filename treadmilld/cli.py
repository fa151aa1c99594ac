"""The `treadmilld` command line (also `python -m treadmilld`).

Exit codes: 0 success (also a clean stop on SIGTERM, SIGINT or SIGHUP once running), 1 a
failure while running, 2 a configuration or usage error (systemd's RestartPreventExitStatus=2
keeps a broken config from restarting in a loop), 130 Ctrl-C during start-up.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from treadmilld import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT (128 + 2)


def body_weight_kg(text: str) -> float:
    """`--weight`: kilograms, within what the calorie model takes (as `body_weight_kg`)."""
    from treadmilld.engine.api import MAX_BODY_WEIGHT_KG, MIN_BODY_WEIGHT_KG  # noqa: PLC0415

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; give the body weight in kilograms, e.g. 70"
        ) from None
    if not (math.isfinite(value) and MIN_BODY_WEIGHT_KG <= value <= MAX_BODY_WEIGHT_KG):
        raise argparse.ArgumentTypeError(
            f"{text} kg is outside {MIN_BODY_WEIGHT_KG:g}-{MAX_BODY_WEIGHT_KG:g} kg; give the "
            "body weight in kilograms, e.g. 70"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treadmilld",
        description="Reverse-walking interval profiles on Bluetooth FTMS treadmills, over MQTT.",
        epilog="Start with `treadmilld demo`: simulated treadmills, no hardware needed.",
    )
    parser.add_argument("--version", action="version", version=f"treadmilld {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            type=Path,
            default=None,
            metavar="PATH",
            help="TOML configuration (default: $TREADMILLD_CONFIG or /etc/treadmilld/config.toml)",
        )

    run = commands.add_parser("run", help="run the daemon (what systemd starts)")
    with_config(run)
    run.add_argument(
        "--trace",
        type=Path,
        default=None,
        metavar="FILE",
        help="record the GATT traffic of every treadmill link to FILE (JSON Lines, "
        "docs/capture.md; with several treadmills FILE gets each id: trace.tm01.jsonl)",
    )
    run.add_argument(
        "--trace-max-mb",
        type=float,
        default=16.0,
        metavar="MB",
        help="stop recording a trace at this size (16)",
    )

    demo = commands.add_parser(
        "demo", help="run a profile on simulated treadmills with an embedded MQTT broker"
    )
    demo.add_argument(
        "--treadmills", type=int, default=1, metavar="N", help="simulated treadmills (1)"
    )
    demo.add_argument(
        "--profile",
        default=None,
        help="built-in profile name, or a profile .toml file (default: p1-starter-a)",
    )
    demo.add_argument(
        "--speedup",
        type=float,
        default=None,
        metavar="X",
        help="profile time runs X times faster (default: the profile takes about a minute)",
    )
    demo.add_argument(
        "--broker", default=None, metavar="URL", help="use this broker (mqtt://host:1883)"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=None,
        metavar="N",
        help="port of the embedded broker (default: a free one); e.g. 1883 for a dashboard",
    )
    demo.add_argument(
        "--base-topic", default="treadmilld", help="MQTT base topic (default: treadmilld)"
    )
    demo.add_argument(
        "--weight", type=float, default=70.0, metavar="KG", help="body weight for calories"
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave treadmills and broker up after the profile, for a dashboard (Ctrl-C ends)",
    )
    demo.add_argument("--verbose", action="store_true", help="show the daemon's log lines")

    check = commands.add_parser(
        "check-config", help="validate the configuration and print it, secrets redacted"
    )
    with_config(check)

    scan = commands.add_parser(
        "scan", help="list FTMS treadmills and heart-rate straps nearby (one scan)"
    )
    scan.add_argument("--timeout", type=float, default=5.0, metavar="S", help="listen S seconds")
    scan.add_argument(
        "--sim",
        type=int,
        nargs="?",
        const=2,
        default=None,
        metavar="N",
        help="scan N simulated treadmills, each with its rider's heart-rate strap, instead of "
        "the radio (default 2)",
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="versions, Bluetooth adapter, config summary (addresses anonymised); with a "
        "treadmill: what it does, recorded to a trace",
        description="Without a treadmill: versions, Bluetooth and a config summary. With "
        "--treadmill, --address or --name: connect to that deck, read everything, subscribe to "
        "everything, record SECONDS of its traffic to a trace file (docs/capture.md) and print "
        "a summary. The belt is never started; nothing is written unless --control is given.",
    )
    with_config(diagnose)
    deck = diagnose.add_mutually_exclusive_group()
    deck.add_argument("--treadmill", metavar="ID", help="a treadmill of the configuration")
    deck.add_argument("--address", metavar="ADDR", help="the deck at this Bluetooth address")
    deck.add_argument("--name", metavar="TEXT", help="the first deck whose name contains TEXT")
    diagnose.add_argument(
        "--seconds", type=float, default=15.0, metavar="S", help="listen S seconds (15)"
    )
    diagnose.add_argument(
        "--trace",
        type=Path,
        default=None,
        metavar="FILE",
        help="trace file (default: treadmilld-diagnose-<time>.jsonl in this directory)",
    )
    diagnose.add_argument(
        "--control",
        action="store_true",
        help="also write Request Control (00) to see if and how the deck answers; "
        "nothing else is ever written",
    )

    profiles = commands.add_parser("profiles", help="list, show or check workout profiles")
    profile_commands = profiles.add_subparsers(dest="profiles_command", metavar="ACTION")
    listing = profile_commands.add_parser("list", help="the built-in profiles")
    with_config(listing)
    show = profile_commands.add_parser("show", help="a profile's timeline")
    show.add_argument(
        "name", metavar="NAME|FILE", help="a profile's name, or the path of a profile .toml file"
    )
    show.add_argument(
        "--weight", type=body_weight_kg, default=70.0, metavar="KG", help="body weight (70)"
    )
    with_config(show)
    check_profiles = profile_commands.add_parser("check", help="validate profile files")
    check_profiles.add_argument("paths", nargs="+", type=Path)

    from treadmilld.app.rider_commands import add_parser  # noqa: PLC0415

    add_parser(commands)
    _add_history(commands, with_config)
    return parser


def _add_history(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
) -> None:
    history = commands.add_parser(
        "history",
        help="recorded workouts: list, show, export (FIT, TCX, CSV), prune",
        description="Workouts the daemon recorded, from the database in [database] (SQLite "
        "in the state directory unless url is set); see docs/history.md.",
    )
    history_commands = history.add_subparsers(dest="history_command", metavar="ACTION")
    history_list = history_commands.add_parser("list", help="the newest workouts first")
    history_list.add_argument("--rider", metavar="ID", default=None, help="only this rider's")
    history_list.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N workouts (20)"
    )
    with_config(history_list)
    history_show = history_commands.add_parser(
        "show", help="a workout: summary, segments planned vs done, aborts"
    )
    history_show.add_argument("id", metavar="ID", help="a workout id (`history list` shows them)")
    with_config(history_show)
    history_export = history_commands.add_parser(
        "export", help="a workout as a FIT, TCX or CSV file"
    )
    history_export.add_argument("id", metavar="ID", help="a workout id")
    history_export.add_argument(
        "--format", choices=["fit", "tcx", "csv"], required=True, help="the file's format"
    )
    history_export.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="write to FILE (default: the id and the format's suffix, e.g. w-1a2b.fit)",
    )
    with_config(history_export)
    history_prune = history_commands.add_parser(
        "prune", help="delete workouts older than [database] retention_days, now"
    )
    with_config(history_prune)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    # Imported per command: `treadmilld --help` and `profiles list` stay fast on a Pi.
    from treadmilld.app.log_setup import LogFormat, LogLevel, configure_logging  # noqa: PLC0415
    from treadmilld.app.settings import ConfigError  # noqa: PLC0415

    # Quiet by default; `run` and `demo` configure logging from their own settings.
    configure_logging(LogFormat.AUTO, LogLevel.WARNING)
    handler = _COMMANDS[args.command]
    try:
        return handler(args)
    except ConfigError as error:
        sys.stderr.write(f"treadmilld: configuration error\n{error}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        # Ctrl-C before the supervisor took over signals (while connecting or setting up the
        # simulator): nothing was moving yet, and asyncio has already unwound the tasks.
        sys.stderr.write("treadmilld: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `treadmilld profiles show p1 | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


# Each command lives in its own module, imported only when used.


def _run(args: argparse.Namespace) -> int:
    from treadmilld.app.run import run_command  # noqa: PLC0415

    return run_command(args.config, trace=args.trace, trace_max_mb=args.trace_max_mb)


def _demo(args: argparse.Namespace) -> int:
    from treadmilld.app.demo import DemoOptions, demo_command  # noqa: PLC0415

    return demo_command(
        DemoOptions(
            treadmills=args.treadmills,
            profile=args.profile,
            speedup=args.speedup,
            broker=args.broker,
            broker_port=args.port,
            base_topic=args.base_topic,
            body_weight_kg=args.weight,
            keep_running=args.keep_running,
            verbose=args.verbose,
        )
    )


def _check_config(args: argparse.Namespace) -> int:
    from treadmilld.app.run import check_config_command  # noqa: PLC0415

    return check_config_command(args.config)


def _scan(args: argparse.Namespace) -> int:
    from treadmilld.app.scan_and_diagnose import scan_command  # noqa: PLC0415

    return scan_command(timeout_s=args.timeout, simulated=args.sim)


def _diagnose(args: argparse.Namespace) -> int:
    from treadmilld.app.scan_and_diagnose import diagnose_command  # noqa: PLC0415

    if args.treadmill is None and args.address is None and args.name is None:
        return diagnose_command(args.config)
    from treadmilld.app.diagnose import DeckChoice  # noqa: PLC0415
    from treadmilld.app.scan_and_diagnose import diagnose_deck_command  # noqa: PLC0415

    return diagnose_deck_command(
        DeckChoice(treadmill=args.treadmill, address=args.address, name=args.name),
        config=args.config,
        seconds=args.seconds,
        trace=args.trace,
        request_control=args.control,
    )


def _profiles(args: argparse.Namespace) -> int:
    if args.profiles_command is None:
        build_parser().parse_args(["profiles", "--help"])
    from treadmilld.app.profile_commands import profiles_command  # noqa: PLC0415

    return profiles_command(args)


def _riders(args: argparse.Namespace) -> int:
    from treadmilld.app.rider_commands import riders_command  # noqa: PLC0415

    return riders_command(args)


def _history(args: argparse.Namespace) -> int:
    if args.history_command is None:
        build_parser().parse_args(["history", "--help"])
    if getattr(args, "limit", 1) < 1:
        build_parser().error("history list --limit: give 1 or more")
    from treadmilld.app.history_commands import history_command  # noqa: PLC0415

    return history_command(args)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "riders": _riders,
    "run": _run,
    "demo": _demo,
    "check-config": _check_config,
    "scan": _scan,
    "diagnose": _diagnose,
    "profiles": _profiles,
    "history": _history,
}
