"""Builds the running parts from the settings: links, sessions, the bridge, the simulator.

`treadmilld_sim` is imported here and only here, and only when a simulated treadmill is
configured, so a gym's install never needs Bumble.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from treadmilld.app.heart_rate_wiring import heart_rate_wiring
from treadmilld.app.history_service import HistoryService, close_when_done, start_history
from treadmilld.app.rider_wiring import bridge_rider_arguments
from treadmilld.app.settings import ConfigError, Settings
from treadmilld.app.simulation import (
    ReplaySpec,
    import_simulator,
    simulated_deck,
    start_simulated_decks,
)
from treadmilld.app.supervisor import ManagedBridge, ManagedSession, TreadmillUnit
from treadmilld.ble.client import BleTreadmillLink
from treadmilld.ble.config import TargetSelector
from treadmilld.ble.gatt import GattBackend
from treadmilld.ble.trace import TraceLimits
from treadmilld.ble.trace_recorder import TraceWriter, TracingGattBackend
from treadmilld.engine.library import ProfileLibrary
from treadmilld.engine.limits import LimitSet
from treadmilld.engine.session import WorkoutSession
from treadmilld.mqtt.bridge import BridgeConfigError, MqttBridge
from treadmilld.programs.library import ProgramLibrary
from treadmilld.runtime.clock import Clock, LoopClock, ScaledClock

if TYPE_CHECKING:
    from treadmilld_sim import SimulatedFleet, SimulatedTreadmill
    from treadmilld_sim.replay import ReplayedDeck

    from treadmilld.ble.bleak_io import ClientBackend, ScannerBackend

_log = structlog.get_logger(__name__)

# LimitSet's own upper bound on telemetry_timeout_s (treadmilld.engine.limits).
TELEMETRY_TIMEOUT_CAP_S = LimitSet.model_fields["telemetry_timeout_s"].metadata[-1].le


@dataclass
class Assembly:
    units: list[TreadmillUnit]
    bridge: ManagedBridge | None
    library: ProfileLibrary
    fleet: SimulatedFleet | None = None
    # The database, the recorders and the programs (None only in tests that build parts).
    history: HistoryService | None = None
    # Named tasks for the supervisor beside the treadmills and the bridge.
    services: list[tuple[str, Callable[[], Awaitable[None]]]] = dataclasses.field(
        default_factory=list
    )

    def simulated(self, treadmill_id: str) -> SimulatedTreadmill | None:
        """The simulated treadmill behind `treadmill_id` (tests press its console buttons)."""
        if self.fleet is None:
            return None
        return self._simulated.get(treadmill_id)

    def replayed(self, treadmill_id: str) -> ReplayedDeck | None:
        """The replayed trace behind `treadmill_id` (tests read its report and mismatches)."""
        return self._replayed.get(treadmill_id)

    def __post_init__(self) -> None:
        self._simulated: dict[str, SimulatedTreadmill] = {}
        self._replayed: dict[str, ReplayedDeck] = {}

    def add_decks(self, decks: Mapping[str, Any], *, replayed: Collection[str]) -> None:
        """Keep the deck behind each simulated treadmill: a `ReplayedDeck` for the ids in
        `replayed`, a `SimulatedTreadmill` for the others."""
        for treadmill_id, deck in decks.items():
            if treadmill_id in replayed:
                self._replayed[treadmill_id] = deck
            else:
                self._simulated[treadmill_id] = deck


def clock_for(settings: Settings) -> Clock:
    """Real time, or scaled time for simulated treadmills (`clock_speedup`)."""
    if settings.clock_speedup == 1.0:
        return LoopClock()
    return ScaledClock(settings.clock_speedup)


def real_time_tolerances(settings: Settings) -> Settings:
    """With a sped-up clock (simulated treadmills only), keep time-outs the same in *wall*
    time: a 3 s liveness timeout at 30x would otherwise be 0.1 s of real time, and one busy
    moment of the event loop would look like a dead link."""
    speedup = settings.clock_speedup
    if speedup == 1.0:
        return settings
    link = settings.link.model_copy(
        update={
            "scan_timeout_s": settings.link.scan_timeout_s * speedup,
            "connect_timeout_s": settings.link.connect_timeout_s * speedup,
            "control_response_timeout_s": settings.link.control_response_timeout_s * speedup,
            "liveness_timeout_s": settings.link.liveness_timeout_s * speedup,
        }
    )
    limits = settings.limits.model_copy(
        update={
            name: getattr(settings.limits, name).model_copy(
                update={
                    "telemetry_timeout_s": min(
                        TELEMETRY_TIMEOUT_CAP_S,
                        getattr(settings.limits, name).telemetry_timeout_s * speedup,
                    )
                }
            )
            for name in ("general", "clinical")
        }
    )
    _log.info("timeouts_scaled_for_speedup", speedup=speedup)
    return settings.model_copy(update={"link": link, "limits": limits})


def profile_library(settings: Settings | None) -> ProfileLibrary:
    if settings is None:
        return ProfileLibrary()
    extra = [settings.profiles_dir] if settings.profiles_dir is not None else []
    return ProfileLibrary(extra, limits=settings.limits)


@dataclass(frozen=True)
class TraceOptions:
    """`treadmilld run --trace FILE`: record every link's GATT traffic (docs/capture.md)."""

    path: Path
    limits: TraceLimits = dataclasses.field(default_factory=TraceLimits)

    def path_for(self, treadmill_id: str, treadmills: int) -> Path:
        """FILE itself with one treadmill; FILE with the id before its suffix with several."""
        if treadmills == 1:
            return self.path
        return self.path.with_name(f"{self.path.stem}.{treadmill_id}{self.path.suffix}")


def traced_backend(
    clock: Clock,
    path: Path,
    version: str,
    limits: TraceLimits,
    *,
    scanner_backend: ScannerBackend | None = None,
    client_backend: ClientBackend | None = None,
) -> tuple[GattBackend, TraceWriter]:
    """The link's bleak backend wrapped in a tracer writing to `path` (close the writer)."""
    from treadmilld.ble.bleak_io import BleakGattBackend  # noqa: PLC0415 - bleak lazily

    writer = TraceWriter(path, clock=clock, version=version, limits=limits)
    inner = BleakGattBackend(clock, scanner_backend=scanner_backend, client_backend=client_backend)
    return TracingGattBackend(inner, writer), writer


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    clock: Clock,
    version: str,
    trace: TraceOptions | None = None,
    database_url: str | None = None,
) -> AsyncIterator[Assembly]:
    """Links, sessions, the bridge and history for `settings`; the simulator, if any, is torn
    down on exit (after the supervisor has closed the links), and so are the trace files, if
    any; the database is closed last. `database_url` overrides `[database] url` (the demo's
    temporary database)."""
    settings = real_time_tolerances(settings)
    library = profile_library(settings)
    async with contextlib.AsyncExitStack() as stack:
        # The database opens (a first start migrates it in a child process, seconds) while
        # the simulator starts; it is awaited before any deck is driven, and closed last.
        history_opening = asyncio.create_task(
            start_history(
                settings.database,
                [t.id for t in settings.treadmills],
                programs=ProgramLibrary(library),
                clock=clock,
                url=database_url,
            ),
            name="history-open",
        )
        stack.push_async_callback(close_when_done, history_opening)
        fleet: SimulatedFleet | None = None
        # Each simulated treadmill's deck: a SimulatedTreadmill, or a ReplayedDeck.
        decks: dict[str, Any] = {}
        specs = {
            t.id: simulated_deck(i, t)
            for i, t in enumerate(settings.treadmills)
            if t.simulated is not None
        }
        if specs:
            simulator = import_simulator()
            started: SimulatedFleet = await stack.enter_async_context(
                simulator.SimulatedFleet(clock)
            )
            fleet = started
            decks = await start_simulated_decks(stack, started, specs)
        history = await history_opening
        units: list[TreadmillUnit] = []
        for treadmill in settings.treadmills:
            link_settings = treadmill.link_settings(settings.link)
            backends: dict[str, Any] = {}
            target = treadmill.target() if treadmill.simulated is None else None
            if treadmill.id in decks:
                assert fleet is not None  # set together with `decks`
                target = TargetSelector(address=decks[treadmill.id].address)
                backends = {
                    "scanner_backend": fleet.scanner_backend,
                    "client_backend": fleet.client_backend,
                }
            assert target is not None  # every treadmill is simulated or has a target
            if trace is not None:
                path = trace.path_for(treadmill.id, len(settings.treadmills))
                gatt, writer = traced_backend(clock, path, version, trace.limits, **backends)
                stack.callback(writer.close)
                _log.info("link_traced", treadmill_id=treadmill.id, path=str(path))
                link = BleTreadmillLink(
                    treadmill.id, target, link_settings, clock=clock, gatt_backend=gatt
                )
            else:
                link = BleTreadmillLink(
                    treadmill.id, target, link_settings, clock=clock, **backends
                )
            session = make_session(link, settings, library, clock)
            units.append(TreadmillUnit(treadmill.id, link, session))
        strap_wiring = await heart_rate_wiring(
            settings,
            clock=clock,
            sessions={unit.treadmill_id: unit.session for unit in units},
            fleet=fleet,
            decks=decks,
        )
        try:
            bridge = MqttBridge(
                settings.mqtt,
                {unit.treadmill_id: unit.session for unit in units},
                library,
                version=version,
                names={t.id: t.display_name for t in settings.treadmills},
                **bridge_rider_arguments(
                    history, library, settings.limits, settings.programs.zone()
                ),
                straps=strap_wiring.switches,
                # MQTT stays in wall time even when the demo speeds the profile clock up: rate
                # limits and heartbeats are for the dashboards, which live in real time.
            )
        except BridgeConfigError as error:
            raise ConfigError(str(error)) from None
        history.record(unit.session for unit in units)
        assembly = Assembly(units, bridge, library, fleet, history=history)
        assembly.services.extend(strap_wiring.services)
        if settings.profiles_dir is not None:
            assembly.services.append(("profiles-watch", profile_watcher(settings, library, bridge)))
        replays = {tid: spec for tid, spec in specs.items() if isinstance(spec, ReplaySpec)}
        assembly.add_decks(decks, replayed=replays.keys())
        _log.info(
            "daemon_assembled",
            treadmills={
                t.id: (
                    f"replay of {replays[t.id].path}"
                    if t.id in replays
                    else "simulated"
                    if t.id in decks
                    else t.target().describe()
                )
                for t in settings.treadmills
            },
        )
        yield assembly


def profile_watcher(
    settings: Settings, library: ProfileLibrary, bridge: MqttBridge
) -> Callable[[], Awaitable[None]]:
    """Reload the profiles when a file in `profiles_dir` changes, through the bridge so the
    new list is republished and Home Assistant's select updated. Polled in wall time (like
    MQTT), not the demo's sped-up profile clock."""

    async def watch() -> None:
        await library.watch(
            LoopClock(), settings.profiles_poll_interval_s, on_change=bridge.reload_profiles
        )

    return watch


def make_session(
    link: BleTreadmillLink, settings: Settings, library: ProfileLibrary, clock: Clock
) -> ManagedSession:
    return WorkoutSession(
        link,
        library=library,
        limits=settings.limits,
        clock=clock,
        default_body_weight_kg=settings.body_weight_kg,
    )
