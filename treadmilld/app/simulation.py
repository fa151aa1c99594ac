"""The lazy bridge to `treadmilld_sim`: imported only when a simulated treadmill is wanted, so
a gym's install never needs Bumble.

A treadmill's `simulated = {...}` table is either a deck model (the keys of
`SimulatedTreadmillConfig`) or a recorded deck replayed (`replay = "FILE"`, optionally
`replay_session = N`; docs/capture.md). The app tells them apart here, before the simulator's
config sees the table: a replay is no deck model, and none of the model's keys apply to it.

A treadmill's `heart_rate_strap = { simulated = {...} }` (the keys of `SimulatedStrapConfig`) is
mapped here too, so `check-config` and `run` refuse a bad strap table before anything starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from treadmilld.app.config_problems import describe_problems
from treadmilld.app.settings import (
    REPLAY_KEY,
    REPLAY_SESSION_KEY,
    ConfigError,
    Settings,
    TreadmillSettings,
)
from treadmilld.ble.trace import Trace, TraceFormatError, load_trace

SIM_MISSING_HINT = (
    "simulated treadmills need the treadmilld-sim package: in a clone of the repository run "
    "`uv sync` (it is a workspace member); otherwise `pip install 'treadmilld[sim]'`"
)
_RECORD_HINT = (
    "record one with `treadmilld diagnose --treadmill ID --trace FILE` or "
    "`treadmilld run --trace FILE` (docs/capture.md)"
)


def import_simulator() -> Any:
    """The `treadmilld_sim` module, or a ConfigError telling the user what to install."""
    try:
        import treadmilld_sim  # noqa: PLC0415 - lazily, only for simulated treadmills
    except ImportError as error:
        raise ConfigError(SIM_MISSING_HINT) from error
    return treadmilld_sim


def import_replay() -> Any:
    """The `treadmilld_sim.replay` module, or a ConfigError telling the user what to install."""
    import_simulator()
    import treadmilld_sim.replay  # noqa: PLC0415 - lazily, only for replayed treadmills

    return treadmilld_sim.replay


@dataclasses.dataclass(frozen=True)
class ReplaySpec:
    """`simulated = {replay = FILE, replay_session = N}`: the trace, read and checked."""

    path: Path
    session: int
    trace: Trace

    @property
    def recorded_address(self) -> str:
        return self.trace.sessions()[self.session].connect.address


def simulated_deck(index: int, treadmill: TreadmillSettings) -> Any:
    """The treadmill's `simulated = {...}` table: a `ReplaySpec` when it names a trace, else
    a `SimulatedTreadmillConfig`. Either way a ConfigError names the bad key and the fix."""
    values = dict(treadmill.simulated or {})
    if REPLAY_KEY in values or REPLAY_SESSION_KEY in values:
        return replay_spec(index, treadmill)
    return simulated_config(index, treadmill)


def simulated_config(index: int, treadmill: TreadmillSettings) -> Any:
    """The treadmill's `simulated = {...}` table as a `SimulatedTreadmillConfig`."""
    simulator = import_simulator()
    values = dict(treadmill.simulated or {})
    # The advertised name: readable in a scan, and unique per treadmill by default.
    values.setdefault("name", f"SIM-{treadmill.id.upper()}"[:29])
    try:
        return simulator.SimulatedTreadmillConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(
            f"treadmill {treadmill.id!r} has a bad simulated table:\n"
            + describe_problems(
                error,
                prefix=f"treadmills[{index}].simulated",
                model=simulator.SimulatedTreadmillConfig,
            )
        ) from None


def replay_spec(index: int, treadmill: TreadmillSettings) -> ReplaySpec:
    """The trace a `simulated = {replay = ...}` table names, read now so a bad file is a
    configuration error (at `check-config` as at `run`), not a crash once the daemon runs."""
    values: Mapping[str, Any] = treadmill.simulated or {}
    field = f"treadmills[{index}].simulated"

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(
            f"treadmill {treadmill.id!r} has a bad simulated table:\n  - {field}.{key}: {problem}"
        )

    others = sorted(set(values) - {REPLAY_KEY, REPLAY_SESSION_KEY})
    if others:
        raise bad(
            others[0],
            f"not a key of a replay ({', '.join(others)}); a replay takes only {REPLAY_KEY} and "
            f"{REPLAY_SESSION_KEY}, since the deck's name, GATT table and answers are the "
            f"trace's. Remove {'it' if len(others) == 1 else 'them'}, or remove {REPLAY_KEY} to "
            "simulate a deck model",
        )
    if REPLAY_KEY not in values:
        raise bad(
            REPLAY_SESSION_KEY,
            f'only with {REPLAY_KEY} = "FILE" (the trace to replay); add it or remove '
            f"{REPLAY_SESSION_KEY}",
        )
    raw_path, session = values[REPLAY_KEY], values.get(REPLAY_SESSION_KEY, 0)
    if not isinstance(raw_path, str | Path) or not str(raw_path):
        raise bad(REPLAY_KEY, f"give the trace file's path as a string (got {raw_path!r})")
    if isinstance(session, bool) or not isinstance(session, int) or session < 0:
        raise bad(
            REPLAY_SESSION_KEY,
            f"a recorded connection's number, 0 or more (got {session!r}); 0 is the first",
        )
    path = Path(raw_path)
    if not path.is_file():
        raise bad(
            REPLAY_KEY,
            f"{path}: no such file. Give the path of a trace (a relative one is taken from the "
            f"config file's folder), or {_RECORD_HINT}",
        )
    try:
        trace = load_trace(path)
    except TraceFormatError as error:
        raise bad(REPLAY_KEY, str(error)) from None
    sessions = len(trace.sessions())
    if sessions == 0:
        raise bad(
            REPLAY_KEY,
            f"{path}: no connection recorded (no 'connect' line), so there is nothing to "
            f"replay; {_RECORD_HINT} while it connects to the deck",
        )
    if session >= sessions:
        raise bad(
            REPLAY_SESSION_KEY,
            f"{path} records {sessions} connection(s); give 0..{sessions - 1}",
        )
    return ReplaySpec(path, session, trace)


def simulated_strap_config(index: int, treadmill: TreadmillSettings, deck_name: str | None) -> Any:
    """The treadmill's `heart_rate_strap.simulated` table as a `SimulatedStrapConfig`, worn on
    the deck named `deck_name` (None: a replayed deck, whose rider the simulator cannot see)."""
    simulator = import_simulator()
    assert treadmill.heart_rate_strap is not None
    values = dict(treadmill.heart_rate_strap.simulated or {})
    values.setdefault("name", f"SIM-HR-{treadmill.id.upper()}"[:29])
    if deck_name is not None:
        values.setdefault("treadmill", deck_name)
    try:
        return simulator.SimulatedStrapConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(
            f"treadmill {treadmill.id!r} has a bad heart_rate_strap.simulated table:\n"
            + describe_problems(
                error,
                prefix=f"treadmills[{index}].heart_rate_strap.simulated",
                model=simulator.SimulatedStrapConfig,
            )
        ) from None


def check_simulated(settings: Settings) -> None:
    """What `run` would refuse about the simulated treadmills and straps, refused now
    (`check-config`)."""
    specs = {
        i: simulated_deck(i, t)
        for i, t in enumerate(settings.treadmills)
        if t.simulated is not None  # `simulated = {}` is a deck with every default
    }
    if any(isinstance(spec, ReplaySpec) for spec in specs.values()):
        import_replay()
    deck_names = {spec.name for spec in specs.values() if not isinstance(spec, ReplaySpec)}
    for index, treadmill in enumerate(settings.treadmills):
        if treadmill.heart_rate_strap is None or treadmill.heart_rate_strap.simulated is None:
            continue
        # Settings refuse a simulated strap on a real treadmill: its deck is in `specs`.
        spec = specs[index]
        deck_name = None if isinstance(spec, ReplaySpec) else spec.name
        config = simulated_strap_config(index, treadmill, deck_name)
        if config.treadmill is not None and config.treadmill not in deck_names:
            known = ", ".join(repr(name) for name in sorted(deck_names)) or "none"
            raise ConfigError(
                f"treadmill {treadmill.id!r} has a bad heart_rate_strap.simulated table:\n"
                f"  - treadmills[{index}].heart_rate_strap.simulated.treadmill: "
                f"{config.treadmill!r} is no simulated treadmill's "
                f"name (the simulated decks: {known}); remove the key, so the strap's wearer "
                "walks on this treadmill, or give one of those names"
            )


async def start_simulated_decks(
    stack: contextlib.AsyncExitStack, fleet: Any, specs: Mapping[str, Any]
) -> dict[str, Any]:
    """Start each treadmill's deck on `fleet` (model decks first, then replays), closed with
    `stack`: treadmill id -> a `SimulatedTreadmill` or a `ReplayedDeck` (both have `address`)."""
    decks: dict[str, Any] = {}
    for treadmill_id, spec in specs.items():
        if not isinstance(spec, ReplaySpec):
            decks[treadmill_id] = await fleet.add(spec)
    replays = {tid: spec for tid, spec in specs.items() if isinstance(spec, ReplaySpec)}
    if replays:
        replay_trace = import_replay().replay_trace
        used = {deck.address for deck in decks.values()}
        for treadmill_id, spec in replays.items():
            # The recorded address, unless a deck here has it already (two replays of one
            # trace, or a model deck the simulator numbered the same as the recorded one).
            address = None
            if spec.recorded_address.upper() in used:
                address = fleet.radio.next_peripheral_address()
                while address in used:
                    address = fleet.radio.next_peripheral_address()
            deck = await stack.enter_async_context(
                replay_trace(spec.trace, fleet=fleet, session=spec.session, address=address)
            )
            used.add(deck.address)
            decks[treadmill_id] = deck
    return decks
