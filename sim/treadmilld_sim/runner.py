"""`treadmilld-sim` / `python -m treadmilld_sim`: run simulated treadmills and watch them.

Two ways to serve them:

- in-process (default): N treadmills on Bumble's in-memory link. Only code in this process
  can reach them (through `SimulatedFleet`'s bleak backends), so on its own this mode is a
  live view of the model; `treadmilld demo` and the tests embed the fleet instead.
- `--transport usb:0` (or `serial:/dev/ttyACM0`, any Bumble transport): ONE treadmill served
  over a real Bluetooth controller, so a Pi running treadmilld with plain BlueZ finds and
  drives it over the air. Not exercised in CI (it needs a radio); see docs/simulator.md.

Type console actions on stdin while it runs: `<n> start|pause|stop|key-out|key-in|drop`,
`<n> speed <km/h>`, `<n> incline <%>` (n counts from 1).

Deck behaviours of real machines are flags named after their `SimulatedTreadmillConfig` fields
(`--deceleration-kmh-per-s 0.25`, `--no-report-console-status`, `--refuses-stop
operation-failed`, ...); they apply to every treadmill started. docs/simulator.md lists them.

`--replay FILE [--session N]` serves a recorded deck session (a treadmilld trace,
docs/capture.md) instead of a deck model, either way, and prints the replay's report (writes
matched, mismatched, never sent) when it ends. A replay has no console: it does what the
recorded deck did.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from bumble.device import Device
from bumble.hci import Address
from bumble.transport import open_transport
from pydantic import ValidationError

from treadmilld.ble.trace import Trace, TraceFormatError, load_trace
from treadmilld.runtime.clock import Clock, LoopClock, ScaledClock
from treadmilld_sim.config import SimulatedTreadmillConfig
from treadmilld_sim.fleet import SimulatedFleet, SimulatedTreadmill
from treadmilld_sim.presets import PRESETS
from treadmilld_sim.replay import ReplayedDeck, deck_name, replay_trace

_log = structlog.get_logger(__name__)

DEFAULT_TRANSPORT_ADDRESS = "F0:5E:ED:00:00:01"
DEFAULT_NAME_PREFIX = "SIM-TM"

# (SimulatedTreadmillConfig field, what it does): on/off deck behaviours, each a flag
# --<field-with-dashes>; report_console_status is on by default, so it also has --no-...
_DECK_SWITCHES = (
    ("report_console_status", "console buttons and the safety key raise Machine Status"),
    ("resume_at_last_target", "Start after a Stop resumes the last target, not the minimum"),
    ("ignores_speed_commands", "Set Target Speed is answered Success and changes nothing"),
    ("starts_on_connect", "the belt starts by itself when a client connects"),
    ("drops_link_on_stop", "a Stop or Pause write drops the link; the belt keeps running"),
    ("echo_target_while_decelerating", "repeat Target Speed Changed while the belt slows"),
)
# (field, metavar, type, what it does): deck behaviours that take a value.
_DECK_VALUES: tuple[tuple[str, str, type, str], ...] = (
    ("acceleration_kmh_per_s", "KMH_PER_S", float, "belt speeds up this fast (default 1.0)"),
    ("deceleration_kmh_per_s", "KMH_PER_S", float, "belt slows this fast (0.1..10, default 1.0)"),
    ("incline_rate_pct_per_s", "PCT_PER_S", float, "incline motor rate (default 0.5)"),
    ("initial_incline_pct", "PCT", float, "incline the previous user left (default 0)"),
    ("starts_on_connect_kmh", "KMH", float, "speed for --starts-on-connect (default: minimum)"),
    ("refuses_stop", "CODE", str, "answer Stop with this result code and keep running"),
    ("refuses_pause", "CODE", str, "answer Pause with this result code and keep running"),
    ("response_delay_s", "SECONDS", float, "answer the Control Point this late"),
)
DECK_FIELDS = frozenset(name for name, _ in _DECK_SWITCHES) | {v[0] for v in _DECK_VALUES}
_ADDRESS_SHAPE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


class TransportUnavailableError(RuntimeError):
    """The real controller named by --transport could not be opened."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treadmilld-sim",
        description="Run simulated FTMS treadmills and print their live state.",
    )
    parser.add_argument("--count", type=int, default=1, help="treadmills to start (default 1)")
    parser.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="run treadmill time this many times faster than wall time (default 1)",
    )
    parser.add_argument(
        "--name-prefix",
        default=None,
        help=f"names are <prefix>01, <prefix>02, ... (default {DEFAULT_NAME_PREFIX}, or the"
        " preset's own name)",
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between state printouts"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="exit after this many wall-clock seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log connections and requests to stderr"
    )
    parser.add_argument(
        "--transport",
        default=None,
        help=(
            "serve ONE treadmill over a real controller through this Bumble transport, "
            "e.g. usb:0 or serial:/dev/ttyACM0 (not tested in CI)"
        ),
    )
    parser.add_argument(
        "--address",
        default=None,
        help=f"static random address for --transport (default {DEFAULT_TRANSPORT_ADDRESS});"
        " with --replay in-process, instead of the trace's",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help=(
            "copy a real deck family (its name, GATT and behaviour; see docs/simulator.md);"
            " the deck behaviour flags below override it"
        ),
    )
    parser.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="FILE",
        help="serve a recorded deck session from a treadmilld trace (docs/capture.md) instead"
        " of a deck model; prints what was matched when it ends. Not with --preset or deck flags",
    )
    parser.add_argument(
        "--session",
        type=int,
        default=None,
        metavar="N",
        help="with --replay: which recorded connection to serve, from 0 (default 0)",
    )
    deck = parser.add_argument_group(
        "deck behaviours of real machines (every treadmill; see docs/simulator.md)",
        "CODE is a result code name (operation-failed, control-not-permitted, ...) or 1..5.",
    )
    for name, what in _DECK_SWITCHES:
        deck.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=argparse.SUPPRESS,
            help=what,
        )
    for name, metavar, kind, what in _DECK_VALUES:
        deck.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=what,
        )
    return parser


def deck_configs(args: argparse.Namespace) -> list[SimulatedTreadmillConfig]:
    """One config per treadmill to start, with the deck behaviour flags given."""
    behaviours: dict[str, Any] = {k: v for k, v in vars(args).items() if k in DECK_FIELDS}
    if args.preset is not None:
        behaviours["preset"] = args.preset

    def name(index: int) -> dict[str, str]:
        # A preset's own advertised name identifies its family (the daemon matches on it);
        # several treadmills of one preset get a numbered suffix. --name-prefix wins if given.
        if args.preset is not None and args.name_prefix is None:
            family = str(PRESETS[args.preset]["name"])
            return {"name": family if args.count == 1 else f"{family}-{index:02d}"}
        return {"name": f"{args.name_prefix or DEFAULT_NAME_PREFIX}{index:02d}"}

    if args.transport is not None:
        return [SimulatedTreadmillConfig(**name(1), address=args.address, **behaviours)]
    return [
        SimulatedTreadmillConfig(**name(index), **behaviours) for index in range(1, args.count + 1)
    ]


def describe(index: int, treadmill: SimulatedTreadmill) -> str:
    """One status line: what a person standing next to the deck would see."""
    model = treadmill.model
    link = (
        "connected"
        if treadmill.is_connected
        else "advertising"
        if treadmill.is_advertising
        else "silent"
    )
    key = "key-in" if model.safety_key_in else "KEY-OUT"
    control = "client-control" if model.control_granted else "console"
    return (
        f"{index:>2} {treadmill.name:<12} {treadmill.address} {link:<11} "
        f"{model.running_state.value:<8} "
        f"belt {model.belt_speed_kmh:5.2f}/{model.target_speed_kmh:5.2f} km/h "
        f"incline {model.incline_pct:4.1f}/{model.target_incline_pct:4.1f} % "
        f"{model.distance_m:8.1f} m {model.elapsed_s:7.1f} s {model.energy_kcal:6.1f} kcal "
        f"{key} {control}"
    )


async def apply_console_command(line: str, treadmills: Sequence[SimulatedTreadmill]) -> str:
    """Carry out one typed console action; returns what happened, for the operator."""
    words = line.split()
    if not words:
        return ""
    usage = "usage: <n> start|pause|stop|key-out|key-in|drop | <n> speed <km/h> | <n> incline <%>"
    try:
        treadmill = treadmills[int(words[0]) - 1]
        action = words[1]
        argument = float(words[2]) if len(words) > 2 else None
    except (ValueError, IndexError):
        return usage
    model = treadmill.model
    match action, argument:
        case "start", None:
            done = model.press_start()
        case "pause", None:
            done = model.press_pause()
        case "stop", None:
            done = model.press_stop()
        case "key-out", None:
            model.pull_safety_key()
            done = True
        case "key-in", None:
            model.insert_safety_key()
            done = True
        case "drop", None:
            await treadmill.drop_link()
            done = True
        case "speed", float(value):
            model.set_speed_at_console(value)
            done = True
        case "incline", float(value):
            model.set_incline_at_console(value)
            done = True
        case _:
            return usage
    return f"{treadmill.name}: {action} {'done' if done else 'ignored (wrong state)'}"


def describe_replay(deck: ReplayedDeck) -> str:
    """One status line for a replayed deck: its link and how the central's writes compare."""
    link = "connected" if deck.is_connected else "advertising"
    return (
        f" 1 {deck.name:<12} {deck.address} {link:<11} replay: writes matched "
        f"{deck.matched_writes}/{len(deck.expected_writes)}, mismatches {len(deck.mismatches)}"
    )


async def _print_live_state(status_lines: Callable[[], Sequence[str]], interval: float) -> None:
    while True:
        for line in status_lines():
            print(line)
        print(flush=True)
        await asyncio.sleep(interval)


def _model_lines(treadmills: Sequence[SimulatedTreadmill]) -> Callable[[], list[str]]:
    return lambda: [describe(i, t) for i, t in enumerate(treadmills, start=1)]


def _read_console(
    treadmills: Sequence[SimulatedTreadmill], background: set[asyncio.Task[None]]
) -> None:
    loop = asyncio.get_running_loop()

    async def run(line: str) -> None:
        if message := await apply_console_command(line, treadmills):
            print(message, flush=True)

    def on_readable() -> None:
        line = sys.stdin.readline()
        if not line:  # end of input (e.g. stdin is /dev/null): stop listening
            loop.remove_reader(sys.stdin.fileno())
            return
        task = loop.create_task(run(line))
        background.add(task)
        task.add_done_callback(background.discard)

    with contextlib.suppress(ValueError, OSError, NotImplementedError):
        loop.add_reader(sys.stdin.fileno(), on_readable)


async def _watch(
    status_lines: Callable[[], Sequence[str]],
    interval: float,
    duration: float | None,
    console: Sequence[SimulatedTreadmill] = (),
) -> None:
    """Print `status_lines()` every `interval` until Ctrl-C, SIGTERM or `duration`; typed
    console actions go to `console` (a replay has none: it does what the recording did)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    background: set[asyncio.Task[None]] = set()
    if console:
        _read_console(console, background)
    printer = loop.create_task(_print_live_state(status_lines, interval))
    try:
        if duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await stop.wait()
    finally:
        with contextlib.suppress(ValueError, OSError, NotImplementedError):
            loop.remove_reader(sys.stdin.fileno())
        for task in (printer, *background):
            task.cancel()
        await asyncio.gather(printer, *background, return_exceptions=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)


async def run_in_process(
    configs: Sequence[SimulatedTreadmillConfig],
    clock: Clock,
    interval: float,
    duration: float | None,
) -> None:
    async with SimulatedFleet(clock) as fleet:
        for config in configs:
            await fleet.add(config)
        print(
            f"{len(configs)} simulated treadmill(s) on the in-process link; Ctrl-C to stop",
            flush=True,
        )
        await _watch(_model_lines(fleet.treadmills), interval, duration, fleet.treadmills)


async def serve_over_transport(
    transport_spec: str,
    config: SimulatedTreadmillConfig,
    clock: Clock,
    interval: float,
    duration: float | None,
) -> None:
    """Serve one treadmill through a real controller (NOT tested in CI: needs a radio)."""
    address = config.address or DEFAULT_TRANSPORT_ADDRESS
    async with await _open_transport(transport_spec) as transport:
        device = Device.with_hci(
            config.name,
            Address(address, Address.RANDOM_DEVICE_ADDRESS),
            transport.source,
            transport.sink,
        )
        treadmill = SimulatedTreadmill(device, config, address, clock)
        await treadmill.power_on()
        print(f"{config.name} advertising over {transport_spec} as {address}", flush=True)
        try:
            await _watch(_model_lines([treadmill]), interval, duration, [treadmill])
        finally:
            await treadmill.close()


async def _open_transport(transport_spec: str) -> Any:
    try:
        return await open_transport(transport_spec)
    except Exception as error:  # each transport (USB, serial, ...) raises its own kinds
        raise TransportUnavailableError(
            f"could not open Bluetooth transport {transport_spec!r} ({error!r}); check the"
            " controller is plugged in, not claimed by BlueZ (hciconfig hciN down) and that"
            " you may access it (udev rule or group), then retry"
        ) from error


@dataclass(frozen=True)
class ReplayRequest:
    """`--replay FILE [--session N]`: the trace, read and checked before anything starts."""

    trace: Trace
    session: int
    address: str | None  # --address; None: the trace's in-process, the default over the air


async def replay_in_process(
    request: ReplayRequest, clock: Clock, interval: float, duration: float | None
) -> ReplayedDeck:
    """Serve the replay on the in-process link until stopped; the deck, for its report."""
    async with (
        SimulatedFleet(clock) as fleet,
        replay_trace(
            request.trace, fleet=fleet, session=request.session, address=request.address
        ) as deck,
    ):
        print(
            f"replaying {deck.name} (session {request.session} of {request.trace.source}) on"
            f" the in-process link as {deck.address}; Ctrl-C to stop",
            flush=True,
        )
        await _watch(lambda: [describe_replay(deck)], interval, duration)
    return deck


async def replay_over_transport(
    transport_spec: str,
    request: ReplayRequest,
    clock: Clock,
    interval: float,
    duration: float | None,
) -> ReplayedDeck:
    """Serve the replay through a real controller (NOT tested in CI: needs a radio)."""
    # Not the trace's address: a real deck's public address is no static random address, and
    # one deck heard twice (the real one nearby) would confuse whatever connects.
    address = (request.address or DEFAULT_TRANSPORT_ADDRESS).upper()
    name = deck_name(request.trace, request.trace.sessions()[request.session])
    async with await _open_transport(transport_spec) as transport:
        device = Device.with_hci(
            name,
            Address(address, Address.RANDOM_DEVICE_ADDRESS),
            transport.source,
            transport.sink,
        )
        deck = ReplayedDeck(device, request.trace, clock, address=address, session=request.session)
        await deck.power_on()
        print(
            f"replaying {name} (session {request.session} of {request.trace.source}) over"
            f" {transport_spec} as {address}",
            flush=True,
        )
        try:
            await _watch(lambda: [describe_replay(deck)], interval, duration)
        finally:
            await deck.close()
    return deck


class UsageError(ValueError):
    """The command line asks for something the runner cannot do; the message says what."""


def configs_from_arguments(args: argparse.Namespace) -> list[SimulatedTreadmillConfig]:
    """The treadmills the command line asks for, or a UsageError naming the bad flag."""
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.speedup <= 0:
        raise UsageError("--speedup must be positive (1 = real time)")
    if args.transport is not None and args.count != 1:
        raise UsageError("--transport serves exactly one treadmill; drop --count")
    try:
        return deck_configs(args)
    except ValidationError as error:
        problems = "; ".join(
            f"--{str(problem['loc'][0]).replace('_', '-')}: {problem['msg']}"
            if problem["loc"]
            else problem["msg"]
            for problem in error.errors()
        )
        raise UsageError(f"bad deck behaviour: {problems}") from None


def replay_from_arguments(args: argparse.Namespace) -> ReplayRequest | None:
    """The replay the command line asks for (None: deck models), or a UsageError."""
    if args.replay is None:
        if args.session is not None:
            raise UsageError("--session picks a recorded connection of --replay FILE; add --replay")
        return None
    # A replay is the recorded deck as it was: its name, GATT table and answers come from the
    # trace, so nothing that shapes a deck model can apply to it.
    clashing = [
        flag
        for flag, given in (
            ("--preset", args.preset is not None),
            ("--count", args.count != 1),
            ("--name-prefix", args.name_prefix is not None),
        )
        if given
    ] + ["--" + name.replace("_", "-") for name in sorted(DECK_FIELDS) if name in vars(args)]
    if clashing:
        raise UsageError(
            f"--replay serves the recorded deck as it was, so it cannot be combined with "
            f"{', '.join(clashing)}; drop {'it' if len(clashing) == 1 else 'them'}, or drop"
            " --replay to run a deck model"
        )
    if args.speedup <= 0:
        raise UsageError("--speedup must be positive (1 = real time)")
    if args.address is not None and not _ADDRESS_SHAPE.match(args.address):
        raise UsageError(f"--address {args.address!r}: write it as F0:5E:ED:00:00:02")
    try:
        trace = load_trace(args.replay)
    except TraceFormatError as error:
        raise UsageError(str(error)) from None
    sessions = len(trace.sessions())
    if sessions == 0:
        raise UsageError(
            f"{trace.source}: no connection recorded (no 'connect' line), so there is nothing"
            " to replay; record a trace that connects to the deck (treadmilld diagnose --trace)"
        )
    session = 0 if args.session is None else args.session
    if not 0 <= session < sessions:
        raise UsageError(
            f"--session {session}: {trace.source} has {sessions} session(s); give 0..{sessions - 1}"
        )
    return ReplayRequest(trace, session, args.address)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        replay = replay_from_arguments(args)
        configs = configs_from_arguments(args) if replay is None else []
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if args.verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    clock: Clock = ScaledClock(args.speedup) if args.speedup != 1 else LoopClock()
    if replay is not None:
        return _run_replay(args, replay, clock)
    try:
        if args.transport is not None:
            asyncio.run(
                serve_over_transport(
                    args.transport, configs[0], clock, args.interval, args.duration
                )
            )
        else:
            asyncio.run(run_in_process(configs, clock, args.interval, args.duration))
    except TransportUnavailableError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _run_replay(args: argparse.Namespace, request: ReplayRequest, clock: Clock) -> int:
    """Serve the replay until stopped, then print its report; 1 if any write mismatched."""
    try:
        if args.transport is not None:
            deck = asyncio.run(
                replay_over_transport(args.transport, request, clock, args.interval, args.duration)
            )
        else:
            deck = asyncio.run(replay_in_process(request, clock, args.interval, args.duration))
    except TransportUnavailableError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    print(deck.report(), flush=True)
    return 1 if deck.mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
